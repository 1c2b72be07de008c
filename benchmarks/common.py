"""Shared benchmark plumbing: machine facts, timing, results files, child processes.

Every benchmark prints the load average with its figures (the machine is shared), times with
warm-up runs excluded and reports the median of N, and writes a JSON record that the runner
(benchmarks/run_all.py) turns into the Markdown report. Nothing here imports TensorFlow or torch:
the TF and PyTorch sides run in their own processes (different interpreters, same thread count).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

from config import REPO_ROOT

SHARED_DATA = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data"))
RESULTS_ROOT = os.path.join(REPO_ROOT, "benchmarks", "results")
TORCH_PYTHON = os.path.join(REPO_ROOT, ".venv-torch", "bin", "python")
TORCH_SETUP = os.path.join(REPO_ROOT, "scripts", "setup_torch_env.sh")
RESULT_PREFIX = "BENCH_RESULT "  # child processes print one JSON line after this prefix


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def load_note() -> str:
    """The caveat printed with every figure: a loaded machine gives slow, noisy numbers."""
    one = os.getloadavg()[0]
    busy = one > 0.5 * (os.cpu_count() or 1)
    state = "provisional (machine loaded" if busy else "quiet machine ("
    return f"{state}: load average {load_average()}, {os.cpu_count()} CPUs)"


def shared_data_dir(*parts: str) -> str:
    """A folder of ../shared/data, or "" (with a printed reason) when it is absent."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.isdir(path):
        print(f"SKIP: {path} is absent (the benchmark images live in ../shared/data beside the repository)")
        return ""
    return path


# -- timing ------------------------------------------------------------------------------------------

def add_step_arguments(parser) -> None:
    """The options both sides of a speed comparison share, so that they time the same thing."""
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())


