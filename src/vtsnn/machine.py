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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> dict:
    """What a result record says about the machine that computed it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    # The instruction set torch's CPU kernels dispatch to (e.g. AVX512, AVX2): it decides
    # their rounding, so two machines at one level are likelier to train alike.
    return {"device": str(device), "name": name, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "host": socket.gethostname()}
