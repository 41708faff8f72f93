"""The helper scripts under scripts/ that the README's numbers come from."""

import importlib.util
import json
import math
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


def test_causal_ceiling_scores_bit_planes_and_trains_every_plane_network(tiny_mnist, tmp_path, capsys):
    import torch
    from vtsnn.coding import uwe_encode
    script = load_script("causal_ceiling")
    clean = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    planes = uwe_encode(clean)
    assert script.bit_error_rates(planes, clean) == [0.0] * 8
    flipped = planes.clone()
    flipped[0] = 1 - flipped[0]                 # every most significant bit wrong: off by 128
    assert script.bit_error_rates(flipped, clean) == [1.0] + [0.0] * 7
    assert script.decoded_psnr(flipped, clean) == pytest.approx(20 * math.log10(255 / 128))
    assert script.plane_inputs(clean, range(3)).shape == (4, 3, 8, 8)

    out = tmp_path / "ceiling.json"
    script.main(["--data-dir", str(tiny_mnist), "--epochs", "1", "--train-limit", "50", "--test-limit", "8",
                 "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["rows"]) == {"causal", "all planes"}
    for row in result["rows"].values():
        assert len(row["bit_error_rates"]) == 8 and all(0 <= r <= 1 for r in row["bit_error_rates"])
        assert math.isfinite(row["psnr"])
    assert "all planes, plane 7: trained" in capsys.readouterr().out


def test_causal_ceiling_reads_a_spiking_models_output_planes():
    import torch
    script = load_script("causal_ceiling")
    noisy = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    bits = script.snn_output_bits("mnist-if-0.2", noisy)
    assert bits.shape == (8, 3, 1, 28, 28)
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
