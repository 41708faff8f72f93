"""An averaged run's checkpoint scored twice: with the averaged weights and with the raw ones.

    python scripts/raw_vs_average.py runs/dense-checks/CELL runs/dense-checks/CELL/best

A run trained with ``--ema-decay`` scores and saves the moving average of its weights as
its model, and keeps the optimizer's raw weights beside it (``state.safetensors``) to
resume. For each checkpoint folder (a run folder means its latest checkpoint) this
prints the validation PSNR (the run's held-out training images with their fixed noise,
as training scores them), the test PSNR, and the firing rate of each output plane (MSB
first, on the validation images), for the averaged weights and, where the checkpoint
keeps them, the raw ones. ``best`` keeps only the averaged weights.
"""

from __future__ import annotations

import argparse
import sys

import torch

from vtsnn.checkpoint import CheckpointError
from vtsnn.data import load_dataset
from vtsnn.run_folder import resolve_checkpoint, stored_raw_weights
from vtsnn.train import (evaluate, load_test_set, load_trained, spiking_output_bits, split_training_set,
                         validation_noise)


def validation_set(config, data_dir=None, limit: int | None = None):
    """(clean, noisy) validation images of a run, as training drew them."""
    if not config.val_size:
        raise CheckpointError("the run held out no validation images (val_size 0)")
    images, _ = load_dataset(config.dataset, "train", data_dir, color=config.color)
    _, clean = split_training_set(images, config)
    noisy = validation_noise(clean, config)
    return clean[:limit], noisy[:limit]


def weight_sets(folder) -> list[tuple[str, dict | None]]:
    """("averaged", None) for the model as saved, then ("raw", weights) when the folder has them."""
    raw = stored_raw_weights(folder) if (folder / "state.safetensors").is_file() else {}
    return [("averaged", None)] + ([("raw", raw)] if raw else [])


def score_rows(folder, data_dir=None, limit: int | None = None) -> list[dict]:
    """One row per weight set: its name, validation and test PSNR, output plane rates."""
    model, config = load_trained(folder)
    val_clean, val_noisy = validation_set(config, data_dir, limit)
    config.test_limit = limit
    test_clean, test_noisy = load_test_set(config, data_dir)
    rows = []
    for name, weights in weight_sets(folder):
        if weights is not None:
            with torch.no_grad():
                for parameter_name, parameter in model.named_parameters():
                    parameter.copy_(weights[parameter_name])
        planes = spiking_output_bits(model, config, val_noisy).float().mean(dim=(1, 2, 3, 4))
        rows.append({"weights": name, "val_psnr": evaluate(model, val_clean, val_noisy, config)["psnr"],
                     "psnr": evaluate(model, test_clean, test_noisy, config)["psnr"],
                     "plane_rates": planes.tolist()})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint or run folders of runs trained with --val-size")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="score the first N validation and test images")
    args = parser.parse_args(argv)
    try:
        folders = [resolve_checkpoint(path) for path in args.checkpoints]
    except (CheckpointError, FileNotFoundError) as error:
        sys.exit(f"raw_vs_average.py: error: {error}")
    for path, folder in zip(args.checkpoints, folders):
        try:
            rows = score_rows(folder, args.data_dir, args.limit)
        except CheckpointError as error:
            sys.exit(f"raw_vs_average.py: error: {path}: {error}")
        print(f"{path} ({folder.name})")
        print(f"{'weights':>9}  {'val PSNR':>8}  {'test PSNR':>9}  output plane firing rates, MSB first")
        for row in rows:
            rates = " ".join(f"{rate:.3f}" for rate in row["plane_rates"])
            print(f"{row['weights']:>9}  {row['val_psnr']:8.2f}  {row['psnr']:9.2f}  {rates}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
