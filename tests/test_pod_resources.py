"""Beam's worker count from the container's CPU quota and memory limit (pipeline/pod_resources.py), on
cgroup file systems laid out as in a Kubernetes pod (v2 and v1, in a temporary directory) and on this
machine's own."""
import multiprocessing
import os

import pytest

from pipeline import pod_resources
from pipeline.pod_resources import read_limits, resolve_beam_args

GiB = 2**30
NODE_CORES = os.cpu_count()


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def pod_v2(root, cpu="200000 100000", memory=str(8 * GiB), proc_path="/"):
    """A cgroup v2 mount as a container with its own cgroup namespace sees it: its cgroup is the root."""
    _write(os.path.join(root, "cgroup.controllers"), "cpuset cpu io memory pids")
    _write(os.path.join(root, "cpu.max"), cpu)
    _write(os.path.join(root, "memory.max"), memory)
    proc = os.path.join(root, "..", "proc_self_cgroup")
    _write(proc, f"0::{proc_path}")
    return root, proc


def pod_v1(root, quota="200000", period="100000", memory=str(8 * GiB)):
    """cgroup v1 as Docker/containerd mount it in a pod: one directory per controller, the
    container's cgroup at the root of each."""
    _write(os.path.join(root, "cpu,cpuacct", "cpu.cfs_quota_us"), quota)
    _write(os.path.join(root, "cpu,cpuacct", "cpu.cfs_period_us"), period)
    os.symlink("cpu,cpuacct", os.path.join(root, "cpu"))
    _write(os.path.join(root, "memory", "memory.limit_in_bytes"), memory)
    proc = os.path.join(root, "..", "proc_self_cgroup")
    _write(proc, "12:memory:/\n11:cpu,cpuacct:/\n0::/")
    return root, proc


def test_two_cpu_quota_gives_two_workers_on_cgroup_v2_and_v1(tmp_path):
    v2 = read_limits(*pod_v2(str(tmp_path / "v2" / "cgroup")))
    v1 = read_limits(*pod_v1(str(tmp_path / "v1" / "cgroup")))
    assert (v2.cgroup_version, v2.cpu_quota, v2.memory_limit) == (2, 2.0, 8 * GiB)
    assert (v1.cgroup_version, v1.cpu_quota, v1.memory_limit) == (1, 2.0, 8 * GiB)
    expected = min(2, len(os.sched_getaffinity(0)))  # never more than the cores this process may use
    for limits in (v2, v1):
        print(limits.describe())
        assert limits.beam_workers() == expected
        # On a 64-core node (what cpu_count(), so --direct_num_workers=0, would start):
        node = pod_resources.PodLimits(64, limits.cpu_quota, limits.memory_limit, 256 * GiB, limits.cgroup_version)
        assert node.beam_workers() == 2


@pytest.mark.parametrize("cpu, memory, expected", [
    ("max 100000", str(8 * GiB), 3),  # no CPU quota: memory bounds it, one share for the main process
    ("max 100000", "max", 64),  # neither: the cores
    ("250000 100000", "max", 2),  # 2.5 CPUs: floor, not a throttled third worker
    ("50000 100000", str(1 * GiB), 1),  # below one CPU / one worker's memory: still one worker
    ("800000 100000", str(6 * GiB), 2),  # 8 CPUs but 6 GiB: memory decides
])
def test_worker_count_is_the_tightest_of_cores_quota_and_memory(tmp_path, cpu, memory, expected):
    limits = read_limits(*pod_v2(str(tmp_path / "cgroup"), cpu=cpu, memory=memory))
    node = pod_resources.PodLimits(64, limits.cpu_quota, limits.memory_limit, 256 * GiB, 2)
    assert node.beam_workers() == expected


def test_a_limit_on_a_parent_cgroup_counts(tmp_path):
    """Without a cgroup namespace the process sits deeper; the pod-level cgroup above it sets the limit."""
    root, proc = pod_v2(str(tmp_path / "cgroup"), cpu="max 100000", memory="max", proc_path="/kubepods/pod1/ctr")
    _write(os.path.join(root, "kubepods", "pod1", "cpu.max"), "200000 100000")
    _write(os.path.join(root, "kubepods", "pod1", "ctr", "cpu.max"), "max 100000")
    _write(os.path.join(root, "kubepods", "pod1", "ctr", "memory.max"), str(8 * GiB))
    limits = read_limits(root, proc)
    assert (limits.cpu_quota, limits.memory_limit) == (2.0, 8 * GiB)


def test_v1_without_limits_and_no_cgroup_fall_back_to_the_cores(tmp_path):
    root, proc = pod_v1(str(tmp_path / "cgroup"), quota="-1", memory="9223372036854771712")
    limits = read_limits(root, proc)
    assert (limits.cpu_quota, limits.memory_limit) == (None, None)
    none = read_limits(str(tmp_path / "nothing"), str(tmp_path / "nothing" / "cgroup"))
    assert none.cgroup_version is None and none.cpu_quota is None
    assert none.beam_workers() == min(len(os.sched_getaffinity(0)), none.memory // pod_resources.WORKER_MEMORY - 1)


def test_resolve_beam_args_replaces_only_the_zero_worker_count(tmp_path):
    limits = read_limits(*pod_v2(str(tmp_path / "cgroup")))
    n = str(limits.beam_workers())
    assert resolve_beam_args(["--direct_running_mode=multi_processing", "--direct_num_workers=0"], limits) == [
        "--direct_running_mode=multi_processing", f"--direct_num_workers={n}"]
    assert resolve_beam_args(["--direct_num_workers", "0", "--runner=DirectRunner"], limits) == [
        "--direct_num_workers", n, "--runner=DirectRunner"]
    explicit = ["--direct_num_workers=3", "--runner=DataflowRunner", "--num_workers=0"]
    assert resolve_beam_args(explicit, limits) == explicit
    assert resolve_beam_args((), limits) == []


def test_this_machine(capsys):
    """The machine the tests run on: its own cgroup files (v1 or v2, limits or none) and cores."""
    limits = read_limits()
    print(limits.describe())
    assert 1 <= limits.beam_workers() <= len(os.sched_getaffinity(0)) <= multiprocessing.cpu_count()
    if limits.cpu_quota is not None:
        assert limits.beam_workers() <= max(1, int(limits.cpu_quota))
    resolved = resolve_beam_args(["--direct_num_workers=0"])
    assert resolved == [f"--direct_num_workers={limits.beam_workers()}"]


def test_local_runs_resolve_the_worker_count(tmp_path):
    """The pipeline run_pipeline hands BeamDagRunner carries the resolved count, never 0."""
    from config import preset
    from pipeline import local_runner

    cfg = preset("tiny").override({"run_root": str(tmp_path), "data.root": str(tmp_path)})
    assert "--direct_num_workers=0" in cfg.beam_args
    pipeline = local_runner.local_pipeline(cfg, until="example_gen")
    assert pipeline.beam_pipeline_args == ["--direct_running_mode=multi_processing",
                                           f"--direct_num_workers={read_limits().beam_workers()}"]
