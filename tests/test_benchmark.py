"""benchmarks/throughput.py runs every kind of mode and reports what the issue asks for;
benchmarks/memory.py compares the two ways of keeping membranes for BPTT."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str = "throughput"):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_json_has_the_required_keys_and_ratios(capsys):
    benchmark = load_benchmark()
    modes = ("train,infer,train_no_neurons,train_glibc_default,train_stored_membranes,train_grad_norm,"
             "train_output_jitter,baseline_train,baseline_infer")
    benchmark.main(["--json", "--batch", "2", "--size", "8", "--rounds", "1", "--steps", "1", "--modes", modes])
    result = json.loads(capsys.readouterr().out)
    for key in ("train_img_s", "infer_img_s", "baseline_train_img_s", "baseline_infer_img_s",
                "train_no_neurons_img_s", "train_glibc_default_img_s", "train_stored_membranes_img_s",
                "train_grad_norm_img_s", "train_output_jitter_img_s", "cpu_cores"):
        assert result[key] > 0, key
    # The rates are rounded to 0.1 img/s and the ratios, computed before, to 0.01: each ratio
    # lies within what the rounded rates allow (on a loaded machine a rate can be 0.3 img/s).
    for mode, baseline in (("train", "baseline_train"), ("infer", "baseline_infer")):
        rate, base = result[f"{mode}_img_s"], result[f"{baseline}_img_s"]
        lowest, highest = (rate - 0.05) / (base + 0.05), (rate + 0.05) / max(base - 0.05, 1e-9)
        assert lowest - 0.005 <= result[f"{mode}_vs_baseline"] <= highest + 0.005, (mode, rate, base)


def test_no_neuron_mode_removes_every_neuron():
    benchmark = load_benchmark()
    from vtsnn.models import UVTSNN

    model = UVTSNN()
    benchmark.remove_neurons(model)
    assert not [m for m in model.modules() if hasattr(m, "v_threshold")]
    out = model(torch.rand(8, 1, 1, 8, 8))
    assert out.shape == (8, 1, 1, 8, 8)


def test_memory_benchmark_runs_both_settings_in_fresh_processes(capsys):
    result = load_benchmark("memory").main(["--json", "--batch", "2"])
    assert json.loads(capsys.readouterr().out) == result
    for name in ("recomputed", "stored"):
        assert result[f"{name}_peak_mib"] >= result[f"{name}_idle_mib"] > 0
    assert result["batch"] == 2


def test_profile_step_names_the_convolutions(capsys):
    # Every row, so that the shape looked for is listed however the ops' times rank on a busy machine.
    table = load_benchmark("profile_step").main(["--mode", "train", "--steps", "1", "--batch", "2", "--size", "8",
                                                 "--by-shape", "--rows", "1000"])
    assert "convolution_backward" in table          # a training step was profiled
    assert "[16, 1, 8, 8]" in table                    # by shape: T=8 x batch 2 folded, one channel
    assert table in capsys.readouterr().out


def test_authors_style_modes_run_with_spikingjelly_or_are_skipped_with_a_note(capsys):
    benchmark = load_benchmark()
    benchmark.main(["--json", "--batch", "2", "--size", "8", "--rounds", "1", "--steps", "1",
                    "--modes", "train,authors_train"])
    out, err = capsys.readouterr()
    if benchmark.spikingjelly_version() is None:
        assert "spikingjelly is not installed: skipping authors_train" in err
        result = json.loads(out)
        assert "authors_train_img_s" not in result and result["spikingjelly"] is None
    else:
        result = json.loads(out)
        assert result["authors_train_img_s"] > 0
        assert result["train_vs_authors"] == pytest.approx(result["train_img_s"] / result["authors_train_img_s"],
                                                           rel=0.1)


def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        load_benchmark().main(["--device", "cuda", "--modes", "infer"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_benchmark_runs_every_kind_of_mode_on_the_gpu(capsys):
    result = load_benchmark().main(["--json", "--device", "cuda", "--batch", "4", "--size", "8", "--rounds", "1",
                                    "--steps", "1", "--modes", "train,train_itbp_detached,infer,baseline_train"])
    assert result["train_img_s"] > 0 and result["infer_img_s"] > 0
    assert result["device"] == torch.cuda.get_device_name()


def test_parallel_runs_sums_the_workers_and_compares_with_one_run(capsys):
    result = load_benchmark("parallel_runs").main(["--json", "--batch", "2", "--size", "8", "--jobs", "2",
                                                   "--rounds", "1", "--seconds", "0.5", "--start-delay", "8"])
    assert json.loads(capsys.readouterr().out) == result
    assert result["one_run_img_s"] > 0 and result["side_by_side_img_s"] > 0
    assert result["side_by_side_vs_one_run"] == pytest.approx(
        result["side_by_side_img_s"] / result["one_run_img_s"], rel=0.05)
    assert (result["jobs"], result["threads_each"]) == (2, max(1, result["cpu_cores"] // 2))


def test_parallel_runs_refuses_more_jobs_than_cores(capsys):
    with pytest.raises(SystemExit):
        load_benchmark("parallel_runs").main(["--jobs", str(10_000)])
    assert "--jobs must be between 1 and" in capsys.readouterr().err
