"""vtsnn.allocator: glibc keeps freed memory for reuse when asked, and gives it back otherwise."""

from __future__ import annotations

import os
import platform

import pytest
import torch

from vtsnn.allocator import keep_freed_memory

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting applies to glibc only")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def resident_after_freeing(megabytes: int) -> int:
    """Resident memory after allocating, touching and freeing a block of ``megabytes``."""
    block = torch.ones(megabytes * 2**20, dtype=torch.uint8)
    del block
    return resident_bytes()


@glibc_only
def test_freed_memory_stays_for_reuse_only_when_kept():
    try:
        assert keep_freed_memory(False)
        before = resident_bytes()
        assert resident_after_freeing(256) - before < 64 * 2**20      # glibc default: handed back
        assert keep_freed_memory(True)
        before = resident_bytes()
        assert resident_after_freeing(256) - before > 200 * 2**20     # kept for the next step
    finally:
        keep_freed_memory(False)


@glibc_only
def test_environment_variable_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("VTSNN_KEEP_MEMORY", "0")
    assert keep_freed_memory(True) is False
    assert keep_freed_memory(False) is True      # restoring the defaults is always allowed
