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
