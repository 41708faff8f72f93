"""The machine a result was computed on: processor, kernel level, threads, host.

Results carry this because training is repeatable on one machine but not across
processors (README, "Training that learns").
"""

from __future__ import annotations

import platform
import socket
from pathlib import Path

import torch


def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what ``platform`` knows.

    Recorded because bf16 training is deterministic on one machine but not across
    processors: the same run, code and seed on an AMD EPYC and on the machine of an
    earlier session drifted apart within 100 steps (results/recipe-parts).
    """
    named = [name for name in _cpuinfo_values("model name") or () if name]
    return named[0] if named else platform.processor() or platform.machine()


def _cpuinfo_values(key: str) -> list[str] | None:
    """Every value of ``key`` in /proc/cpuinfo (one per processor), stripped; None where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    lines = (line.partition(":") for line in text.splitlines())
    return [value.strip() for name, _, value in lines if name.strip() == key]


# Instruction sets that compute in bf16 natively; without them oneDNN emulates bf16 and a
# bf16 training step runs 8x slower than fp32 (results/benchmarks/throughput-avx2.json).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> set[str] | None:
    """The processor's feature flags from /proc/cpuinfo, or None where it cannot be read."""
    flags = _cpuinfo_values("flags")
    return set(flags[0].split()) if flags else None


def cpu_has_native_bf16() -> bool | None:
    """Whether the CPU computes in bf16 natively (AMX or AVX-512 BF16); None where unknown."""
    flags = cpu_flags()
    if flags is None:
        return None
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def describe(device: torch.device) -> dict:
    """What a result record says about the machine that computed it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    # The instruction set torch's CPU kernels dispatch to (e.g. AVX512, AVX2): it decides
    # their rounding, so two machines at one level are likelier to train alike.
    return {"device": str(device), "name": name, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "host": socket.gethostname()}
