"""How many Beam worker processes this container can afford: its CPU quota and memory limit (cgroups).

Beam's DirectRunner reads `--direct_num_workers=0` as `multiprocessing.cpu_count()`: the *node's* cores.
In a pod limited to 2 CPUs and 8 GB on a 64-core node that is 64 worker processes, each importing
TensorFlow: an OOM kill. `resolve_beam_args` replaces the 0 with

    min(usable cores, floor(CPU quota), (memory limit - one share for the main process) // WORKER_MEMORY)

(at least 1). Usable cores: the process's CPU affinity (cpusets). The quota comes from cgroup v2
`cpu.max` ("max 100000" = none) or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 = none), the limit
from v2 `memory.max` or v1 `memory.limit_in_bytes` (a huge value = none), else the machine's memory;
the smallest along the process's cgroup path and its parents (a pod-level limit counts too).
Floor, not ceiling: a 2.5-CPU quota with 3 busy workers is throttled by the CFS every period.

WORKER_MEMORY: a Beam worker that runs our Transform imports TensorFlow, tf.Transform, Beam and TFX's
libraries: 0.66 GB resident before it has read an image (measured with `ru_maxrss` on this stack), then
holds decoded image batches (a GOPRO 1280x720 pair in float32 is 22 MB; tf.Transform batches up to a
few hundred of them) and TensorFlow's per-process thread pools and allocator arenas. 2 GiB per worker
keeps a 2-CPU / 8 GiB pod at 2 workers with a share for the launching process; one worker per 0.66 GB
would let the first batch of large images kill the pod.

`python -m pipeline.pod_resources` prints what it finds here.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"
WORKER_MEMORY = 2 * 2**30
NUM_WORKERS_FLAG = "--direct_num_workers"
# v1 reports "no limit" as the largest page-aligned int64; anything past this is no limit.
_NO_LIMIT = 2**60


@dataclass(frozen=True)
class PodLimits:
    cores: int  # CPUs this process may run on (affinity)
    cpu_quota: float | None  # CPUs per period from the cgroup; None: no quota
    memory_limit: int | None  # bytes from the cgroup; None: no limit
    machine_memory: int  # bytes of RAM on the machine
    cgroup_version: int | None  # 1, 2, or None when no cgroup file system is found

    @property
    def memory(self) -> int:
        return min(self.memory_limit or self.machine_memory, self.machine_memory)

    def beam_workers(self, worker_memory: int = WORKER_MEMORY) -> int:
        n = self.cores
        if self.cpu_quota is not None:
            n = min(n, max(1, math.floor(self.cpu_quota)))
        return max(1, min(n, (self.memory - worker_memory) // worker_memory))

    def describe(self) -> str:
        quota = "no CPU quota" if self.cpu_quota is None else f"CPU quota {self.cpu_quota:g}"
        limit = ("no memory limit" if self.memory_limit is None
                 else f"memory limit {self.memory_limit / 2**30:.1f} GiB")
        cg = f"cgroup v{self.cgroup_version}" if self.cgroup_version else "no cgroup"
        return (f"{self.cores} cores, {quota}, {limit}, machine memory {self.machine_memory / 2**30:.1f} GiB "
                f"({cg}): {self.beam_workers()} Beam worker(s) of {WORKER_MEMORY / 2**30:g} GiB")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: str) -> dict:
    """/proc/self/cgroup -> {controller: path}; the v2 unified hierarchy under key ""."""
    paths = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _candidates(mount: str, path: str):
    """The process's cgroup directory under `mount` and its parents up to `mount` (inside a container
    with its own cgroup namespace the path is "/" and the mount is the container's cgroup)."""
    parts = [p for p in path.strip("/").split("/") if p]
    for i in range(len(parts), -1, -1):
        yield os.path.join(mount, *parts[:i])


def _smallest(values):
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _v2_cpu(text: str | None) -> float | None:
    if not text:
        return None
    quota, _, period = text.partition(" ")
    return None if quota == "max" else int(quota) / int(period or 100000)


def _v1_cpu(directory: str) -> float | None:
    quota = _read(os.path.join(directory, "cpu.cfs_quota_us"))
    period = _read(os.path.join(directory, "cpu.cfs_period_us"))
    if quota is None or period is None or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def _memory(text: str | None) -> int | None:
    if not text or text == "max" or int(text) >= _NO_LIMIT:
        return None
    return int(text)


def read_limits(cgroup_root: str = CGROUP_ROOT, proc_cgroup: str = PROC_CGROUP) -> PodLimits:
    paths = _cgroup_paths(proc_cgroup)
    if os.path.exists(os.path.join(cgroup_root, "cgroup.controllers")):  # v2: one unified hierarchy
        dirs = list(_candidates(cgroup_root, paths.get("", "/")))
        version = 2
        cpu = _smallest(_v2_cpu(_read(os.path.join(d, "cpu.max"))) for d in dirs)
        memory = _smallest(_memory(_read(os.path.join(d, "memory.max"))) for d in dirs)
    elif os.path.isdir(os.path.join(cgroup_root, "memory")) or os.path.isdir(os.path.join(cgroup_root, "cpu")):
        version = 1
        cpu_mount = next((os.path.join(cgroup_root, m) for m in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                          if os.path.isdir(os.path.join(cgroup_root, m))), os.path.join(cgroup_root, "cpu"))
        cpu = _smallest(_v1_cpu(d) for d in _candidates(cpu_mount, paths.get("cpu", "/")))
        memory = _smallest(_memory(_read(os.path.join(d, "memory.limit_in_bytes")))
                           for d in _candidates(os.path.join(cgroup_root, "memory"), paths.get("memory", "/")))
    else:
        version, cpu, memory = None, None, None
    return PodLimits(cores=len(os.sched_getaffinity(0)), cpu_quota=cpu, memory_limit=memory,
                     machine_memory=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), cgroup_version=version)


def resolve_beam_args(args: Sequence[str], limits: PodLimits | None = None) -> list:
    """`args` with `--direct_num_workers=0` (or `--direct_num_workers 0`) replaced by the worker count
    this container affords (`PodLimits.beam_workers`); other arguments unchanged."""
    out, changed = list(args), False
    for i, arg in enumerate(out):
        if arg == f"{NUM_WORKERS_FLAG}=0":
            index, prefix = i, f"{NUM_WORKERS_FLAG}="
        elif arg == NUM_WORKERS_FLAG and i + 1 < len(out) and out[i + 1] == "0":
            index, prefix = i + 1, ""
        else:
            continue
        limits = limits or read_limits()
        out[index] = f"{prefix}{limits.beam_workers()}"
        changed = True
    if changed:
        log.info("Beam %s=0 -> %d: %s", NUM_WORKERS_FLAG, limits.beam_workers(), limits.describe())
    return out


if __name__ == "__main__":
    print(read_limits().describe())
