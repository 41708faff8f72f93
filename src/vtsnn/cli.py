"""The ``vtsnn`` command: train, evaluate and apply spiking U-Net denoisers.

A thin layer over the library; each subcommand parses its options, calls one or two
library functions and prints what happened::

    vtsnn train     train (or --resume) a denoiser: vtsnn.train.train
    vtsnn evaluate  PSNR of a model on its test set at one or more noise levels
    vtsnn denoise   denoise an image file of any size (gray or color, 8 or 16 bit)
    vtsnn encode    draw an image's UWE bit planes
    vtsnn download  fetch a dataset: vtsnn.data.download
    vtsnn models    list the pretrained models shipped with the package

Errors the user can fix (missing files, wrong model, bad options) are reported as
one line, ``vtsnn: error: ...``, with exit code 1; Ctrl-C exits with 130. Set
``VTSNN_DEBUG=1`` to get the full traceback instead.

The library (torch, matplotlib) is imported inside the subcommands, so that
``vtsnn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.resources
import json
import os
import shlex
import signal
import sys
import threading
import types
import typing
import warnings
from pathlib import Path

PROGRAM = "vtsnn"
DEBUG_ENV = "VTSNN_DEBUG"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130       # the shell's code for a process ended by SIGINT
GRID_IMAGES = 6              # test images drawn by `evaluate --figure`

# Help for the TrainConfig fields; options are generated from the dataclass, so a
# field added there appears here (with its default) even before it gets a sentence.
FIELD_HELP = {
    "dataset": "dataset to train on: mnist, fashion_mnist or cifar10",
    "noise": "Gaussian noise level eta of the noisy inputs (images in [0, 1])",
    "training": "method preset: itbp (bit-plane loss, no gradient through time), stbp or ann",
    "neuron": "spiking neuron: if or lif",
    "encoder": "input spike code: uwe (bit planes, MSB first), ttfs, or uwe-lsb (LSB first; with --decoder uwd-lsb)",
    "decoder": ("output decoding: uwd (bit-plane weights), mpd, mpd-early (MPD, first step weighing most), or "
                "uwd-lsb (LSB first)"),
    "loss": ("override the preset's loss: bitplane, decoded, mse, bitplane-squared (bit planes "
             "weighted by the decoder weight squared), bitplane-residual (each plane's target "
             "follows the planes already emitted; uwd only), bitplane-flip (each plane's target is "
             "the better bit with the other planes as emitted; uwd only), or decoded-flip (the decoded MSE, each "
             "bit's gradient the error change that flipping it makes; uwd only); join several with + to "
             "train on their sum, e.g. bitplane+decoded-flip"),
    "temporal_grad": "backpropagate through time (itbp: no, stbp: yes)",
    "detach_reset": "with --temporal-grad: no gradient through the soft reset (spikingjelly's detach_reset)",
    "surrogate_alpha": ("alpha of the arctangent surrogate (alpha/2) / (1 + (pi/2 alpha u)^2); larger is "
                        "narrower and taller (2: the paper's)"),
    "epochs": "total number of epochs (with --resume: train up to this many)",
    "batch_size": "images per optimizer step",
    "lr": "Adam learning rate",
    "lr_schedule": "constant, or cosine (to 0 over the run)",
    "weight_decay": "Adam weight decay (an L2 term added to the gradient; see --decoupled-decay)",
    "decoupled_decay": ("with --weight-decay: shrink each weight by lr x weight_decay every step, apart "
                        "from Adam's moments (AdamW), instead of adding an L2 term to the gradient"),
    "clip_grad": "scale each step's gradient down to at most this norm over all weights together (0: off)",
    "ema_decay": ("evaluate, keep and save an exponential moving average of the weights with this decay "
                  "(0: off, the raw weights)"),
    "score_raw": ("with --ema-decay and --val-size: at each validation check also score the raw weights, "
                  "and keep in RUN_DIR/best whichever of the two validates higher"),
    "output_jitter": ("in training only, multiply the output layer's input by a factor drawn from [1-a, 1+a] "
                      "for each image and time step, so its decisions keep a margin from the threshold (0: off)"),
    "init": "weight initialization: default (PyTorch) or spiking (scaled for 0/1 inputs)",
    "init_gain": "gain of the spiking initialization",
    "init_from": "start from the weights of this run or checkpoint folder (same network)",
    "teacher": ("train against this trained denoiser's output (a run or checkpoint folder of the same "
                "dataset; its denoised noisy batch, rounded to 8 bits, replaces the clean image as the target)"),
    "flip": ("augment the training images: mirror a random half of each batch left-right (for images "
             "whose mirror image is as likely, such as clothes and photos; not digits)"),
    "shift": ("augment the training images: move each by a random whole number of pixels, up to this "
              "many down and across either way, the uncovered border black (0: off)"),
    "v_threshold": "firing threshold of the hidden neurons",
    "output_threshold": "firing threshold of the output neurons",
    "tau": "LIF membrane time constant",
    "channels": "channels per U-Net level, comma-separated",
    "color": "denoise RGB images with a 3-channel model (cifar10 only)",
    "seed": "seed of initialization, shuffling and training noise",
    "test_seed": "seed of the fixed noise of the test set",
    "train_limit": "use only the first N training images",
    "val_size": ("hold out the last N training images as a validation set; the epoch with the best "
                 "validation PSNR is kept in RUN_DIR/best (0: none)"),
    "checks_per_epoch": ("with --val-size: score the validation set this many times an epoch, evenly "
                         "spaced, the last at its end, so RUN_DIR/best may keep weights from mid-epoch"),
    "test_limit": "score on the first N test images only",
    "precision": "fp32, or bf16 (autocast, channels-last)",
    "log_every": "optimizer steps between loss records in log.jsonl",
    "extra": "free-form notes stored with the run, as a JSON object",
}


# ============================================================================ parsing

def comma_separated_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 16,32,64, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"note\": \"x\"}}', got {text!r}")
    return value


def optional(parse):
    """Accept 'none' for fields whose default is None (e.g. to lift a limit on --resume)."""
    def parse_or_none(text: str):
        return None if text.lower() == "none" else parse(text)
    parse_or_none.__name__ = parse.__name__   # argparse names the type in its errors
    return parse_or_none


def _field_parser(annotation) -> tuple[typing.Callable | None, bool]:
    """(parse function or None for booleans, whether None is allowed) of a type hint."""
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    allows_none = (typing.get_origin(annotation) in (typing.Union, types.UnionType)
                   and len(arguments) < len(typing.get_args(annotation)))
    base = arguments[0] if allows_none else annotation
    if base is bool:
        return None, allows_none
    if base is tuple or typing.get_origin(base) is tuple:
        return comma_separated_ints, allows_none
    if base is dict or typing.get_origin(base) is dict:
        return json_object, allows_none
    if base in (int, float, str):
        return base, allows_none
    raise TypeError(f"no command-line parser for a TrainConfig field of type {annotation!r}")


def _default_text(field: dataclasses.Field) -> str:
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    if default is None:
        return "the preset's" if field.name in ("loss", "temporal_grad") else "none"
    return json.dumps(default) if isinstance(default, dict) else str(default)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, e.g. ``batch_size`` -> ``--batch-size``.

    Defaults are ``SUPPRESS``: only options the user typed reach the namespace, so
    ``--resume`` can take the stored config and change just those.
    """
    from .config import TrainConfig

    group = parser.add_argument_group("training configuration (TrainConfig fields)")
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{FIELD_HELP.get(field.name, field.name)} (default: {_default_text(field)})"
        parse, allows_none = _field_parser(hints[field.name])
        if parse is None:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag, dest=field.name, type=optional(parse) if allows_none else parse,
                               default=argparse.SUPPRESS, metavar=field.name.upper(), help=help_text)


