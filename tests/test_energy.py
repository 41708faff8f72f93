"""Operation counts, energy and the ``vtsnn energy`` command (vtsnn.energy, vtsnn.cli_energy).

Counts are checked against hand arithmetic on single layers, against a brute-force
all-ones layer, and on the default U-VTSNN's layer list. Models are tiny and inputs
a few images: the machine's cores are busy training. The real-MNIST test runs only
when VTSNN_DATA is set.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vtsnn import checkpoint, cli, cli_energy, pretrained
from vtsnn.coding import uwe_encode
from vtsnn.energy import (PRESETS, count_operations, count_operations_on_images, energy_report, format_table,
                          macs_per_image, synaptic_operations)
from vtsnn.layers import TimeFolded
from vtsnn.models import UNetANN, UVTSNN, count_parameters
from vtsnn.neurons import IF
from vtsnn.config import TrainConfig
from vtsnn.train import build_model, encode_input, load_test_set

REAL_DATA = os.environ.get("VTSNN_DATA", "")
needs_real_data = pytest.mark.skipif(not REAL_DATA, reason="set VTSNN_DATA to run tests on the real datasets")


class OneLayerSNN(nn.Module):
    """One time-folded layer followed by an IF neuron: the smallest spiking model."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = TimeFolded(layer)
        self.neuron = IF()

    def forward(self, spikes):
        return self.neuron(self.layer(spikes))


def single_spike(row: int, col: int, size: int = 5) -> torch.Tensor:
    spikes = torch.zeros(1, 1, 1, size, size)          # [T, B, C, H, W]
    spikes[0, 0, 0, row, col] = 1.0
    return spikes


def random_spikes(*shape, rate=0.3, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < rate).float()


def tiny_uvtsnn() -> UVTSNN:
    torch.manual_seed(0)
    return build_model(TrainConfig(channels=(4, 8), init="spiking"))


# ============================================================================ MACs

def test_conv_macs_by_hand():
    counts = count_operations(nn.Conv2d(2, 3, 3, padding=1, bias=False), torch.rand(2, 2, 5, 5))
    assert counts[0].mac == 5 * 5 * 2 * 3 * 9 == 1350
    assert counts[0].flops == 2 * 1350
    assert counts[0].output_shape == (3, 5, 5)
    assert counts[0].params == 54
    assert counts[0].input_rate is None and counts[0].snn_ac_exact is None   # an ANN: no spikes


def test_strided_grouped_conv_macs_by_hand():
    layer = nn.Conv2d(4, 6, 3, stride=2, groups=2, bias=False)               # 9x9 -> 4x4
    assert macs_per_image(layer, (4, 9, 9), (6, 4, 4)) == 4 * 4 * 4 * 6 * 9 // 2


def test_transposed_conv_macs_by_hand():
    counts = count_operations(nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False), torch.rand(1, 4, 3, 3))
    assert counts[0].kind == "conv_transpose"
    assert counts[0].mac == 3 * 3 * 4 * 2 * 4 == 288                          # H_in W_in C_in C_out K^2


def test_linear_macs_by_hand():
    assert count_operations(nn.Linear(5, 7, bias=False), torch.rand(3, 5))[0].mac == 35
    assert macs_per_image(nn.Linear(5, 7), (3, 5), (3, 7)) == 3 * 35           # a linear layer per position


# ============================================================================ exact ACs

@pytest.mark.parametrize("row, col, fan_out", [(2, 2, 4 * 9), (0, 0, 4 * 4), (0, 2, 4 * 6), (4, 4, 4 * 4)])
def test_one_spike_triggers_its_fan_out(row, col, fan_out):
    model = OneLayerSNN(nn.Conv2d(1, 4, 3, padding=1, bias=False))
    count = count_operations(model, single_spike(row, col))[0]
    assert count.snn_ac_exact == fan_out
    assert count.input_rate == pytest.approx(1 / 25)
    # The paper's formula charges every spike an interior fan-out: rate x T x MACs = 36.
    assert count.snn_ac_paper_formula == pytest.approx(1 / 25 * 1 * 5 * 5 * 4 * 9)


def test_no_spikes_no_operations():
    count = count_operations(OneLayerSNN(nn.Conv2d(1, 4, 3, padding=1, bias=False)), torch.zeros(3, 2, 1, 5, 5))[0]
    assert count.snn_ac_exact == 0 and count.snn_ac_paper_formula == 0 and count.input_rate == 0


