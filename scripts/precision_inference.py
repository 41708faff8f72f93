"""Score the same trained weights in fp32 and in bf16: how much PSNR does the fast mode cost?

Training in bf16 and in fp32 from the same seed gives two different networks (the
trajectories part after a few steps), so comparing their scores mixes precision with
seed-to-seed spread. Here the weights are fixed and only the arithmetic changes:
each model is scored on its full test set with the fixed test noise, once in fp32
(contiguous) and once in bf16 (autocast, channels-last), and the script prints both
PSNRs, their difference and the fraction of output spikes that agree.

    python scripts/precision_inference.py                    # every pretrained model
    python scripts/precision_inference.py --model runs/x/y   # any checkpoint or run folder
    python scripts/precision_inference.py --json out.json
"""

from __future__ import annotations

import argparse
import json

import torch

from vtsnn import pretrained
from vtsnn.cli import load_model
from vtsnn.metrics import psnr
from vtsnn.train import denoise_images, load_test_set

PRECISIONS = ("fp32", "bf16")


def run_in(spec: str, precision: str, noisy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(output spikes as uint8 ``[T, N, C, H, W]``, denoised images in [0, 1]) with the model run in ``precision``.

    The model is loaded afresh (contiguous) and prepared the way ``vtsnn evaluate --precision`` does;
    the output neuron's spikes are recorded on the way through the package's own scoring loop.
    """
    model, config, _ = load_model(spec, "cpu", precision)
    spikes = []

    def record(module, inputs, output):
        spikes.append(output.to(torch.uint8))

    hook = model.output_neuron.register_forward_hook(record)
    try:
        images = denoise_images(model, noisy, config)
    finally:
        hook.remove()
    return torch.cat(spikes, dim=1), images


def compare(spec: str, data_dir=None) -> dict:
    _, trained, _ = load_model(spec, "cpu")
    clean, noisy = load_test_set(trained, data_dir)
    clean01 = clean.float() / 255.0
    scores, spikes = {}, {}
    for precision in PRECISIONS:
        spikes[precision], images = run_in(spec, precision, noisy)
        scores[precision] = psnr(images, clean01).item()
    agree = (spikes["fp32"] == spikes["bf16"]).float().mean().item()
    return {"model": spec, "trained_in": trained.precision, "test_images": int(clean.shape[0]),
            "psnr_fp32": scores["fp32"], "psnr_bf16": scores["bf16"],
            "bf16_minus_fp32": scores["bf16"] - scores["fp32"], "output_spikes_agree": agree}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="pretrained name or checkpoint/run folder (repeatable; "
                        "default: every pretrained model)")
    parser.add_argument("--data-dir", help="folder holding the datasets (default: $VTSNN_DATA)")
    parser.add_argument("--json", help="also write the records to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    records = []
    print(f"{'model':<40} {'trained':>7} {'fp32 dB':>8} {'bf16 dB':>8} {'bf16-fp32':>9} {'spikes agree':>12}")
    for spec in args.model or pretrained.available():
        try:
            record = compare(spec, args.data_dir)
        except (ValueError, OSError) as error:      # unknown model, missing data: one line, no traceback
            raise SystemExit(f"error: {spec}: {error}") from None
        records.append(record)
        print(f"{spec:<40} {record['trained_in']:>7} {record['psnr_fp32']:8.3f} {record['psnr_bf16']:8.3f} "
              f"{record['bf16_minus_fp32']:+9.3f} {record['output_spikes_agree']:12.2%}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=2)


if __name__ == "__main__":
    main()
