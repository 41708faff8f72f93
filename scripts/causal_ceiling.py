"""How well can any denoiser do that, like U-VTSNN, must emit bit plane t having seen input planes 0..t?

    python scripts/causal_ceiling.py --dataset fashion_mnist --noise 0.2 --epochs 5 \
        --snn runs/table1/fashion_mnist-if-0.2/best --out results/causal-ceiling/fashion_mnist-0.2.json

U-VTSNN reads the noisy image as 8 bit planes, most significant first, one per time
step, and writes the denoised image the same way. Its convolutions act within a time
step and its neurons only carry state forward, so the output's most significant bit
(step 0) depends on the input's most significant bit plane alone, step 1 on planes 0
and 1, and so on. The ANN twin sees every pixel value at once.

To measure what that costs, this script trains, for each output plane t, the ANN
twin's U-Net (ReLU) on the noisy input planes 0..t as channels ("causal"), and for
comparison on all 8 planes ("all planes"), to predict the clean image's plane t
(binary cross-entropy). The predicted bits are decoded as UWD decodes spikes and
scored by PSNR on the fixed noisy test set. Each plane gets its own network, trained
by the ANN twin's recipe (Adam 1e-3 with a cosine schedule, batch 50, the spiking
initialization with gain 1.5, bf16). With ``--snn`` the bit error rate of each of a
trained spiking model's output planes is printed beside the two.

The per-plane networks predict each bit on its own, as the bit-plane loss trains the
spiking model to; a decoder that chose bits jointly could do better, so "ceiling" is
loose in that sense. It is tight in the other: each causal network sees the input
planes 0..t in full, where the spiking model keeps only what its membranes carry.

Each plane network's predicted test bits are saved under ``--work-dir`` (by default a
folder under runs/causal-ceiling/ named by the settings), so an interrupted run picks
up at the first plane it had not finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.nn.functional import binary_cross_entropy_with_logits

from vtsnn.coding import uwd_decode, uwe_encode
from vtsnn.config import BITS, TrainConfig
from vtsnn.data import add_noise, fixed_test_noise, load_dataset
from vtsnn.experiments import DENOISER_RECIPE
from vtsnn.metrics import psnr
from vtsnn.models import UNetANN
from vtsnn.pretrained import resolve_model
from vtsnn.train import (autocast_for, learning_rate, load_trained, prepare_model, scale_for_spiking_inputs,
                         spiking_output_bits)

INPUTS = {"causal": lambda plane: range(plane + 1), "all planes": lambda plane: range(BITS)}
CPU = torch.device("cpu")


def plane_inputs(noisy: torch.Tensor, planes) -> torch.Tensor:
    """uint8 images ``[B, 1, H, W]`` -> the chosen bit planes as channels ``[B, len(planes), H, W]``."""
    return uwe_encode(noisy[:, 0])[list(planes)].transpose(0, 1)


def bit_error_rates(bits: torch.Tensor, clean: torch.Tensor) -> list[float]:
    """Per-plane share of wrong bits; ``bits`` is ``[BITS, N, 1, H, W]`` (0/1), ``clean`` uint8 ``[N, 1, H, W]``."""
    wrong = bits != uwe_encode(clean)
    return [wrong[t].float().mean().item() for t in range(BITS)]


def decoded_psnr(bits: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR (per image, averaged) of the image the bit planes ``[BITS, N, 1, H, W]`` decode to."""
    return psnr(uwd_decode(bits.float()) / 255.0, clean.float() / 255.0).item()


def ann_recipe(dataset: str, noise: float, epochs: int, seed: int) -> TrainConfig:
    """The ANN twin's training configuration (results/ann-ceiling), which every plane network follows."""
    return TrainConfig(**{**DENOISER_RECIPE, "training": "ann", "dataset": dataset, "noise": noise,
                          "epochs": epochs, "seed": seed})


def train_plane(plane: int, planes, train_clean: torch.Tensor, recipe: TrainConfig) -> torch.nn.Module:
    """One U-Net that predicts the clean image's bit ``plane`` from the noisy input's ``planes``."""
    torch.manual_seed(recipe.seed * 100 + plane)
    model = UNetANN(len(planes), 1, recipe.channels)
    scale_for_spiking_inputs(model, recipe.init_gain)
    model = prepare_model(model, recipe, CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    generator = torch.Generator().manual_seed(recipe.seed * 100 + plane)
    batch_size = recipe.batch_size
    steps_per_epoch = train_clean.shape[0] // batch_size
    total = recipe.epochs * steps_per_epoch
    model.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(train_clean.shape[0], generator=generator)
        for step in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, epoch * steps_per_epoch + step, total)
            clean = train_clean[order[step * batch_size:(step + 1) * batch_size]]
            noisy = add_noise(clean, recipe.noise, generator)
            with autocast_for(recipe, CPU):
                logits = model(plane_inputs(noisy, planes))
            loss = binary_cross_entropy_with_logits(logits.float(), uwe_encode(clean)[plane])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


