"""How far a spiking denoiser's output decisions lie from the output threshold, step by step.

    python scripts/output_margin.py runs/flip-decay/CELL/best runs/flip-decay/CELL/epoch-0005 \
        --test-limit 1000

At each time step t the output neuron charges its membrane h_t and fires where h_t
reaches the threshold. The bit-plane loss is the squared error of the spikes, so a spike
that is right has no error and nothing pushes h_t further from the threshold: decisions
can settle just past it, and then a small change of the weights flips many at once
(``vtsnn.jitter``). For each model and step this prints the share of pixels that fire,
the share whose h_t lies within ``--near`` of the threshold (as a fraction of it) and
the median signed margin (h_t - threshold) / threshold of the pixels that fire and of
those that do not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from vtsnn.checkpoint import CheckpointError
from vtsnn.neurons import charged_membranes
from vtsnn.pretrained import resolve_model
from vtsnn.train import load_test_set, load_trained, model_outputs, prepare_model


def output_membranes(model: torch.nn.Module, config, noisy: torch.Tensor) -> torch.Tensor:
    """The output neuron's charged membranes ``[T, N, C, H, W]`` for 8-bit ``noisy`` images."""
    model = prepare_model(model, config, torch.device("cpu"))
    currents = []
    handle = model.output_neuron.register_forward_pre_hook(lambda _module, args: currents.append(args[0]))
    try:
        with torch.no_grad():
            for _ in model_outputs(model, noisy, config):
                pass
    finally:
        handle.remove()
    return torch.cat([charged_membranes(model.output_neuron, current) for current in currents], dim=1)


def margins_by_step(membranes: torch.Tensor, threshold: float, near: float) -> list[dict]:
    """Per step: the share that fires, the share within ``near`` x threshold of it, and the
    median relative margin of the pixels that fire and of those that do not (None if none)."""
    rows = []
    for step, h in enumerate(membranes):
        margin = ((h - threshold) / threshold).flatten().float()
        fired = margin >= 0
        rows.append({"step": step, "fired": fired.float().mean().item(),
                     "near": (margin.abs() < near).float().mean().item(),
                     "median_fired": margin[fired].median().item() if fired.any() else None,
                     "median_silent": margin[~fired].median().item() if (~fired).any() else None})
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def print_margins(run: str, rows: list[dict], threshold: float, near: float, images: int) -> None:
    print(f"{run}: output threshold {threshold:g}, {images} test images")
    headers = ("step", "fires", f"within {100 * near:g} % of threshold", "median margin, firing",
               "median margin, silent")
    print("  " + " | ".join(headers))
    for row in rows:
        cells = (str(row["step"]), f"{100 * row['fired']:.1f}%", f"{100 * row['near']:.1f}%",
                 _percent(row["median_fired"]), _percent(row["median_silent"]))
        print("  " + " | ".join(cell.rjust(len(header)) for cell, header in zip(cells, headers)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run folders, checkpoints or pretrained model names")
    parser.add_argument("--test-limit", type=int, default=1000, help="the first N test images (default: 1000)")
    parser.add_argument("--near", type=float, default=0.05,
                        help="count membranes within this fraction of the threshold (default: 0.05)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if not 0 < args.near < 1:
        raise SystemExit(f"output_margin: --near must be in (0, 1), got {args.near}")
    try:                                  # every model found and checked before any runs
        paths = {run: resolve_model(run) for run in args.models}
        models = {run: load_trained(path) for run, path in paths.items()}
    except (FileNotFoundError, CheckpointError) as error:
        raise SystemExit(f"output_margin: {error}") from None
    for run, (_, config) in models.items():
        if config.training == "ann":
            raise SystemExit(f"output_margin: {run} is an ANN; it has no output threshold")
    results = {}
    for run, (model, config) in models.items():
        config.test_limit = args.test_limit
        _, noisy = load_test_set(config, args.data_dir)
        threshold = model.output_neuron.v_threshold
        rows = margins_by_step(output_membranes(model, config, noisy), threshold, args.near)
        results[run] = {"threshold": threshold, "test_images": int(noisy.shape[0]), "steps": rows}
        print_margins(run, rows, threshold, args.near, int(noisy.shape[0]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = "python scripts/output_margin.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.out.write_text(json.dumps({"command": command, "near": args.near, "models": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