def test_operations_sum_over_time_and_average_over_images():
    spikes = torch.zeros(2, 2, 1, 5, 5)
    spikes[0, 0, 0, 2, 2] = 1      # image 0, step 0: centre (36)
    spikes[1, 0, 0, 0, 0] = 1      # image 0, step 1: corner (16)
    spikes[1, 1, 0, 2, 2] = 1      # image 1, step 1: centre (36)
    model = OneLayerSNN(nn.Conv2d(1, 4, 3, padding=1, bias=False))
    for batch_size in (1, 2):
        assert count_operations(model, spikes, batch_size=batch_size)[0].snn_ac_exact == (36 + 16 + 36) / 2


@pytest.mark.parametrize("layer, input_shape", [
    (nn.Conv2d(4, 6, 3, padding=1, bias=False), (4, 7, 7)),
    (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False), (4, 9, 9)),
    (nn.Conv2d(3, 5, 5, padding=2, dilation=2, bias=False), (3, 8, 8)),
    (nn.ConvTranspose2d(4, 6, 2, stride=2, bias=False), (4, 5, 5)),
    (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False), (4, 5, 5)),
])
def test_exact_count_matches_the_full_all_ones_layer(layer, input_shape):
    spikes = random_spikes(3, *input_shape)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        brute_force = layer(spikes).sum().item()
    assert synaptic_operations(layer, spikes) == brute_force


def test_counts_stay_exact_when_the_model_runs_in_bf16():
    # 64 input channels x a 3x3 kernel reach up to 576 synapses per output: past bf16's exact integers.
    model = OneLayerSNN(nn.Conv2d(64, 4, 3, padding=1, bias=False))
    spikes = random_spikes(6, 64, 6, 6, rate=0.9)

    def count(**arithmetic):
        return count_operations_on_images(model, spikes, lambda batch: batch.unsqueeze(0), 3, **arithmetic)[0]
    in_bf16 = count(arithmetic=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    in_fp32 = count()
    assert in_bf16.snn_ac_exact == in_fp32.snn_ac_exact == synaptic_operations(model.layer.module, spikes) / 6
    assert in_bf16.input_rate == in_fp32.input_rate


def test_exact_count_of_a_linear_layer():
    spikes = random_spikes(6, 10)
    assert synaptic_operations(nn.Linear(10, 3), spikes) == F.linear(spikes, torch.ones(3, 10)).sum().item()


def test_non_binary_input_to_a_spiking_model_is_refused():
    with pytest.raises(ValueError, match="non-binary"):
        count_operations(OneLayerSNN(nn.Conv2d(1, 2, 3)), torch.full((1, 1, 1, 5, 5), 0.5))


# ============================================================================ U-VTSNN

def expected_uvtsnn_macs(size=28, channels=(16, 32, 64), in_channels=1):
    """Hand sum over the layer list of models.py's docstring."""
    c1, c2, c3 = channels
    s1, s2, s3 = size, size // 2, size // 4

    def conv3(cin, cout, side):
        return side * side * cin * cout * 9

    def up2(cin, cout, side_in):
        return side_in * side_in * cin * cout * 4

    return [conv3(in_channels, c1, s1), conv3(c1, c1, s1),                 # enc1
            conv3(c1, c2, s2), conv3(c2, c2, s2),                          # enc2
            conv3(c2, c3, s3), conv3(c3, c3, s3),                          # enc3
            up2(c3, c2, s3), conv3(2 * c2, c2, s2), conv3(c2, c2, s2),     # dec2
            up2(c2, c1, s2), conv3(2 * c1, c1, s1), conv3(c1, c1, s1),     # dec1
            s1 * s1 * c1 * 1]                                              # head, 1x1


@pytest.fixture(scope="module")
def default_uvtsnn_counts():
    torch.manual_seed(0)
    model = UVTSNN()
    images = torch.randint(0, 256, (1, 1, 28, 28))
    return model, count_operations(model, uwe_encode(images))


def test_uvtsnn_macs_and_params_per_layer_match_the_hand_sum(default_uvtsnn_counts):
    model, counts = default_uvtsnn_counts
    expected = expected_uvtsnn_macs()
    assert [c.mac for c in counts] == expected
    assert sum(c.mac for c in counts) == sum(expected) == 18_991_616
    assert sum(c.params for c in counts) == count_parameters(model) == 116_384
    convs = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.name for c in counts] == convs                                 # forward order = definition order


