"""Figures: denoising grids (the paper's Fig. 5), UWE bit planes, learning curves.

Each function draws one PNG with matplotlib's object API (``Figure`` and the Agg
canvas), so importing or calling it never changes the global pyplot backend and
works without a display. Inputs are checked first: a wrong shape or an empty input
raises ``ValueError`` rather than producing a misleading picture.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .coding import check_bits, uwe_encode
from .metrics import psnr

__all__ = ["denoising_grid", "bit_planes_figure", "learning_curve"]

TILE_INCHES = 1.3     # side of one image tile
DPI = 120


# ---------------------------------------------------------------------------- helpers

def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _show_image(axis, image: torch.Tensor, vmax: float = 1.0) -> None:
    """Draw ``[C, H, W]`` (C = 1 gray, 3 color) without ticks."""
    pixels = image.detach().float().cpu()
    if pixels.shape[0] == 1:
        axis.imshow(pixels[0].numpy(), cmap="gray", vmin=0.0, vmax=vmax, interpolation="nearest")
    else:
        axis.imshow((pixels / vmax).clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])


def _check_batch(name: str, images, shape=None) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"{name} must be [N, C, H, W] with N >= 1 and C 1 or 3, got {tuple(images.shape)}")
    if shape is not None and tuple(images.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(images.shape)}, the clean images {tuple(shape)}")
    if not torch.isfinite(images.float()).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return images.detach().float().cpu().clamp(0.0, 1.0)


def _row_psnr(psnr_by_eta, eta, kind: str):
    """The test-set PSNR the caller gave for one noise level, or None.

    ``psnr_by_eta[eta]`` is either a number (the denoised PSNR) or a dict with
    ``psnr`` and ``noisy_psnr``, as :func:`vtsnn.train.evaluate` returns.
    """
    if not psnr_by_eta or eta not in psnr_by_eta:
        return None
    value = psnr_by_eta[eta]
    if isinstance(value, dict):
        return value.get("noisy_psnr" if kind == "noisy" else "psnr")
    return value if kind == "denoised" else None


# ------------------------------------------------------------------- denoising grid

def denoising_grid(clean, noisy_by_eta: dict, denoised_by_eta: dict, path, psnr_by_eta: dict | None = None,
                   max_images: int = 8) -> Path:
    """Clean, noisy and denoised images in a grid: one column per image, rows

        clean | noisy eta_1 | denoised eta_1 | noisy eta_2 | denoised eta_2 | ...

    as the paper's Fig. 5. Images are float ``[N, C, H, W]`` in [0, 1]; the first
    ``max_images`` are drawn. Each tile is titled with its own PSNR against the
    clean image; a row label gives the test-set PSNR from ``psnr_by_eta`` if given.
    """
    clean = _check_batch("clean", clean)
    etas = sorted(noisy_by_eta)
    if not etas:
        raise ValueError("noisy_by_eta is empty: give at least one noise level")
    if set(denoised_by_eta) != set(noisy_by_eta):
        raise ValueError(f"noisy_by_eta and denoised_by_eta name different noise levels: "
                         f"{sorted(noisy_by_eta)} vs {sorted(denoised_by_eta)}")
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    count = min(clean.shape[0], max_images)
    rows = [("clean", None, clean)]
    for eta in etas:
        rows.append(("noisy", eta, _check_batch(f"noisy_by_eta[{eta}]", noisy_by_eta[eta], clean.shape)))
        rows.append(("denoised", eta, _check_batch(f"denoised_by_eta[{eta}]", denoised_by_eta[eta], clean.shape)))

    figure = _new_figure(TILE_INCHES * count + 1.4, (TILE_INCHES + 0.25) * len(rows))
    axes = figure.subplots(len(rows), count, squeeze=False)
    for row, (kind, eta, images) in enumerate(rows):
        tile_psnr = None if kind == "clean" else psnr(images[:count], clean[:count], reduction="none")
        for column in range(count):
            axis = axes[row][column]
            _show_image(axis, images[column])
            if tile_psnr is not None:
                axis.set_title(_format_db(tile_psnr[column].item()), fontsize=8)
        axes[row][0].set_ylabel(_row_label(kind, eta, psnr_by_eta), fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def noise_level_panel(clean, noisy_by_eta: dict, denoised_by_eta: dict, path,
                      psnr_by_eta: dict | None = None) -> Path:
    """One image at several noise levels, as the paper's Fig. 5: one column per eta, rows

        clean | noisy | denoised

    ``clean`` is one image ``[C, H, W]`` (or ``[1, C, H, W]``) in [0, 1]; the dicts map
    eta to the noisy and denoised versions of it. Tiles are titled with their PSNR;
    the column heads give the test-set means from ``psnr_by_eta`` if given.
    """
    clean = _check_batch("clean", clean if clean.dim() == 4 else clean.unsqueeze(0))[:1]
    etas = sorted(noisy_by_eta)
    if not etas or set(denoised_by_eta) != set(noisy_by_eta):
        raise ValueError(f"give the same, non-empty noise levels for noisy and denoised images: "
                         f"{sorted(noisy_by_eta)} vs {sorted(denoised_by_eta)}")
    figure = _new_figure(TILE_INCHES * 1.35 * len(etas) + 0.6, (TILE_INCHES + 0.45) * 3)
    axes = figure.subplots(3, len(etas), squeeze=False)
    for column, eta in enumerate(etas):
        noisy = _check_batch(f"noisy_by_eta[{eta}]", noisy_by_eta[eta], clean.shape)[:1]
        denoised = _check_batch(f"denoised_by_eta[{eta}]", denoised_by_eta[eta], clean.shape)[:1]
        for row, (kind, image) in enumerate((("clean", clean), ("noisy", noisy), ("denoised", denoised))):
            axis = axes[row][column]
            _show_image(axis, image[0])
            if kind == "clean":
                axis.set_title(f"η = {eta:g}", fontsize=9)
            else:
                tile = psnr(image, clean, reduction="none")[0].item()
                mean = _row_psnr(psnr_by_eta, eta, kind)
                axis.set_title(_format_db(tile) + ("" if mean is None else f"\n(test mean {float(mean):.2f})"),
                               fontsize=7)
            if column == 0:
                axis.set_ylabel(kind, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def _format_db(value: float) -> str:
    return "inf dB" if math.isinf(value) else f"{value:.2f} dB"


def _row_label(kind: str, eta, psnr_by_eta) -> str:
    if kind == "clean":
        return "clean"
    label = f"{kind}\nη={eta:g}"
    mean = _row_psnr(psnr_by_eta, eta, kind)
    return label if mean is None else f"{label}\nmean {_format_db(float(mean))}"


# ------------------------------------------------------------------------ bit planes

def bit_planes_figure(image, path, bits: int = 8) -> Path:
    """An integer image and its UWE bit planes, time step 0 (the MSB) first.

    ``image`` is ``[H, W]`` or ``[C, H, W]`` (C = 1 or 3) holding integers in
    ``[0, 2^bits - 1]`` (uint8 for 8 bits). Plane ``t`` carries weight ``2^(bits-1-t)``;
    the titles say so, so the figure reads like Algorithm 1.
    """
    bits = check_bits(bits)
    pixels = torch.as_tensor(image)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3) or pixels.shape[1] == 0 or pixels.shape[2] == 0:
        raise ValueError(f"image must be [H, W] or [C, H, W] with C 1 or 3, got {tuple(pixels.shape)}")
    planes = uwe_encode(pixels, bits=bits)        # ValueError for non-integer or out-of-range input
    top = (1 << bits) - 1

    columns = min(bits + 1, 5)
    rows = math.ceil((bits + 1) / columns)
    figure = _new_figure(TILE_INCHES * 1.5 * columns, (TILE_INCHES * 1.5 + 0.3) * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    _show_image(axes[0][0], pixels.float(), vmax=float(top))
    axes[0][0].set_title(f"image ({bits}-bit)", fontsize=8)
    axes[0][0].set_axis_on()
    for step in range(bits):
        axis = axes.flat[step + 1]
        _show_image(axis, planes[step])
        axis.set_axis_on()
        axis.set_title(_plane_title(step, bits), fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def _plane_title(step: int, bits: int) -> str:
    weight = 1 << (bits - 1 - step)
    if bits > 1 and step == 0:
        return f"t={step} (MSB, weight {weight})"
    if bits > 1 and step == bits - 1:
        return f"t={step} (LSB, weight {weight})"
    return f"t={step} (weight {weight})"


# -------------------------------------------------------------------- learning curve

def learning_curve(log_records: list[dict], path) -> Path:
    """Test PSNR and training loss against images seen, from a run's ``log.jsonl``.

    Records with ``kind == "eval"`` give the PSNR (and the noisy input's PSNR as a
    dashed reference line, so the gain is visible); ``kind == "train"`` gives the loss.
    """
    evals = _records_of(log_records, "eval", ("images", "psnr"))
    losses = _records_of(log_records, "train", ("images", "loss"))
    if not evals and not losses:
        raise ValueError("no eval or train records to plot (expected dicts with kind 'eval' or 'train')")

    from matplotlib.ticker import EngFormatter

    rated = [r for r in evals if r.get("firing_rates")]
    figure = _new_figure(13.5 if rated else 9.0, 3.4)
    psnr_axis, loss_axis, *rate_axis = figure.subplots(1, 3 if rated else 2)
    if evals:
        images = [r["images"] for r in evals]
        psnr_axis.plot(images, [r["psnr"] for r in evals], "o-", label="denoised (test set)")
        if all("val_psnr" in r for r in evals):
            psnr_axis.plot(images, [r["val_psnr"] for r in evals], "s:", markersize=3, label="validation set")
        if all("noisy_psnr" in r for r in evals):
            psnr_axis.plot(images, [r["noisy_psnr"] for r in evals], "--", color="gray", label="noisy input")
        psnr_axis.legend(fontsize=8)
    else:
        psnr_axis.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=psnr_axis.transAxes)
    psnr_axis.set_xlabel("training images seen")
    psnr_axis.set_ylabel("test PSNR (dB)")
    psnr_axis.grid(alpha=0.3)
    if losses:
        loss_axis.plot([r["images"] for r in losses], [r["loss"] for r in losses], "-")
        if all(r["loss"] > 0 for r in losses):
            loss_axis.set_yscale("log")  # losses span decades early in training
    else:
        loss_axis.text(0.5, 0.5, "no loss records", ha="center", va="center", transform=loss_axis.transAxes)
    loss_axis.set_xlabel("training images seen")
    loss_axis.set_ylabel("training loss")
    loss_axis.grid(alpha=0.3)
    if rated:
        _plot_firing_rates(rate_axis[0], rated)
    for axis in (psnr_axis, loss_axis, *rate_axis):
        axis.xaxis.set_major_formatter(EngFormatter(sep=""))   # 60k, 1.2M: long runs see millions
    figure.tight_layout()
    return _save(figure, path)


def _plot_firing_rates(axis, rated: list[dict]) -> None:
    """One line per spiking layer: its firing rate after each epoch (log scale: rates span decades)."""
    layers = list(dict.fromkeys(name for r in rated for name in r["firing_rates"]))
    images = [r["images"] for r in rated]
    for index, name in enumerate(layers):
        rates = [100 * r["firing_rates"].get(name, float("nan")) for r in rated]
        style = "-" if index < 10 else "--"      # matplotlib's cycle has 10 colors
        axis.plot(images, rates, style, marker="o", markersize=2, linewidth=1, label=name)
    if all(100 * v > 0 for r in rated for v in r["firing_rates"].values()):
        from matplotlib.ticker import FuncFormatter
        axis.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(plain)
    axis.set_xlabel("training images seen")
    axis.set_ylabel("firing rate (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=5, ncol=2)


def _records_of(log_records, kind: str, keys: tuple[str, ...]) -> list[dict]:
    if not isinstance(log_records, (list, tuple)):
        raise ValueError(f"log_records must be a list of dicts, got {type(log_records).__name__}")
    selected = []
    for index, record in enumerate(log_records):
        if not isinstance(record, dict):
            raise ValueError(f"log record {index} is not a dict: {record!r}")
        if record.get("kind") != kind:
            continue
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f"{kind} record {index} lacks {missing}: {record!r}")
        selected.append(record)
    return sorted(selected, key=lambda r: r["images"])