def config_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the user gave on the command line."""
    from .config import TrainConfig

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Virtual temporal spiking neural networks (VTSNN): spiking U-Net image denoisers "
                    "with the UWE bit-plane spike code (Qiu et al. 2023).",
        epilog=f"Run '{PROGRAM} COMMAND --help' for the options of a command. "
               f"Set {DEBUG_ENV}=1 to see tracebacks.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from .cli_circuit import add_command as add_circuit_command
    from .cli_energy import add_command as add_energy_command
    from .cli_reproduce import add_command as add_reproduce_command

    for add in (add_train_command, add_evaluate_command, add_denoise_command, add_encode_command,
                add_download_command, add_models_command, add_energy_command, add_circuit_command,
                add_reproduce_command):
        add(commands)
    return parser


def _subcommand(commands, name: str, summary: str, description: str, run) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)
    return parser


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    from .pretrained import DEFAULT_MODEL

    parser.add_argument("--model", metavar="NAME_OR_PATH", default=None,
                        help=f"pretrained model name, or a checkpoint or run folder (default: {DEFAULT_MODEL}; "
                             f"'{PROGRAM} models' lists the names)")


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="cpu, cuda, cuda:N, or auto (cuda if available) (default: auto)")


def _add_precision_option(parser: argparse.ArgumentParser) -> None:
    # The same weights score differently in the two arithmetics (scripts/precision_inference.py),
    # so the user may pick; by default a model runs in the precision it was trained in.
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="arithmetic to run the model in: fp32, or bf16 (autocast, channels-last; "
                             "4x faster on CPUs with AMX, 6x slower on CPUs without bf16 arithmetic) "
                             "(default: the one it was trained in)")


def _add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="folder holding mnist/, fashion_mnist/, cifar10/ (default: $VTSNN_DATA)")


# ============================================================================ train

def add_train_command(commands) -> None:
    parser = _subcommand(commands, "train", "train a denoiser (or resume one)",
                         "Train a spiking (or ANN) U-Net denoiser. Every epoch is evaluated on the fixed\n"
                         "noisy test set, logged to OUT/log.jsonl and checkpointed, so an interrupted run\n"
                         "continues with --resume. With --resume the stored configuration is used and only\n"
                         "the options given change it (typically --epochs).\n\n"
                         "example: vtsnn train --dataset mnist --noise 0.2 --training itbp --out runs/mnist-0.2",
                         run_train)
    parser.add_argument("--out", metavar="RUN_DIR", required=True,
                        help="run folder for checkpoints, config.json and log.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    _add_data_dir_option(parser)
    _add_device_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(parser)


def run_train(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .config import TrainConfig
    from .run_folder import BEST, best_record
    from .train import train

    run_dir = Path(args.out)
    overrides = config_overrides(args)
    stored_config = run_dir / "config.json"
    if args.resume and stored_config.is_file():
        config = TrainConfig.from_dict({**checkpoint.read_json(stored_config), **overrides})
    else:
        config = TrainConfig(**overrides)
    device = _checked_device(args.device)
    print(f"training {describe_config(config)} in {run_dir}" + (" (resuming)" if args.resume else ""))
    args.interrupt_hint = f"the last finished epoch is saved; continue with: {PROGRAM} train --out {shlex.quote(str(run_dir))} --resume"
    record = train(config, run_dir, resume=args.resume, progress=not args.quiet, data_dir=args.data_dir,
                   device=device)
    print(f"final test PSNR {record['psnr']:.2f} dB (noisy input {record['noisy_psnr']:.2f} dB) "
          f"after epoch {record.get('epoch', config.epochs)}; checkpoint in {run_dir}")
    best = best_record(run_dir)
    if best is not None:
        # Weights kept at a check inside an epoch, or raw ones (--score-raw), have no test score.
        test = f" (test PSNR {best['psnr']:.2f} dB)" if "psnr" in best else ""
        weights = f", {best['weights']} weights" if "weights" in best else ""
        print(f"best validation PSNR {best['val_psnr']:.2f} dB at epoch {best['epoch']:g}{weights}{test}: "
              f"{run_dir / BEST}")
    return 0


def describe_config(config) -> str:
    # Two models for the same task differ in how they were trained: say so where it is not the paper's.
    recipe = [config.training]
    if config.training == "itbp" and config.loss != "bitplane":
        recipe.append(f"{config.loss} loss")
    if config.ema_decay:
        recipe.append("weight average")
    return (f"{config.dataset} denoiser (noise {config.noise:g}, {', '.join(recipe)}, {config.neuron} neurons, "
            f"channels {','.join(map(str, config.channels))})")


def _checked_device(name: str) -> str:
    """The device name for the library, refusing CUDA where there is none (torch would assert)."""
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return name


# ============================================================================ models

def load_model(spec, device: str = "cpu", precision: str | None = None):
    """(model on ``device``, its TrainConfig, a label for printing) from a --model value.

    ``precision`` (fp32 or bf16) replaces the one the model was trained in.
    """
    from .allocator import keep_freed_memory
    from .pretrained import DEFAULT_MODEL, is_pretrained_name, resolve_model
    from .train import load_trained, pick_device, prepare_model

    # Scoring runs batch after batch of the same large tensors, like training: reusing
    # freed pages instead of faulting in fresh ones each batch (vtsnn.allocator).
    keep_freed_memory()
    folder = resolve_model(spec)
    model, config = load_trained(folder)
    if precision is not None:
        config = dataclasses.replace(config, precision=precision)
    model = prepare_model(model, config, pick_device(_checked_device(device)))
    label = spec if is_pretrained_name(spec) else (DEFAULT_MODEL if spec is None else str(folder))
    return model, config, label


def describe_model(label: str, config) -> str:
    return (f"model {label}: {config.dataset}, trained at noise {config.noise:g}, {config.training}, "
            f"{config.neuron} neurons, run in {config.precision}")


def add_models_command(commands) -> None:
    _subcommand(commands, "models", "list the pretrained models",
                "List the pretrained models shipped with the package (names for --model).", run_models)


def run_models(args: argparse.Namespace) -> int:
    from . import pretrained
    from .config import TrainConfig
    from .checkpoint import read_json

    names = pretrained.available()
    if not names:
        print("no pretrained models are installed; train one with 'vtsnn train' and pass its folder to --model")
    for name in names:
        config = TrainConfig.from_dict(read_json(pretrained.path_of(name) / "config.json"))
        default = " (default)" if name == pretrained.DEFAULT_MODEL else ""
        score = pretrained.card_psnr(name)
        scored = "" if score is None else f"; test PSNR {score:.2f} dB (its MODEL_CARD.md)"
        print(f"{name}{default}: {describe_config(config)}{scored}")
    return 0


# ============================================================================ evaluate

def add_evaluate_command(commands) -> None:
    parser = _subcommand(commands, "evaluate", "PSNR of a model on its test set",
                         "Score a model on its dataset's test set with the fixed test noise: PSNR of the\n"
                         "denoised output and of the noisy input, at the trained noise level or at each\n"
                         "--noise given.\n\n"
                         "example: vtsnn evaluate --model mnist-if-0.2 --noise 0.1 0.2 0.3 --json scores.json",
                         run_evaluate)
    _add_model_option(parser)
    parser.add_argument("--noise", metavar="ETA", type=float, nargs="+", default=None,
                        help="noise level(s) to score at (default: the model's training noise)")
    parser.add_argument("--test-limit", metavar="N", type=int, default=None,
                        help="score the first N test images only (default: all)")
    _add_data_dir_option(parser)
    _add_device_option(parser)
    _add_precision_option(parser)
    parser.add_argument("--json", metavar="OUT.json", default=None, help="write the scores as a JSON list")
    parser.add_argument("--figure", metavar="OUT.png", default=None,
                        help=f"draw clean/noisy/denoised for {GRID_IMAGES} test images at each noise level")


def run_evaluate(args: argparse.Namespace) -> int:
    from .train import evaluate, load_test_set

    if args.test_limit is not None and args.test_limit < 1:
        raise ValueError(f"--test-limit must be at least 1, got {args.test_limit}")
    model, config, label = load_model(args.model, args.device, args.precision)
    print(describe_model(label, config))
    records, grid_images = [], {}
    for eta in args.noise or [config.noise]:
        scored = dataclasses.replace(config, noise=eta, test_limit=args.test_limit)
        clean, noisy = load_test_set(scored, args.data_dir)
        scores = evaluate(model, clean, noisy, scored)
        records.append({"model": label, "dataset": config.dataset, "training": config.training, "noise": eta,
                        "psnr": scores["psnr"], "psnr_sem": scores["psnr_sem"], "noisy_psnr": scores["noisy_psnr"],
                        "images": int(clean.shape[0]),
                        "precision": config.precision,
                        "seed": config.test_seed, "command": command_line(args.argv)})
        grid_images[eta] = (clean[:GRID_IMAGES], noisy[:GRID_IMAGES])
    print_score_table(records)
    if args.json:
        write_json(args.json, records)
        print(f"scores written to {args.json}")
    if args.figure:
        draw_evaluation_grid(model, config, grid_images, records, args.figure)
        print(f"figure written to {args.figure}")
    return 0


def command_line(argv) -> str:
    return shlex.join([PROGRAM, *argv])


def print_score_table(records: list[dict]) -> None:
    # s.e.: the standard error of the mean PSNR over these test images (another draw of as
    # many images could move it by about twice that).
    print(f"{'noise':>7} {'PSNR out':>9} {'s.e.':>5} {'PSNR noisy':>11} {'images':>7}")
    for record in records:
        print(f"{record['noise']:>7g} {record['psnr']:>9.2f} {record['psnr_sem']:>5.2f} {record['noisy_psnr']:>11.2f} "
              f"{record['images']:>7d}")


def write_json(path, payload) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def draw_evaluation_grid(model, config, grid_images: dict, records: list[dict], path) -> None:
    from .figures import denoising_grid
    from .train import denoise_images

    noisy_by_eta, denoised_by_eta = {}, {}
    for eta, (clean, noisy) in grid_images.items():
        noisy_by_eta[eta] = noisy.float() / 255.0
        denoised_by_eta[eta] = denoise_images(model, noisy, config)
    clean = next(iter(grid_images.values()))[0].float() / 255.0
    psnr_by_eta = {r["noise"]: {"psnr": r["psnr"], "noisy_psnr": r["noisy_psnr"]} for r in records}
    denoising_grid(clean, noisy_by_eta, denoised_by_eta, path, psnr_by_eta=psnr_by_eta)


# ============================================================================ denoise

def sample_image_path() -> Path:
    """The bundled clean sample: MNIST test image 0 (a 7), 28x28 8-bit gray."""
    return Path(str(importlib.resources.files("vtsnn") / "samples" / "mnist_digit.png"))


def add_denoise_command(commands) -> None:
    parser = _subcommand(commands, "denoise", "denoise an image file",
                         "Denoise a gray or color image of any size (color: channel by channel with a gray\n"
                         "model; 16-bit: reduced to 8 bits, the model's input). With --noise, Gaussian\n"
                         "noise is added first and the PSNR of the noisy and the denoised image against\n"
                         "the input is printed. Without IN (or with --sample) a bundled clean MNIST digit\n"
                         "is used, with noise at the model's training level.\n\n"
                         "example: vtsnn denoise --sample -o denoised.png",
                         run_denoise)
    parser.add_argument("input", metavar="IN", nargs="?", default=None, help="image file (PNG, JPEG, TIFF, BMP)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True,
                        help="output image; 8-bit, format from the extension")
    _add_model_option(parser)
    parser.add_argument("--noise", metavar="ETA", type=float, default=None,
                        help="add Gaussian noise of this level before denoising and report PSNRs "
                             "(default: none; with the sample: the model's training noise)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise (default: 0)")
    parser.add_argument("--sample", action="store_true", help="use the bundled sample image")
    parser.add_argument("--noisy-output", metavar="NOISY.png", default=None,
                        help="also write the noisy image (with --noise)")
    _add_device_option(parser)
    _add_precision_option(parser)


def run_denoise(args: argparse.Namespace) -> int:
    import torch

    from .data import add_noise, read_image, to_uint8, write_image
    from .metrics import psnr

    if args.sample and args.input:
        raise ValueError("give an input image or --sample, not both")
    use_sample = args.sample or args.input is None
    source = sample_image_path() if use_sample else Path(args.input)
    pixels, bit_depth = read_image(source)          # a bad path fails before the model loads
    model, config, label = load_model(args.model, args.device, args.precision)
    print(describe_model(label, config))

    if bit_depth == 16:
        print(f"note: {source} is 16-bit; the model sees (and the output keeps) 8 bits")
    image8 = to_uint8(pixels)                                      # [C, H, W]
    eta = config.noise if use_sample and args.noise is None else args.noise
    print(f"input {source}: {describe_pixels(image8)}" + (" (bundled sample)" if use_sample else ""))

    model_input = image8
    if eta is not None:
        generator = torch.Generator().manual_seed(args.seed)
        model_input = add_noise(image8[None], eta, generator)[0]
        if args.noisy_output:
            write_image(args.noisy_output, model_input.float() / 255.0)
    denoised = denoise_any_size(model, config, model_input)
    write_image(args.output, denoised)
    print(f"denoised image written to {args.output}")
    if eta is not None:
        reference = image8[None].float() / 255.0
        noisy_db = psnr(model_input[None].float() / 255.0, reference).item()
        denoised_db = psnr(denoised[None], reference).item()
        print(f"noise {eta:g} (seed {args.seed}): PSNR noisy {noisy_db:.2f} dB, denoised {denoised_db:.2f} dB "
              f"(against the input)")
    return 0


def describe_pixels(image8) -> str:
    channels, height, width = image8.shape
    return f"{width}x{height} {'gray' if channels == 1 else 'color'}"


def denoise_any_size(model, config, image8):
    """Denoise an 8-bit ``[C, H, W]`` image of any size; returns floats in [0, 1], same shape.

    The U-Net halves the image once per level, so the image is padded by reflection
    to a multiple of ``size_multiple`` (reflection keeps the borders' statistics,
    unlike zeros) and cropped back. A gray model denoises each color channel as its
    own gray image; a color model gets a gray image repeated on three channels.
    """
    from .train import denoise_images

    channels, height, width = image8.shape
    if config.in_channels == 1:
        batch = image8[:, None]                                     # channels become images
    elif channels == 1:
        batch = image8.expand(config.in_channels, -1, -1)[None]
    else:
        batch = image8[None]
    padded = pad_to_multiple(batch, model.size_multiple)
    # One image at a time: a photo's spike tensors are T times its size per layer.
    denoised = denoise_images(model, padded, config, batch_size=1)[..., :height, :width]
    if config.in_channels == 1:
        return denoised[:, 0]
    return denoised[0].mean(dim=0, keepdim=True) if channels == 1 else denoised[0]


def pad_to_multiple(images, multiple: int):
    """Pad uint8 ``[N, C, H, W]`` at the bottom and right to multiples of ``multiple``."""
    import torch
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    pad_bottom, pad_right = -height % multiple, -width % multiple
    if not (pad_bottom or pad_right):
        return images
    # Reflection needs the pad to be shorter than the side; tiny images repeat the edge.
    mode = "reflect" if pad_bottom < height and pad_right < width else "replicate"
    padded = F.pad(images.float(), (0, pad_right, 0, pad_bottom), mode=mode)
    return padded.round().to(torch.uint8)


# ============================================================================ encode

def add_encode_command(commands) -> None:
    parser = _subcommand(commands, "encode", "draw an image's UWE bit planes",
                         "Draw an image and its UWE spike planes: time step 0 carries the most significant\n"
                         "bit (weight 2^(bits-1)). Color images are converted to gray (BT.601 luma).\n\n"
                         "example: vtsnn encode digit.png -o planes.png",
                         run_encode)
    parser.add_argument("input", metavar="IN", help="image file")
    parser.add_argument("-o", "--output", metavar="OUT.png", required=True, help="figure to write")
    parser.add_argument("--bits", type=int, default=8, help="bits per pixel, the number of time steps (default: 8)")


def run_encode(args: argparse.Namespace) -> int:
    import torch

    from .coding import full_scale
    from .data import read_image, rgb_to_gray, to_uint8
    from .figures import bit_planes_figure

    top = full_scale(args.bits)                 # ValueError for bits outside 1..16
    pixels, bit_depth = read_image(args.input)
    if pixels.shape[0] == 3:
        print(f"note: {args.input} is color; drawing the planes of its gray (BT.601 luma) version")
        pixels = rgb_to_gray(to_uint8(pixels)[None])[0].float() / 255.0
    if bit_depth > args.bits:
        print(f"note: {args.input} is {bit_depth}-bit; reduced to {args.bits} bits")
    levels = (pixels * top).round().to(torch.int32)
    bit_planes_figure(levels, args.output, bits=args.bits)
    print(f"{args.bits} bit planes written to {args.output}")
    return 0


# ============================================================================ download

def add_download_command(commands) -> None:
    from .data import DATASETS

    parser = _subcommand(commands, "download", "download a dataset",
                         "Download a dataset's official files into DATA_DIR/NAME and verify their checksums.",
                         run_download)
    parser.add_argument("name", metavar="NAME", choices=DATASETS, help=f"one of {', '.join(DATASETS)}")
    _add_data_dir_option(parser)
    parser.add_argument("--base-url", metavar="URL", default=None, help="mirror to fetch from instead")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_download(args: argparse.Namespace) -> int:
    from .data import download

    folder = download(args.name, args.data_dir, base_url=args.base_url, progress=not args.quiet)
    print(f"{args.name} is ready in {folder}")
    return 0


# ============================================================================ main

def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or environment, not a bug: reported as one line."""
    from PIL import Image

    from .checkpoint import CheckpointError
    from .data import DataError

    errors = [DataError, CheckpointError, ValueError, FileNotFoundError, OSError, Image.DecompressionBombError]
    try:
        import torch
        errors.append(torch.cuda.OutOfMemoryError)
    except (ImportError, AttributeError):
        pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:          # --help, or a usage error argparse already reported
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    args.argv = argv
    show_own_warnings_plainly()
    return run_reporting_errors(args.run, args)


