"""Where a spiking denoiser's squared error comes from, plane by plane.

    python scripts/error_by_plane.py mnist-if-0.2 runs/table1/fashion_mnist-if-0.2/best \
        --out results/error-by-plane/fashion_mnist-if-0.2.json

U-VTSNN writes each denoised pixel as 8 bits, most significant first (UWD). This script
groups the test pixels by the first output plane whose bit differs from the clean
pixel's and reports, for each group, its share of the pixels, its mean squared error
(in gray levels squared) and its share of the model's total squared error.

Beside each group's error it gives the error with the best completion: the planes up
to and including the first wrong one as the model emitted them, and every later plane
set to bring the pixel as close to the clean value as those planes allow. A pixel
whose most significant bit is wrong can still decode close to the clean value if the
later planes make up for it (127 for 128); the gap between the two columns is what
later planes that knew the truth could recover. It is a bound, not a target: the
model cannot know which of its bits are wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from vtsnn.checkpoint import CheckpointError
from vtsnn.coding import uwd_decode, uwe_encode, uwe_weights
from vtsnn.pretrained import resolve_model
from vtsnn.config import BITS, TrainConfig
from vtsnn.train import load_test_set, load_trained, spiking_output_bits

LEVELS = (1 << BITS) - 1


def first_wrong_plane(bits: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per pixel, the first plane whose bit is wrong; ``BITS`` where every bit is right."""
    wrong = bits != uwe_encode(clean)
    first = wrong.float().argmax(dim=0)                      # the first True (0 when none)
    return torch.where(wrong.any(dim=0), first, torch.full_like(first, BITS))


def best_completion(bits: torch.Tensor, clean: torch.Tensor, plane: int) -> torch.Tensor:
    """Planes ``0..plane`` as emitted, the rest chosen to come closest to ``clean``: decoded values."""
    weights = uwe_weights(BITS).view(-1, *([1] * clean.dim()))
    kept = (bits[:plane + 1] * weights[:plane + 1]).sum(dim=0)
    room = (1 << (BITS - 1 - plane)) - 1                      # what the later planes can add
    return kept + (clean.float() - kept).clamp(0, room)


def error_by_plane(bits: torch.Tensor, clean: torch.Tensor) -> dict:
    """The breakdown for output bits ``[BITS, N, ...]`` (0/1) against uint8 ``clean`` ``[N, ...]``."""
    squared = (uwd_decode(bits) - clean.float()).pow(2)
    first = first_wrong_plane(bits, clean)
    total = squared.sum().item()
    rows, bound = [], torch.zeros_like(squared)
    for plane in range(BITS + 1):
        group = first == plane
        completed = squared if plane == BITS else (best_completion(bits, clean, plane) - clean.float()).pow(2)
        bound = torch.where(group, completed, bound)
        count = int(group.sum())
        rows.append({"first_wrong_plane": plane if plane < BITS else None,
                     "pixel_share": count / first.numel(),
                     "mean_squared_error": squared[group].mean().item() if count else 0.0,
                     "error_share": squared[group].sum().item() / total if total else 0.0,
                     "best_completion_mean_squared_error": completed[group].mean().item() if count else 0.0})
    mse = squared.mean().item()
    bound_mse = bound.mean().item()
    return {"mse": mse, "psnr_of_mse": _psnr(mse), "best_completion_mse": bound_mse,
            "best_completion_psnr_of_mse": _psnr(bound_mse), "rows": rows}


def _psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(LEVELS ** 2 / mse)


def load_uwd_model(run: str, path) -> tuple[torch.nn.Module, TrainConfig]:
    """A trained U-VTSNN and its config; refuses models whose output is not UWD's bit planes."""
    model, config = load_trained(path)
    if config.training == "ann" or config.decoder != "uwd":
        raise SystemExit(f"{run}: needs a spiking model with UWD output, got training={config.training!r}, "
                         f"decoder={config.decoder!r}")
    return model, config


def print_breakdown(run: str, result: dict) -> None:
    print(f"{run}: MSE {result['mse']:.1f} levels² ({result['psnr_of_mse']:.2f} dB); with the best "
          f"completion after the first wrong plane {result['best_completion_mse']:.1f} "
          f"({result['best_completion_psnr_of_mse']:.2f} dB)")
    print("  first wrong plane | pixels  | mean sq. error | share of error | best completion")
    for row in result["rows"]:
        plane = "none" if row["first_wrong_plane"] is None else str(row["first_wrong_plane"])
        print(f"  {plane:>17} | {100 * row['pixel_share']:6.2f}% | {row['mean_squared_error']:14.1f} | "
              f"{100 * row['error_share']:13.1f}% | {row['best_completion_mean_squared_error']:15.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run folders, checkpoints or pretrained model names")
    parser.add_argument("--test-limit", type=int, default=None, help="the first N test images only (default: all)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the breakdowns to this JSON file")
    args = parser.parse_args(argv)
    try:                                  # every model found and checked before any runs
        paths = {run: resolve_model(run) for run in args.models}
    except (FileNotFoundError, CheckpointError) as error:
        raise SystemExit(f"error_by_plane: {error}") from None
    models = {run: load_uwd_model(run, path) for run, path in paths.items()}
    results = {}
    for run, (model, config) in models.items():
        config.test_limit = args.test_limit
        clean, noisy = load_test_set(config, args.data_dir)
        bits = spiking_output_bits(model, config, noisy)
        results[run] = {**error_by_plane(bits, clean), "test_images": int(clean.shape[0]),
                        "dataset": config.dataset, "noise": config.noise, "loss": config.loss}
        print_breakdown(run, results[run])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = "python scripts/error_by_plane.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.out.write_text(json.dumps({"command": command, "models": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
