"""Tests for vtsnn.figures: each figure is a valid PNG of plausible size; bad input raises."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from PIL import Image

from vtsnn import figures


def open_png(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format, image.size


def images(count=3, channels=1, size=8, seed=0):
    return torch.rand(count, channels, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------- denoising grid

@pytest.mark.parametrize("channels", [1, 3])
def test_denoising_grid_writes_a_png(tmp_path, channels):
    clean = images(3, channels)
    noisy = {0.1: (clean + 0.1).clamp(0, 1), 0.3: (clean + 0.3).clamp(0, 1)}
    denoised = {0.1: clean * 0.95, 0.3: clean * 0.9}
    path = figures.denoising_grid(clean, noisy, denoised, tmp_path / "sub" / "grid.png",
                                  psnr_by_eta={0.1: {"psnr": 30.0, "noisy_psnr": 20.0}, 0.3: 25.0})
    file_format, (width, height) = open_png(path)
    assert file_format == "PNG"
    # 3 image columns, 5 rows (clean + noisy/denoised per level): taller than wide.
    assert 300 < width < 1500 and height > width


def test_noise_level_panel_has_one_column_per_noise_level(tmp_path):
    clean = images(1)
    etas = (0.2, 0.4, 0.6, 0.8)
    noisy = {eta: (clean + eta / 4).clamp(0, 1) for eta in etas}
    path = figures.noise_level_panel(clean[0], noisy, {eta: clean * 0.9 for eta in etas}, tmp_path / "fig5.png",
                                     psnr_by_eta={0.2: {"psnr": 23.0, "noisy_psnr": 16.0}})
    _, (width, height) = open_png(path)
    assert width > height                          # 4 columns, 3 rows (clean, noisy, denoised)
    with pytest.raises(ValueError, match="same, non-empty noise levels"):
        figures.noise_level_panel(clean, noisy, {0.2: clean}, tmp_path / "bad.png")


def test_denoising_grid_keeps_the_first_images_only(tmp_path):
    clean = images(12)
    few = figures.denoising_grid(clean[:2], {0.2: clean[:2]}, {0.2: clean[:2]}, tmp_path / "few.png")
    many = figures.denoising_grid(clean, {0.2: clean}, {0.2: clean}, tmp_path / "many.png", max_images=4)
    assert open_png(few)[1][0] < open_png(many)[1][0]


@pytest.mark.parametrize("make_bad, message", [
    (lambda c: (c[0], {0.2: c}, {0.2: c}), "clean must be"),
    (lambda c: (c, {}, {}), "empty"),
    (lambda c: (c, {0.2: c}, {0.3: c}), "different noise levels"),
    (lambda c: (c, {0.2: c[:2]}, {0.2: c}), "shape"),
    (lambda c: (c, {0.2: c * float("nan")}, {0.2: c}), "NaN"),
    (lambda c: (c.numpy(), {0.2: c}, {0.2: c}), "tensor"),
])
def test_denoising_grid_rejects_bad_input(tmp_path, make_bad, message):
    with pytest.raises(ValueError, match=message):
        figures.denoising_grid(*make_bad(images(3)), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------------------ bit planes

@pytest.mark.parametrize("shape", [(10, 12), (1, 10, 12), (3, 10, 12)])
def test_bit_planes_figure_writes_a_png(tmp_path, shape):
    image = torch.randint(0, 256, shape, dtype=torch.uint8)
    path = figures.bit_planes_figure(image, tmp_path / "planes.png")
    file_format, (width, height) = open_png(path)
    assert file_format == "PNG" and width > 400 and height > 150


def test_bit_plane_titles_name_time_step_and_weight():
    assert figures._plane_title(0, 8) == "t=0 (MSB, weight 128)"
    assert figures._plane_title(3, 8) == "t=3 (weight 16)"
    assert figures._plane_title(7, 8) == "t=7 (LSB, weight 1)"


def test_bit_planes_of_fewer_bits(tmp_path):
    path = figures.bit_planes_figure(torch.randint(0, 4, (6, 6)), tmp_path / "two.png", bits=2)
    assert open_png(path)[0] == "PNG"


@pytest.mark.parametrize("image, bits, message", [
    (torch.zeros(2, 4, 4, dtype=torch.uint8), 8, "C 1 or 3"),
    (torch.zeros(4, dtype=torch.uint8), 8, "\\[H, W\\]"),
    (torch.full((4, 4), 300), 8, "above 255"),
    (torch.full((4, 4), 0.5), 8, "fractional"),
    (torch.zeros(4, 4, dtype=torch.uint8), 0, "bits"),
])
def test_bit_planes_figure_rejects_bad_input(tmp_path, image, bits, message):
    with pytest.raises(ValueError, match=message):
        figures.bit_planes_figure(image, tmp_path / "bad.png", bits=bits)


# -------------------------------------------------------------------- learning curve

LOG = [
    {"kind": "train", "epoch": 1, "step": 100, "images": 5000, "loss": 0.2},
    {"kind": "train", "epoch": 1, "step": 200, "images": 10000, "loss": 0.1},
    {"kind": "eval", "epoch": 1, "step": 200, "images": 10000, "psnr": 22.0, "noisy_psnr": 14.0},
    {"kind": "train", "epoch": 2, "step": 300, "images": 15000, "loss": 0.05},
    {"kind": "eval", "epoch": 2, "step": 400, "images": 20000, "psnr": 24.0, "noisy_psnr": 14.0},
    {"kind": "note", "text": "other kinds are ignored"},
]


@pytest.mark.parametrize("records", [LOG, LOG[:2], [LOG[2]]])
def test_learning_curve_writes_a_png(tmp_path, records):
    path = figures.learning_curve(records, tmp_path / "curve.png")
    file_format, (width, height) = open_png(path)
    assert file_format == "PNG" and width > 600 and height > 250


def test_learning_curve_adds_a_firing_rate_panel_when_the_log_has_rates(tmp_path):
    rates = [dict(r, firing_rates={"encoders.0.1": 0.1 * r["epoch"], "output_neuron": 0.4})
             if r["kind"] == "eval" else r for r in LOG]
    _, (plain_width, _) = open_png(figures.learning_curve(LOG, tmp_path / "plain.png"))
    _, (width, _) = open_png(figures.learning_curve(rates, tmp_path / "rates.png"))
    assert width > 1.4 * plain_width


@pytest.mark.parametrize("records, message", [
    ([], "no eval or train"),
    ([{"kind": "note"}], "no eval or train"),
    ([{"kind": "eval", "images": 5}], "lacks \\['psnr'\\]"),
    (["not a dict"], "not a dict"),
    ({"kind": "eval"}, "list of dicts"),
])
def test_learning_curve_rejects_bad_input(tmp_path, records, message):
    with pytest.raises(ValueError, match=message):
        figures.learning_curve(records, tmp_path / "bad.png")


def test_figures_leave_the_global_backend_alone(tmp_path):
    before = matplotlib.get_backend()
    figures.learning_curve(LOG, tmp_path / "curve.png")
    assert matplotlib.get_backend() == before