def show_own_warnings_plainly() -> None:
    """Print the package's own warnings (text starting "vtsnn:") as one line each.

    Python prefixes a warning with the file, line and source of the warn() call, which
    tells a user of the command nothing; other libraries' warnings keep that form.
    """
    standard = warnings.formatwarning
    if getattr(standard, "vtsnn_plain", False):
        return

    def formatted(message, category, filename, lineno, line=None):
        if str(message).startswith(f"{PROGRAM}:"):
            return f"{message}\n"
        return standard(message, category, filename, lineno, line)
    formatted.vtsnn_plain = True
    warnings.formatwarning = formatted


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's KeyboardInterrupt so that the same cleanup runs.

    Unlike Ctrl-C it reaches only this process, not the others of the terminal's
    process group, so a parent that catches it must pass it on to its workers.
    """


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM (``kill``, a batch scheduler's notice) ends the command as Ctrl-C does.

    Python's default for SIGTERM ends the process on the spot: a training run's lock file
    stays behind and no resume hint is printed. Raised as an interrupt, cleanup runs.
    """
    if threading.current_thread() is not threading.main_thread():    # only the main thread may set it
        yield
        return

    def interrupt(signum, frame):
        raise Terminated
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_reporting_errors(run, args: argparse.Namespace) -> int:
    """Run a command; bad input becomes one line on stderr and an exit code, not a traceback."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        with terminate_as_interrupt():
            return run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = getattr(args, "interrupt_hint", "")
        print(f"\n{PROGRAM}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except expected_errors() as error:
        if debug:
            raise
        print(f"{PROGRAM}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_ERROR


def one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {text}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
