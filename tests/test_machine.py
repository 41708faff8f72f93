import platform
from pathlib import Path

import torch

from vtsnn import machine


def test_describe_names_the_processor_and_its_kernel_level():
    described = machine.describe(torch.device("cpu"))
    assert described["name"] == machine.cpu_name() != ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():     # Linux: the model, not just "x86_64"
        assert described["name"] != platform.machine()
    assert described["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert described["threads"] == torch.get_num_threads() and described["device"] == "cpu"


def test_cpu_name_falls_back_to_platform_without_proc_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "Path", lambda _: tmp_path / "no-cpuinfo")
    assert machine.cpu_name() == (platform.processor() or platform.machine()) != ""


def test_cpu_name_reads_the_first_model_name(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\n\nprocessor\t: 1\nmodel name\t: Other\n")
    monkeypatch.setattr(machine, "Path", lambda _: cpuinfo)
    assert machine.cpu_name() == "Some CPU 9000"


def _fake_cpuinfo(monkeypatch, tmp_path, flags: str):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(machine, "Path", lambda _: cpuinfo)


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    _fake_cpuinfo(monkeypatch, tmp_path, "fpu sse2 avx2 fma")
    assert machine.cpu_flags() == {"fpu", "sse2", "avx2", "fma"}
    assert machine.cpu_has_native_bf16() is False
    _fake_cpuinfo(monkeypatch, tmp_path, "avx2 avx512f avx512_bf16")
    assert machine.cpu_has_native_bf16() is True
    _fake_cpuinfo(monkeypatch, tmp_path, "avx2 amx_tile amx_bf16")
    assert machine.cpu_has_native_bf16() is True


def test_native_bf16_is_unknown_without_proc_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "Path", lambda _: tmp_path / "no-cpuinfo")
    assert machine.cpu_flags() is None and machine.cpu_has_native_bf16() is None