def test_exact_count_never_exceeds_the_papers_formula(default_uvtsnn_counts):
    _, counts = default_uvtsnn_counts
    for count in counts:
        assert 0 <= count.input_rate <= 1
        assert count.snn_ac_exact <= count.snn_ac_paper_formula + 1e-6
        if count.kind == "conv_transpose":          # 2x2/2: every tap lands inside, the two agree
            assert count.snn_ac_exact == pytest.approx(count.snn_ac_paper_formula)
    assert counts[0].snn_ac_exact < counts[0].snn_ac_paper_formula           # border taps not counted


def test_first_layer_rate_is_the_mean_of_the_uwe_input():
    images = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    spikes = uwe_encode(images)
    counts = count_operations(tiny_uvtsnn(), spikes, batch_size=2)
    assert counts[0].input_rate == pytest.approx(spikes.double().mean().item(), rel=1e-12)
    assert counts[0].time_steps == 8
    assert counts[0].snn_ac_paper_formula == pytest.approx(spikes.double().mean().item() * 8 * counts[0].mac)


def test_the_ann_twin_counts_the_same_macs_and_no_spikes():
    torch.manual_seed(0)
    counts = count_operations(UNetANN(channels=(4, 8)), torch.rand(2, 1, 28, 28))
    assert [c.mac for c in counts] == [c.mac for c in count_operations(tiny_uvtsnn(), torch.zeros(8, 1, 1, 28, 28))]
    assert all(c.input_rate is None and c.snn_ac_exact is None for c in counts)


# ============================================================================ energy

def test_presets_are_horowitz_45nm():
    assert (PRESETS["45nm-fp32"].mac_pj, PRESETS["45nm-fp32"].ac_pj) == (4.6, 0.9)
    assert (PRESETS["45nm-fp16"].mac_pj, PRESETS["45nm-fp16"].ac_pj) == (1.5, 0.4)
    assert (PRESETS["45nm-int8"].mac_pj, PRESETS["45nm-int8"].ac_pj) == (0.23, 0.03)


def test_energy_ratio_is_mac_energy_over_ac_energy():
    images = torch.randint(0, 256, (2, 1, 28, 28), generator=torch.Generator().manual_seed(2))
    counts = count_operations(tiny_uvtsnn(), uwe_encode(images))
    report = energy_report(counts, "45nm-fp32")
    totals = report["totals"]
    macs, acs = sum(c.mac for c in counts), sum(c.snn_ac_exact for c in counts)
    assert acs > 0
    assert totals["ann_snn_ratio_exact"] == pytest.approx(macs * 4.6 / (acs * 0.9))
    paper = sum(c.snn_ac_paper_formula for c in counts)
    assert totals["ann_snn_ratio_paper_formula"] == pytest.approx(macs * 4.6 / (paper * 0.9))
    assert report["layers"][0]["snn_energy_exact_pj"] == pytest.approx(counts[0].snn_ac_exact * 0.9)
    assert report["layers"][0]["ann_energy_pj"] == pytest.approx(counts[0].mac * 4.6)
    json.loads(json.dumps(report, allow_nan=False))                          # strict JSON
    table = format_table(report)
    assert table.count("\n| ") == len(counts) + 1                           # a row per layer and the total
    assert f"{totals['ann_snn_ratio_exact']:.2f} (exact ACs)" in table


def test_ann_report_has_energy_and_no_ratio():
    counts = count_operations(UNetANN(channels=(4, 8)), torch.rand(1, 1, 28, 28))
    report = energy_report(counts, "45nm-int8")
    assert report["totals"]["ann_energy_pj"] == pytest.approx(sum(c.mac for c in counts) * 0.23)
    assert report["totals"]["ann_snn_ratio_exact"] is None and not report["spiking"]
    json.dumps(report, allow_nan=False)
    assert "ANN/SNN" not in format_table(report)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="45nm-fp32"):
        energy_report([], "7nm-magic")


# ============================================================================ CLI

def cli_has_energy() -> bool:
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        return cli.main(["energy", "--help"]) == 0


@pytest.fixture
def energy_cli(monkeypatch, tmp_path):
    """``cli.main`` with the energy command (added here until cli.py registers it), no pretrained models."""
    if not cli_has_energy():
        add_models_command = cli.add_models_command

        def add_models_and_energy(commands):
            add_models_command(commands)
            cli_energy.add_command(commands)

        monkeypatch.setattr(cli, "add_models_command", add_models_and_energy)
    monkeypatch.setattr(pretrained, "pretrained_root", lambda: tmp_path / "no-pretrained")

    def run(capsys, *argv):
        code = cli.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def save_tiny_checkpoint(folder, **overrides):
    config = TrainConfig(channels=(4, 8), init="spiking", **overrides)
    torch.manual_seed(0)
    checkpoint.save_weights(folder, build_model(config), config.to_dict())
    return folder