@torch.inference_mode()
def predict_bits(model: torch.nn.Module, noisy: torch.Tensor, planes, recipe: TrainConfig,
                 batch_size: int = 500) -> torch.Tensor:
    model.eval()
    bits = []
    for start in range(0, noisy.shape[0], batch_size):
        with autocast_for(recipe, CPU):
            logits = model(plane_inputs(noisy[start:start + batch_size], planes))
        bits.append((logits.float() > 0).float())
    return torch.cat(bits)


def default_work_dir(args: argparse.Namespace) -> Path:
    """The folder for a run's per-plane predictions, named by every setting that changes them."""
    name = f"{args.dataset}-{args.noise:g}-epochs{args.epochs}-seed{args.seed}"
    if args.train_limit is not None:
        name += f"-train{args.train_limit}"
    if args.test_limit is not None:
        name += f"-test{args.test_limit}"
    return Path("runs") / "causal-ceiling" / name


def plane_bits(name: str, plane: int, train_clean: torch.Tensor, test_noisy: torch.Tensor,
               recipe: TrainConfig, work_dir: Path) -> tuple[torch.Tensor, bool]:
    """Plane ``plane``'s predicted test bits for the ``name`` inputs, and whether they were saved by an earlier run."""
    path = work_dir / f"{name.replace(' ', '-')}-plane{plane}.safetensors"
    if path.is_file():
        return load_file(path)["bits"].float(), True
    planes = INPUTS[name](plane)
    bits = predict_bits(train_plane(plane, planes, train_clean, recipe), test_noisy, planes, recipe)
    work_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")          # renamed when whole, so a kill leaves no half file
    save_file({"bits": bits.to(torch.uint8)}, str(partial))
    partial.replace(path)
    return bits, False


def snn_output_bits(run: str, noisy: torch.Tensor) -> torch.Tensor:
    """A trained U-VTSNN's output spikes ``[BITS, N, 1, H, W]`` for the noisy images."""
    model, config = load_trained(resolve_model(run))
    if config.training == "ann" or config.decoder != "uwd" or config.encoder != "uwe":
        raise SystemExit(f"--snn needs a spiking model with UWE input and UWD output; {run} is not one")
    return spiking_output_bits(model, config, noisy)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion_mnist or cifar10 (gray)")
    parser.add_argument("--noise", type=float, default=0.2, help="noise level eta")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per plane network")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--test-limit", type=int, default=None, help="score the first N test images only")
    parser.add_argument("--snn", default=None,
                        help="a trained U-VTSNN (run, checkpoint or pretrained name) to compare plane by plane")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the measurements to this JSON file")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where each plane network's predictions are kept, to resume an interrupted run "
                             "(default: runs/causal-ceiling/ and a name made of the settings)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    started = time.time()
    train_clean, _ = load_dataset(args.dataset, "train", args.data_dir)
    test_clean, _ = load_dataset(args.dataset, "test", args.data_dir)
    train_clean, test_clean = train_clean[:args.train_limit], test_clean[:args.test_limit]
    test_noisy = fixed_test_noise(test_clean, args.noise)

    result = {"dataset": args.dataset, "noise": args.noise, "epochs": args.epochs, "seed": args.seed,
              "train_images": int(train_clean.shape[0]), "test_images": int(test_clean.shape[0]),
              "noisy_psnr": psnr(test_noisy.float() / 255.0, test_clean.float() / 255.0).item(),
              "command": "python scripts/causal_ceiling.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    recipe = ann_recipe(args.dataset, args.noise, args.epochs, args.seed)
    work_dir = args.work_dir or default_work_dir(args)
    rows, loaded = {}, 0
    for name in INPUTS:
        bits = []
        for plane in range(BITS):
            plane_prediction, was_saved = plane_bits(name, plane, train_clean, test_noisy, recipe, work_dir)
            bits.append(plane_prediction)
            loaded += was_saved
            done = f"loaded from {work_dir}" if was_saved else "trained"
            print(f"{name}, plane {plane}: {done} ({time.time() - started:.0f} s so far)", flush=True)
        bits = torch.stack(bits)
        rows[name] = {"psnr": decoded_psnr(bits, test_clean), "bit_error_rates": bit_error_rates(bits, test_clean)}
    if args.snn:
        bits = snn_output_bits(args.snn, test_noisy)
        rows[f"U-VTSNN ({args.snn})"] = {"psnr": decoded_psnr(bits, test_clean),
                                         "bit_error_rates": bit_error_rates(bits, test_clean)}
    result["rows"] = rows
    result["wall_seconds"] = round(time.time() - started, 1)
    result["planes_loaded"] = loaded              # trained by an earlier, interrupted run: not in wall_seconds

    print(f"\n{args.dataset}, eta = {args.noise}: noisy input {result['noisy_psnr']:.2f} dB")
    print(f"{'':<40} {'PSNR':>6}  " + " ".join(f"{'bit ' + str(t):>6}" for t in range(BITS)))
    for name, row in rows.items():
        print(f"{name:<40} {row['psnr']:6.2f}  " + " ".join(f"{rate:6.3f}" for rate in row["bit_error_rates"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
