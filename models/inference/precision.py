"""`export.precision`: the arithmetic of the served graph, and whether this machine can run it.

float32 runs everywhere. bfloat16 is fast only where the CPU multiplies it natively (x86 AVX512_BF16
or AMX, ARM BF16): elsewhere TF still runs it, through emulation several times slower than float32,
which is never what anyone wants from a speed setting, so the export refuses it with a clear error.
float16 is for GPUs (tensor cores); on a CPU TF runs it through Eigen, slower than float32: refused
when no GPU is visible. The check runs on the machine that exports (the Trainer, which checks before
its first step); serve the model on the same kind of machine.
"""
from __future__ import annotations

import platform

from config.checks import ConfigError
from config.sections import PRECISIONS

# /proc/cpuinfo flags of a CPU with native bfloat16 arithmetic (x86: "flags", ARM: "Features").
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set:
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    return bool(cpu_flags(cpuinfo) & BF16_FLAGS)


def check_supported(precision: str, cpuinfo: str = "/proc/cpuinfo") -> None:
    """Raise ConfigError naming the setting when this machine cannot run `precision` at speed."""
    if precision not in PRECISIONS:
        raise ConfigError(f"export.precision must be one of {', '.join(map(repr, PRECISIONS))}; got {precision!r}")
    if precision == "bfloat16" and not cpu_has_bf16(cpuinfo):
        raise ConfigError(
            f"export.precision=bfloat16 needs a CPU with native bfloat16 arithmetic (x86 AVX512_BF16 or AMX, "
            f"ARM BF16); this {platform.machine()} CPU has none (checked {cpuinfo}), where bfloat16 is emulated "
            "and slower than float32: use float32")
    if precision == "float16":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            raise ConfigError("export.precision=float16 is for GPUs and none is visible here (on a CPU float16 "
                              "runs slower than float32): use float32, or bfloat16 on a CPU that has it")


def tf_dtype(precision: str):
    import tensorflow as tf

    return tf.as_dtype(precision)
