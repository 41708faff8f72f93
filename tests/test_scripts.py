"""The helper scripts under scripts/ that the README's numbers come from."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_losses_average_each_epochs_logged_losses_beside_its_test_psnr(tmp_path):
    records = [{"kind": "train", "epoch": 1, "loss": 0.4}, {"kind": "train", "epoch": 1, "loss": 0.2},
               {"kind": "eval", "epoch": 1, "psnr": 19.5},
               {"kind": "train", "epoch": 2, "loss": 0.1}]          # interrupted before epoch 2's eval
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    rows = load_script("epoch_losses").epoch_rows(log)
    assert rows == [(1, pytest.approx(0.3), 19.5), (2, pytest.approx(0.1), None)]


def test_hidden_mean_leaves_out_the_output_neuron():
    script = load_script("hidden_firing_rates")
    assert script.hidden_mean({"enc0.1": 0.1, "enc0.3": 0.3, script.OUTPUT_LAYER: 0.9}) == pytest.approx(0.2)