def test_energy_command_prints_the_table_and_writes_json(energy_cli, capsys, tmp_path, tiny_mnist):
    model = save_tiny_checkpoint(tmp_path / "model")
    out = tmp_path / "energy.json"
    code, stdout, err = energy_cli(capsys, "energy", "--model", model, "--test-limit", 8, "--json", out,
                                   "--data-dir", tiny_mnist, "--preset", "all", "--batch-size", 3)
    assert code == 0, err
    assert "ANN/SNN energy ratio" in stdout and "| encoders.0.0 | conv |" in stdout
    payload = json.loads(out.read_text())
    assert payload["images"] == 8 and payload["dataset"] == "mnist" and payload["noise"] == 0.2
    assert payload["precision"] == "fp32"           # the precision the model was trained in
    assert set(payload["reports"]) == set(PRESETS)
    fp32 = payload["reports"]["45nm-fp32"]
    assert len(fp32["layers"]) == 4 + 3 + 1 and fp32["time_steps"] == 8
    for key in ("mac", "flops", "snn_ac_exact", "snn_ac_paper_formula", "ann_energy_pj", "snn_energy_exact_pj",
                "ann_snn_ratio_exact", "ann_snn_ratio_paper_formula", "input_rate", "params"):
        assert key in fp32["totals"]
    assert fp32["totals"]["snn_ac_exact"] == payload["reports"]["45nm-int8"]["totals"]["snn_ac_exact"]


def test_energy_command_counts_the_same_images_as_the_library(energy_cli, capsys, tmp_path, tiny_mnist):
    model_dir = save_tiny_checkpoint(tmp_path / "model")
    out = tmp_path / "energy.json"
    code, _, err = energy_cli(capsys, "energy", "--model", model_dir, "--test-limit", 0, "--json", out,
                              "--data-dir", tiny_mnist)
    assert code == 0, err
    payload = json.loads(out.read_text())
    assert list(payload["reports"]) == ["45nm-fp32"] and payload["images"] == 16   # 0: the whole (fake) test set
    model, config = tiny_uvtsnn(), TrainConfig(channels=(4, 8), init="spiking")
    _, noisy = load_test_set(config, tiny_mnist)
    expected = energy_report(count_operations(model, encode_input(noisy, config)))
    assert payload["reports"]["45nm-fp32"]["totals"]["snn_ac_exact"] == expected["totals"]["snn_ac_exact"]


def test_energy_command_on_an_ann(energy_cli, capsys, tmp_path, tiny_mnist):
    model = save_tiny_checkpoint(tmp_path / "ann", training="ann")
    out = tmp_path / "energy.json"
    code, stdout, err = energy_cli(capsys, "energy", "--model", model, "--test-limit", 2, "--json", out,
                                   "--data-dir", tiny_mnist)
    assert code == 0, err
    totals = json.loads(out.read_text())["reports"]["45nm-fp32"]["totals"]
    assert totals["mac"] > 0 and totals["snn_ac_exact"] is None and totals["ann_snn_ratio_exact"] is None


@pytest.mark.parametrize("argv, phrase", [
    (["--model", "no-such-model"], "unknown pretrained model"),
    (["--model", "./missing/folder"], "not found"),
    (["--test-limit", "-1"], "--test-limit"),
])
def test_energy_command_errors_are_one_line(energy_cli, capsys, tmp_path, tiny_mnist, argv, phrase):
    if "--model" not in argv:
        argv = ["--model", save_tiny_checkpoint(tmp_path / "model"), *argv]
    code, _, err = energy_cli(capsys, "energy", *argv, "--data-dir", tiny_mnist)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vtsnn: error: ") and phrase in lines[0], err


# ============================================================================ real data

@needs_real_data
def test_real_mnist_first_layer_rate_is_the_encoded_mean():
    config = TrainConfig(channels=(4, 8), init="spiking", test_limit=4)
    _, noisy = load_test_set(config, REAL_DATA)
    spikes = encode_input(noisy, config)
    counts = count_operations(tiny_uvtsnn(), spikes, batch_size=2)
    assert counts[0].input_rate == pytest.approx(spikes.double().mean().item(), rel=1e-12)
    assert all(c.snn_ac_exact <= c.snn_ac_paper_formula + 1e-6 for c in counts)
    assert not math.isnan(energy_report(counts)["totals"]["input_rate"])
