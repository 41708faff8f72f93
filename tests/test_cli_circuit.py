"""Tests for the ``vtsnn circuit`` command (vtsnn.cli_circuit).

The command runs in-process through ``cli.main(argv)``, with ``circuit`` added to the
parser here if ``cli.build_parser`` does not register it yet. Models are tiny
U-VTSNNs (channels 4, 8) saved in tmp folders; the test set is the fake 16-image
MNIST of the ``tiny_mnist`` fixture (conftest.py); grids are two or three values and one or two
seeds, so every run takes well under a second of compute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from vtsnn import checkpoint, cli, cli_circuit
from vtsnn.config import TrainConfig
from vtsnn.train import build_model

from test_cli import assert_clean_error, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_GRIDS = ["mismatch=0,0.2", "comparator_offset=0,1lsb"]


@pytest.fixture(autouse=True)
def circuit_command(monkeypatch):
    """``cli.main`` with the circuit command, whether or not cli registers it itself."""
    build_parser = cli.build_parser

    def parser_with_circuit() -> argparse.ArgumentParser:
        parser = build_parser()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "circuit" not in commands.choices:
            cli_circuit.add_command(commands)
        return parser

    monkeypatch.setattr(cli, "build_parser", parser_with_circuit)


def save_tiny_model(folder: Path, firing: bool = True, **overrides) -> Path:
    """A tiny spiking model; ``firing`` makes its head weights positive so the output spikes.

    Freshly initialized, the tiny model's output neurons never reach threshold, and
    a silent output is all-zero whatever the DAC does, which would hide its errors.
    """
    config = TrainConfig(**{"channels": (4, 8), "init": "spiking", **overrides})
    torch.manual_seed(0)
    model = build_model(config)
    if firing:
        with torch.no_grad():
            model.head.weight.abs_().mul_(3.0)
    checkpoint.save_weights(folder, model, config.to_dict())
    return folder


def run_circuit(capsys, *argv) -> tuple[int, str, str]:
    return run_cli(capsys, "circuit", "--quiet", *argv)


@pytest.fixture
def firing_model(tmp_path) -> Path:
    return save_tiny_model(tmp_path / "model")


# ------------------------------------------------------------------ the whole command


def test_circuit_writes_the_four_files_and_the_json_has_every_key(capsys, tmp_path, tiny_mnist, firing_model):
    out = tmp_path / "results"
    code, stdout, err = run_circuit(capsys, "--model", firing_model, "--data-dir", tiny_mnist,
                                    "--parameters", "mismatch,comparator_offset", "--values", *TINY_GRIDS,
                                    "--seeds", "0,1", "--test-limit", 8, "--out", out)
    assert code == 0, err
    for name in ("sweep.json", "sweep.md", "sweep.png", "psnr.png"):
        assert (out / name).is_file(), name
    for name in ("sweep.png", "psnr.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC

    report = json.loads((out / "sweep.json").read_text())
    assert {"command", "model", "test_images", "kinds", "parameters", "values", "seeds", "psnr_ideal",
            "noisy_psnr", "figures_of_merit", "end_to_end", "bits", "v_ref"} <= set(report)
    assert report["command"].startswith("vtsnn circuit ")
    assert report["model"] == str(firing_model) and report["test_images"] == 8
    assert report["precision"] == "fp32"        # the precision the model was trained in
    assert report["kinds"] == ["binary", "r2r"] and report["seeds"] == [0, 1]
    assert report["values"]["comparator_offset"] == [0.0, 1 / 256]
    # 2 parameters x 2 values x 2 kinds, in both sweeps.
    assert len(report["figures_of_merit"]) == 8 and len(report["end_to_end"]) == 8
    for record in report["end_to_end"]:
        assert {"parameter", "value", "kind", "seeds", "psnr_mean", "psnr_std", "psnr_ideal",
                "noisy_psnr"} <= set(record)
    for record in report["figures_of_merit"]:
        assert {"max_abs_dnl", "max_abs_inl", "missing_codes", "enob"} <= set(record)

    markdown = (out / "sweep.md").read_text()
    assert "## Figures of merit" in markdown and "## Denoising with the circuits" in markdown
    assert "| binary | 1 LSB (3.91 mV) |" in markdown
    assert "ENOB (bits)" in stdout and "PSNR with circuits (dB)" in stdout   # the tables are printed


def test_ideal_circuits_give_exactly_the_ideal_psnr(capsys, tmp_path, tiny_mnist, firing_model):
    out = tmp_path / "results"
    code, _, err = run_circuit(capsys, "--model", firing_model, "--data-dir", tiny_mnist,
                               "--parameters", "comparator_noise,v_ref_error", "--values", "comparator_noise=0",
                               "v_ref_error=0", "--seeds", "0,1", "--test-limit", 8, "--out", out,
                               "--precision", "bf16")
    assert code == 0, err
    report = json.loads((out / "sweep.json").read_text())
    assert report["precision"] == "bf16" and "run in bf16" in (out / "sweep.md").read_text()
    for record in report["end_to_end"]:
        assert record["psnr_per_seed"] == [record["psnr_ideal"]] * 2
        assert record["psnr_mean"] == record["psnr_ideal"] and record["psnr_std"] == 0.0


def test_large_mismatch_changes_the_psnr_of_a_firing_model(capsys, tmp_path, tiny_mnist, firing_model):
    out = tmp_path / "results"
    code, _, err = run_circuit(capsys, "--model", firing_model, "--data-dir", tiny_mnist, "--kind", "binary",
                               "--parameters", "mismatch", "--values", "0,0.2", "--seeds", "0,1",
                               "--test-limit", 8, "--out", out)
    assert code == 0, err
    ideal_chip, mismatched = json.loads((out / "sweep.json").read_text())["end_to_end"]
    assert ideal_chip["psnr_mean"] == ideal_chip["psnr_ideal"]
    assert mismatched["psnr_mean"] != mismatched["psnr_ideal"]
    assert len(set(mismatched["psnr_per_seed"])) == 2          # two chips, two different draws


def test_skip_denoise_needs_no_model_and_writes_no_psnr(capsys, tmp_path, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    (out / "psnr.png").write_bytes(PNG_MAGIC)                  # left by an earlier run
    monkeypatch.setattr(cli, "load_model", lambda *a, **k: pytest.fail("--skip-denoise loaded a model"))
    code, stdout, err = run_circuit(capsys, "--skip-denoise", "--kind", "r2r", "--parameters", "v_ref_error",
                                    "--values", "0,0.05", "--seeds", "0", "--out", out)
    assert code == 0, err
    report = json.loads((out / "sweep.json").read_text())
    assert report["model"] is None and report["test_images"] == 0 and report["end_to_end"] == []
    assert [r["value"] for r in report["figures_of_merit"]] == [0.0, 0.05]
    assert (out / "sweep.png").is_file() and not (out / "psnr.png").exists()
    assert "Denoising" not in stdout


def test_default_grids_are_the_documented_ones():
    args = cli.build_parser().parse_args(["circuit"])
    plan = cli_circuit.parse_plan(args)
    assert plan.kinds == ("binary", "r2r") and plan.seeds == (0, 1, 2) and plan.test_limit == 1000
    assert plan.values["mismatch"] == (0.0, 0.001, 0.003, 0.01, 0.03)
    assert plan.values["v_ref_error"] == (0.0, 0.001, 0.01, 0.05)
    lsb = 1 / 256
    for parameter in ("comparator_offset", "comparator_noise"):
        assert plan.values[parameter] == pytest.approx([0, 0.1 * lsb, 0.25 * lsb, 0.5 * lsb, lsb, 2 * lsb])
    assert str(args.out) == "results/circuit"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("argv, phrases", [
    (["--parameters", "mismatch,temperature"], ["unknown 'temperature'", "comparator_noise"]),
    (["--parameters", "mismatch,v_ref_error", "--values", "0,0.1"], ["name one as NAME=V1,V2"]),
    (["--parameters", "mismatch", "--values", "v_ref_error=0.1"], ["not among the swept parameters"]),
    (["--parameters", "mismatch", "--values", "0,abc"], ["'abc' is not a number"]),
    (["--parameters", "mismatch", "--values", "0.5lsb"], ["mismatch is relative"]),
    (["--parameters", "mismatch", "--values", "-0.01"], ["mismatch must be a finite number >= 0"]),
    (["--seeds", "0,x"], ["--seeds"]),
    (["--test-limit", "-1"], ["--test-limit"]),
])
def test_bad_options_are_one_line_errors(capsys, tmp_path, argv, phrases):
    code, _, err = run_circuit(capsys, "--skip-denoise", "--out", tmp_path / "out", *argv)
    assert_clean_error(code, err, *phrases)
    assert not (tmp_path / "out").exists()


def test_bad_model_is_a_one_line_error(capsys, tmp_path, tiny_mnist):
    code, _, err = run_circuit(capsys, "--model", tmp_path / "no-such-model", "--data-dir", tiny_mnist,
                               "--parameters", "mismatch", "--values", "0", "--out", tmp_path / "out")
    assert_clean_error(code, err, "no-such-model")
    assert not (tmp_path / "out").exists()


def test_a_model_without_uwe_and_uwd_is_refused(capsys, tmp_path, tiny_mnist):
    model = save_tiny_model(tmp_path / "ann", firing=False, training="ann", init="default")
    code, _, err = run_circuit(capsys, "--model", model, "--data-dir", tiny_mnist, "--parameters", "mismatch",
                               "--values", "0", "--out", tmp_path / "out")
    assert_clean_error(code, err, "replace the UWE encoder", "training='ann'")


def test_help_lists_the_options(capsys):
    assert cli.main(["circuit", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--kind", "--parameters", "--values", "--seeds", "--test-limit", "--out",
                   "--data-dir", "--device", "--precision", "--skip-denoise", "--quiet"):
        assert option in text, option
    assert "comparator_offset 0,0.1,0.25,0.5,1,2 LSB" in text