def time_calls(fn: Callable[[], object], warmup: int, runs: int) -> Dict[str, float]:
    """Median/min/max seconds of `runs` calls of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": runs,
            "warmup": warmup}


# -- the CPU and its peak ----------------------------------------------------------------------------

def cpu_info() -> Dict[str, object]:
    """Model, cores, clock and ISA flags from lscpu (falls back to /proc/cpuinfo for the clock)."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line))
    flags = set(fields.get("Flags", "").split())
    mhz = 0.0
    for key in ("CPU max MHz", "CPU MHz"):
        if fields.get(key):
            mhz = float(fields[key])
            break
    if not mhz:
        try:
            with open("/proc/cpuinfo") as f:
                m = re.search(r"cpu MHz\s*:\s*([\d.]+)", f.read())
            mhz = float(m.group(1)) if m else 0.0
        except OSError:
            pass
    cores = int(fields.get("Core(s) per socket", "1")) * int(fields.get("Socket(s)", "1"))
    return {"model": fields.get("Model name", "?"), "vendor": fields.get("Vendor ID", "?"),
            "family": fields.get("CPU family", "?"), "cores": cores, "cpus": os.cpu_count(), "ghz": mhz / 1000.0,
            "flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))}


def peak_flops(info: Dict[str, object]) -> Dict[str, object]:
    """Peak FLOP/s per precision: cores x GHz x FLOPs/cycle/core, with the reasoning as text.

    FLOPs/cycle/core for fp32: 2 FMA pipes x vector lanes x 2 (multiply + add). AVX-512 counts 16
    lanes (Intel server cores and AMD Zen 5 have two 512-bit FMA pipes; Zen 4 double-pumps 256-bit
    units, so its 512-bit rate equals its AVX2 rate: 2 x 8 x 2), AVX2 8 lanes. bf16: AMX does 1024
    bf16 multiply-adds per cycle per core (2048 FLOPs); AVX512_BF16's VDPBF16PS does two bf16 products
    per fp32 lane, twice the fp32 rate.
    """
    flags = set(info["flags"])
    family = str(info["family"])
    amd = "AMD" in str(info["vendor"])
    if "avx512f" in flags and not (amd and family == "25"):  # family 25 = Zen 3/4
        lanes, isa = 16, "AVX-512 (2 x 512-bit FMA pipes)"
    elif "avx512f" in flags:
        lanes, isa = 8, "AVX-512 on Zen 4 (2 x 256-bit FMA pipes, double-pumped)"
    elif "avx2" in flags or "fma" in flags:
        lanes, isa = 8, "AVX2 + FMA (2 x 256-bit FMA pipes)"
    else:
        lanes, isa = 4, "SSE (2 x 128-bit pipes)"
    fp32_per_cycle = 2 * lanes * 2
    if "amx_bf16" in flags:
        bf16_per_cycle, bf16_isa = 2048, "AMX-BF16 (1024 bf16 MACs/cycle/core)"
    elif "avx512_bf16" in flags:
        bf16_per_cycle, bf16_isa = 2 * fp32_per_cycle, "AVX512_BF16 (VDPBF16PS: 2x the fp32 rate)"
    else:
        bf16_per_cycle, bf16_isa = fp32_per_cycle, "no bf16 instructions (bf16 computes at the fp32 rate)"
    base = info["cores"] * info["ghz"] * 1e9
    return {
        "fp32_flops": base * fp32_per_cycle, "bf16_flops": base * bf16_per_cycle,
        "how": (f"{info['cores']} cores x {info['ghz']:.2f} GHz (lscpu/cpuinfo clock; turbo may exceed it) x "
                f"FLOPs/cycle/core: fp32 {fp32_per_cycle} = 2 FMA pipes x {lanes} lanes x 2 [{isa}]; "
                f"bf16 {bf16_per_cycle} [{bf16_isa}]"),
    }


# -- results -----------------------------------------------------------------------------------------

def results_dir(date: str | None = None) -> str:
    d = os.path.join(RESULTS_ROOT, date or datetime.date.today().isoformat())
    os.makedirs(d, exist_ok=True)
    return d


def write_json(path: str, payload: dict) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
    return path


def emit(record: dict) -> None:
    """A child process's result, on one line the parent parses (see run_child)."""
    print(RESULT_PREFIX + json.dumps(record, default=str), flush=True)


def run_child(argv: List[str], env: Dict[str, str] | None = None, timeout: float = 3600) -> List[dict]:
    """Run a benchmark child process, stream its output, return the records it emitted."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONPATH", REPO_ROOT)
    print(f"$ {' '.join(argv)}", flush=True)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                            cwd=REPO_ROOT)
    records = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            records.append(json.loads(line[len(RESULT_PREFIX):]))
        elif not _noise(line):
            sys.stdout.write("    " + line)
    rc = proc.wait(timeout=timeout)
    if rc != 0:
        raise RuntimeError(f"benchmark child failed (exit {rc}): {' '.join(argv)}")
    return records


def _noise(line: str) -> bool:
    # TF's start-up chatter (cpu feature guard, oneDNN notice) would drown the figures.
    return any(s in line for s in ("cpu_feature_guard", "oneDNN custom operations", "TF_ENABLE_ONEDNN_OPTS",
                                   "rebuild TensorFlow with the appropriate", "This TensorFlow binary",
                                   "cudart_stub", "Unable to register", "FutureWarning", "warnings.warn",
                                   "TF-TRT Warning", "triggered tf.function retracing"))


def ensure_torch_env() -> bool:
    """Create the separate PyTorch venv when needed; False (with a message) when that is impossible."""
    if os.path.exists(TORCH_PYTHON):
        ok = subprocess.run([TORCH_PYTHON, "-c", "import torch, numpy"], capture_output=True).returncode == 0
        if ok:
            return True
    rc = subprocess.run(["bash", TORCH_SETUP], cwd=REPO_ROOT).returncode
    if rc != 0:
        print("SKIP: PyTorch side unavailable (scripts/setup_torch_env.sh failed); TF figures only")
        return False
    return True


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"
