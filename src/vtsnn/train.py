"""Training and evaluation of denoisers: ITBP, STBP and the ANN twin.

One :class:`TrainConfig` says everything that defines a run; :func:`train` runs it
with a progress bar, evaluates on the fixed noisy test set after every epoch, appends
to ``log.jsonl`` and writes an atomic checkpoint per epoch, so that ``resume=True``
continues an interrupted run to the same final weights as an uninterrupted one.

Method presets (DESIGN.md, "ITBP vs STBP"):

    training="itbp"  loss on bit planes vs the encoded clean label, membrane detached
    training="stbp"  decode, MSE vs the clean image, gradients through time
    training="ann"   the same-architecture ANN, MSE on real-valued images

``loss`` and ``temporal_grad`` override the preset separately: the authors' released
script is ``training="itbp", temporal_grad=True``. ``loss="bitplane-squared"`` (ours)
weighs each bit plane by its decoder weight squared, the plane's share of the pixel MSE;
``loss="bitplane-residual"`` (ours) sets each plane's target to the bit that best corrects
the planes the network has already emitted (``losses.residual_targets``);
``loss="bitplane-flip"`` (ours) sets it to the better bit with the other planes as
emitted (``losses.flip_targets``); ``loss="decoded-flip"`` (ours) is the decoded MSE with
each bit's gradient the change in error that flipping it makes (``losses.flip_decoded_loss``).

*Decision:* the bit-plane target is the clean image encoded with the *input*
encoder (UWE or TTFS), as the paper's "encoded label"; evaluation always decodes the
output with the configured decoder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import shutil
import time
import types
import typing
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import machine
from .allocator import keep_freed_memory
from .averaging import WeightAverage
from .coding import DECODERS, decode, ttfs_encode, uwe_encode
from .data import add_noise, fixed_test_noise, load_dataset
from .energy import LayerCount, count_operations_on_images
from .losses import flip_decoded_loss, flip_targets, itbp_loss, residual_targets, stbp_loss
from .metrics import psnr, standard_error
from .models import UNetANN, UVTSNN
from .neurons import SURROGATE_ALPHA
from .probes import FiringRates

BITS = 8
TRAININGS = ("itbp", "stbp", "ann")
PRESETS = {"itbp": ("bitplane", False), "stbp": ("decoded", True), "ann": ("mse", False)}
# "bitplane-squared": the bit-plane loss with squared plane weights (losses.itbp_loss).
# "bitplane-residual": the bit-plane loss against targets that follow the planes already
# emitted (losses.residual_targets). "bitplane-flip": against each bit as it should be with
# the other planes as emitted (losses.flip_targets). "decoded-flip": the decoded MSE with
# each bit's gradient the change in error that flipping it makes (losses.flip_decoded_loss).
# These three are JOINT_LOSSES, UWD only.
LOSSES = ("bitplane", "bitplane-squared", "bitplane-residual", "bitplane-flip", "decoded", "decoded-flip", "mse")
JOINT_LOSSES = ("bitplane-residual", "bitplane-flip", "decoded-flip")    # need UWD's powers of two
# "uwe-lsb": UWE's planes least significant bit first (with the decoder "uwd-lsb"; not the paper's).
ENCODERS = ("uwe", "uwe-lsb", "ttfs")


def _has_type(value, annotation) -> bool:
    """Whether ``value`` fits a configuration field's type hint.

    An int fits a float field (JSON and ``--override lr=1`` give one) and a list a tuple
    field (JSON has no tuples); ``True`` is not an int here, although Python says it is.
    """
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if isinstance(value, bool):
        return annotation is bool
    if annotation is int:
        return isinstance(value, numbers.Integral)       # numpy's integers too
    if annotation is float:
        return isinstance(value, numbers.Real)
    if annotation is tuple:
        return isinstance(value, (tuple, list))
    return isinstance(value, annotation)


def _type_text(annotation) -> str:
    options = typing.get_args(annotation) or (annotation,)
    return " or ".join("None" if option is type(None) else option.__name__ for option in options)


class ConfigRecord:
    """JSON round trip and validation shared by the run configurations (dataclasses)."""

    def check_types(self) -> None:
        """Raise ``ValueError`` naming the first field whose value has the wrong type.

        Without it a slip such as ``--override train_limit=3,4`` (a tuple) would reach
        training and fail there, minutes in, with a TypeError far from its cause.
        """
        hints = typing.get_type_hints(type(self))
        for field_ in dataclasses.fields(self):
            value = getattr(self, field_.name)
            if not _has_type(value, hints[field_.name]):
                raise ValueError(f"{field_.name} must be {_type_text(hints[field_.name])}, got {value!r}")
            # numpy.int64(3) and the like pass, stored as Python numbers so that the
            # configuration still writes as JSON.
            if isinstance(value, numbers.Integral) and not isinstance(value, int):
                setattr(self, field_.name, int(value))
            elif isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
                setattr(self, field_.name, float(value))

    @staticmethod
    def require(checks) -> None:
        """Raise ``ValueError`` with the message of the first failed ``(ok, message)`` check."""
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys {unknown}")
        return cls(**payload)


@dataclass
class TrainConfig(ConfigRecord):
    """Everything that defines a denoising run. Field names are the CLI's option names."""

    dataset: str = "mnist"
    noise: float = 0.2
    training: str = "itbp"
    neuron: str = "if"
    encoder: str = "uwe"
    decoder: str = "uwd"
    loss: str | None = None              # None: the preset's ("bitplane", "decoded" or "mse"); any of LOSSES, or "a+b"
    temporal_grad: bool | None = None    # None: the preset's
    detach_reset: bool = False           # through time: no gradient through the soft reset
    surrogate_alpha: float = SURROGATE_ALPHA  # arctangent surrogate's alpha (2: DESIGN.md's)
    epochs: int = 1
    batch_size: int = 50
    lr: float = 1e-3
    lr_schedule: str = "constant"        # or "cosine" (to 0 over the run)
    weight_decay: float = 0.0
    ema_decay: float = 0.0               # score and keep a moving average of the weights (0: off)
    init: str = "default"                # or "spiking": weights scaled for 0/1 inputs
    init_gain: float = 2.0
    init_from: str | None = None         # start from this checkpoint's weights (same network)
    v_threshold: float = 1.0
    output_threshold: float = 0.077
    tau: float = 1.1
    channels: tuple = (16, 32, 64)
    color: bool = False
    seed: int = 0
    test_seed: int = 0                   # the fixed noise of the test set
    train_limit: int | None = None       # use only the first N training images
    val_size: int = 0                    # hold out the last N training images to pick the best epoch
    test_limit: int | None = None        # score on the first N test images
    precision: str = "fp32"              # or "bf16": autocast + channels-last (AMX on CPU)
    log_every: int = 100                 # steps between loss records in log.jsonl
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.check_types()
        self.channels = tuple(self.channels)
        if self.training not in TRAININGS:
            raise ValueError(f"training must be one of {TRAININGS}, got {self.training!r}")
        preset_loss, preset_temporal = PRESETS[self.training]
        self.loss = preset_loss if self.loss is None else self.loss
        self.temporal_grad = preset_temporal if self.temporal_grad is None else bool(self.temporal_grad)
        checks = [
            (self.neuron in ("if", "lif"), f"neuron must be 'if' or 'lif', got {self.neuron!r}"),
            (self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}, got {self.encoder!r}"),
            ((self.encoder == "uwe-lsb") == (self.decoder == "uwd-lsb"),
             "the least-significant-bit-first code goes both ways: encoder uwe-lsb with decoder uwd-lsb"),
            (self.decoder in DECODERS, f"decoder must be one of {DECODERS}, got {self.decoder!r}"),
            (all(term in LOSSES for term in self.loss_terms),
             f"loss must be one of {', '.join(LOSSES)}, or several joined by '+', got {self.loss!r}"),
            (len(set(self.loss_terms)) == len(self.loss_terms), f"loss {self.loss!r} names a term twice"),
            ((self.loss == "mse") == (self.training == "ann") and ("mse" not in self.loss_terms or self.loss == "mse"),
             "the mse loss goes with training='ann' only, and alone"),
            (not set(self.loss_terms) & set(JOINT_LOSSES) or self.decoder == "uwd",
             f"the {self.loss} loss needs the uwd decoder (powers of two, MSB first), got {self.decoder!r}"),
            (self.lr_schedule in ("constant", "cosine"), f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}"),
            (self.init in ("default", "spiking"), f"init must be default or spiking, got {self.init!r}"),
            (self.precision in ("fp32", "bf16"), f"precision must be fp32 or bf16, got {self.precision!r}"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be at least 1"),
            (0 <= self.noise < 10 and math.isfinite(self.noise), f"noise must be in [0, 10), got {self.noise}"),
            (self.val_size >= 0, f"val_size must be 0 (no validation set) or positive, got {self.val_size}"),
            (0 <= self.ema_decay < 1, f"ema_decay must be 0 (off) or in (0, 1), got {self.ema_decay}"),
            (self.temporal_grad or not self.detach_reset,
             "detach_reset drops a gradient path through time: it needs temporal_grad"),
            (self.surrogate_alpha > 0 and math.isfinite(self.surrogate_alpha),
             f"surrogate_alpha must be a positive number, got {self.surrogate_alpha}"),
        ]
        self.require(checks)

    def to_dict(self) -> dict:
        payload = dataclasses.asdict(self)
        payload["channels"] = list(self.channels)
        return payload

    @property
    def loss_terms(self) -> list[str]:
        """The losses summed in training: ``"bitplane+decoded-flip"`` is two terms."""
        return self.loss.split("+")

    @property
    def in_channels(self) -> int:
        return 3 if self.color else 1


# Keys that define the trained function: a checkpoint is refused when any differs.
MODEL_KEYS = ("training", "neuron", "encoder", "decoder", "v_threshold", "output_threshold", "tau",
              "channels", "color")
# Keys that must also agree to resume a run (epochs may grow).
RESUME_KEYS = tuple(k for k in dataclasses.asdict(TrainConfig()) if k not in ("epochs", "extra", "log_every"))


# ----------------------------------------------------------------------------- models

def build_model(config: TrainConfig) -> torch.nn.Module:
    if config.training == "ann":
        return UNetANN(config.in_channels, config.in_channels, config.channels)
    model = UVTSNN(config.in_channels, config.in_channels, config.channels, neuron=config.neuron,
                   v_threshold=config.v_threshold, output_threshold=config.output_threshold,
                   tau=config.tau, temporal_grad=config.temporal_grad, detach_reset=config.detach_reset,
                   surrogate_alpha=config.surrogate_alpha)
    if config.init == "spiking":
        scale_for_spiking_inputs(model, config.init_gain)
    return model


@torch.no_grad()
def scale_for_spiking_inputs(model: torch.nn.Module, gain: float) -> None:
    """Kaiming-normal weights with a gain chosen for 0/1 inputs and a threshold of 1.

    PyTorch's default (uniform, std ``1/sqrt(3 fan_in)``) gives pre-activations far
    below the threshold when inputs are sparse spikes, so most layers stay silent at
    initialization and learn slowly. ``std = gain / sqrt(fan_in)`` restores firing.
    """
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weight = module.weight
            fan_in = weight[0].numel() if isinstance(module, torch.nn.Conv2d) else weight.shape[0] * weight[0, 0].numel()
            weight.normal_(0.0, gain / math.sqrt(fan_in))


# --------------------------------------------------------------------- encode / decode

def encode_input(noisy: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """8-bit images ``[B, C, H, W]`` -> input of the model (spikes, or [0, 1] floats for the ANN)."""
    if config.training == "ann":
        return noisy.float() / 255.0
    if config.encoder == "ttfs":
        return ttfs_encode(noisy, bits=BITS)
    if config.encoder == "uwe-lsb":
        return uwe_encode(noisy, bits=BITS).flip(0)
    return uwe_encode(noisy, bits=BITS)


def output_to_image(output: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Model output -> denoised image in ``[0, 1]``."""
    if config.training == "ann":
        return output.float().clamp(0.0, 1.0)
    return (decode(output.float(), config.decoder) / 255.0).clamp(0.0, 1.0)


def compute_loss(output: torch.Tensor, clean: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The configured loss; a loss of several terms (``"a+b"``) is their sum."""
    return sum(loss_term(term, output, clean, config) for term in config.loss_terms)


def loss_term(term: str, output: torch.Tensor, clean: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if term == "mse":
        return torch.nn.functional.mse_loss(output.float(), clean.float() / 255.0)
    if term == "decoded":
        return stbp_loss(output, clean.float() / 255.0, config.decoder)
    if term == "decoded-flip":
        return flip_decoded_loss(output, clean.float() / 255.0)
    if term == "bitplane-residual":
        return itbp_loss(output, residual_targets(output, clean), config.decoder)
    if term == "bitplane-flip":
        return itbp_loss(output, flip_targets(output, clean), config.decoder)
    return itbp_loss(output, encode_input(clean, config), config.decoder,
                     squared_weights=term == "bitplane-squared")


def autocast_for(config: TrainConfig, device: torch.device):
    if config.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


SLOW_BF16_WARNING = (
    "vtsnn: this CPU has no native bf16 arithmetic (neither AMX nor AVX-512 BF16), so bf16 runs "
    "emulated, several times slower than fp32 (training 8x and inference 6x slower on an AVX2 AMD "
    "EPYC: results/benchmarks/throughput-avx2.json). fp32 is faster here: --precision fp32 "
    "(vtsnn train, evaluate, denoise, energy, circuit) or --override precision=fp32 (vtsnn "
    "reproduce); a model may score slightly differently in it (results/precision-inference).")


def prepare_model(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if config.precision == "bf16" and device.type == "cpu" and machine.cpu_has_native_bf16() is False:
        # Python shows this once per process: it comes from this one line.
        warnings.warn(SLOW_BF16_WARNING)
    if uses_channels_last(config.precision, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def uses_channels_last(precision: str, device: torch.device) -> bool:
    """Whether a model runs with channels-last weights (and so activations) in ``precision`` on ``device``.

    bf16 everywhere: channels-last lets oneDNN use AMX tiles on CPU and tensor cores on a
    GPU. fp32 on CPU: oneDNN's channels-last convolutions ran a training step 1.17x and
    inference 1.26x faster than the default layout on an AVX2 EPYC
    (results/benchmarks/fp32-channels-last-avx2.json). fp32 on a GPU keeps the default.
    """
    return precision == "bf16" or device.type == "cpu"


@torch.inference_mode()
def model_outputs(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                  batch_size: int = 500, device: torch.device | None = None):
    """Yield the model's raw output for each batch of 8-bit images ``[N, C, H, W]``, in order.

    A spiking model's output is its spikes ``[T, B, C, H, W]``; the ANN's, ``[B, C, H, W]``.
    """
    device = device or next(model.parameters()).device
    model.eval()
    for start in range(0, noisy.shape[0], batch_size):
        batch = noisy[start:start + batch_size].to(device)
        with autocast_for(config, device):
            yield model(encode_input(batch, config))


def spiking_output_bits(model: torch.nn.Module, config: TrainConfig, noisy: torch.Tensor,
                        device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """A spiking model's output spikes ``[T, N, C, H, W]`` (as 0.0/1.0) for 8-bit noisy images ``[N, C, H, W]``."""
    model = prepare_model(model, config, device)
    return torch.cat([output.float() for output in model_outputs(model, noisy, config)], dim=1)


def denoise_images(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                   batch_size: int = 500, device: torch.device | None = None) -> torch.Tensor:
    """Denoise 8-bit images ``[N, C, H, W]``; returns floats in ``[0, 1]`` on the CPU."""
    return torch.cat([output_to_image(output, config).cpu()
                      for output in model_outputs(model, noisy, config, batch_size, device)])


def evaluate(model: torch.nn.Module, clean: torch.Tensor, noisy: torch.Tensor, config: TrainConfig,
             batch_size: int = 500) -> dict:
    """:func:`denoising_scores` of the model's output for 8-bit ``noisy`` images."""
    return denoising_scores(denoise_images(model, noisy, config, batch_size), clean, noisy)


def denoising_scores(denoised: torch.Tensor, clean: torch.Tensor, noisy: torch.Tensor) -> dict:
    """PSNR (data range 1, per image then averaged) of ``denoised`` (floats in [0, 1]) and of
    the 8-bit ``noisy`` input against 8-bit ``clean``; ``psnr_sem`` is the output PSNR's
    standard error over the images.
    """
    clean01 = clean.float() / 255.0
    per_image = psnr(denoised, clean01, reduction="none")      # once, for the mean and its standard error
    return {"psnr": per_image.mean().item(), "psnr_sem": standard_error(per_image),
            "noisy_psnr": psnr(noisy.float() / 255.0, clean01).item(), "test_images": int(clean.shape[0])}


# Test images on which the per-layer firing rates are measured after each epoch: enough
# for stable rates, few enough to add about a second to the epoch.
RATE_IMAGES = 1000


def layer_firing_rates(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig) -> dict[str, float]:
    """``{layer: firing rate}`` of a spiking model's neurons while it denoises ``noisy``."""
    with FiringRates(model) as probe:
        denoise_images(model, noisy, config)
    return probe.rates()


def operation_counts(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                     batch_size: int = 100) -> list[LayerCount]:
    """Per-layer operation counts (:mod:`vtsnn.energy`) of a model denoising 8-bit images ``noisy``.

    The model runs in its own arithmetic, so the spikes counted are the ones it emits
    there: a few % of them differ between bf16 and fp32.
    """
    device = next(model.parameters()).device
    return count_operations_on_images(model, noisy, lambda batch: encode_input(batch.to(device), config),
                                      batch_size, arithmetic=lambda: autocast_for(config, device))


def load_test_set(config: TrainConfig, data_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean test images and their noisy versions, fixed by ``config.test_seed``."""
    clean, _ = load_dataset(config.dataset, "test", data_dir, color=config.color)
    if config.test_limit:
        clean = clean[:config.test_limit]
    return clean, fixed_test_noise(clean, config.noise, seed=config.test_seed)


# ------------------------------------------------------------------------ checkpoints

def _rng_tensor(generator: torch.Generator) -> torch.Tensor:
    return generator.get_state().clone()


def save_checkpoint(run_dir: Path, model, optimizer, generator, config: TrainConfig, progress: dict,
                    raw_weights: dict | None = None) -> Path:
    """Write epoch ``progress['epoch']`` to a fresh folder, then point ``latest.json`` at it.

    The folder is complete before it gets its final name and before ``latest.json``
    names it, so a run killed at any moment resumes from the last complete epoch.
    With a weight average, ``model`` holds the average (the model the run hands out)
    and ``raw_weights`` the optimizer's weights, kept only to resume.
    """
    name = f"epoch-{progress['epoch']:04d}"
    final = run_dir / name
    staging = run_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    ckpt.save_weights(staging, _unwrap(model), config.to_dict())
    tensors, optimizer_meta = ckpt.flatten_optimizer_state(optimizer)
    tensors["rng.train"] = _rng_tensor(generator)
    for parameter_name, tensor in (raw_weights or {}).items():
        tensors[RAW_PREFIX + parameter_name] = tensor.contiguous()
    ckpt.atomic_save_tensors(staging / "state.safetensors", tensors)
    ckpt.atomic_write_json(staging / "state.json", {**progress, "optimizer": optimizer_meta})
    replace_folder(staging, final)
    ckpt.atomic_write_json(run_dir / "latest.json", {"checkpoint": name, **progress})
    for old in run_dir.glob("epoch-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


BEST = "best"
RAW_PREFIX = "raw."     # the optimizer's weights of a run that hands out a weight average


def stored_raw_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The optimizer's weights saved beside a weight-averaged checkpoint's model."""
    tensors = load_file(str(checkpoint / "state.safetensors"))
    return {name[len(RAW_PREFIX):]: tensor for name, tensor in tensors.items() if name.startswith(RAW_PREFIX)}


def best_record(run_dir: Path) -> dict | None:
    """What ``run_dir/best`` holds (epoch, the score that chose it, the epoch's scores), or ``None``."""
    pointer = Path(run_dir) / BEST / "best.json"
    return ckpt.read_json(pointer) if pointer.is_file() else None


def keep_if_best(run_dir: Path, model, config, key: str, progress: dict) -> bool:
    """Copy this epoch's weights to ``run_dir/best`` when its ``key`` score beats the kept one.

    The choice is made on the validation score only; the epoch's test score is stored
    beside it to be read, never to choose. ``best`` is a checkpoint folder, so
    ``vtsnn evaluate --model RUN/best`` loads it. Ties keep the earlier epoch.
    """
    kept = best_record(run_dir)
    if kept is not None and kept[key] >= progress[key]:
        return False
    staging = run_dir / f".{BEST}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    ckpt.save_weights(staging, _unwrap(model), config.to_dict())
    ckpt.atomic_write_json(staging / "best.json", {"selected_by": key, **progress})
    replace_folder(staging, run_dir / BEST)
    return True


def replace_folder(staging: Path, final: Path) -> None:
    """Give the complete folder ``staging`` the name ``final``, replacing any folder there.

    The old folder is renamed aside before the new one takes its name, so a reader sees
    either the old or the new folder whole, never a half-deleted one.
    """
    aside = final.with_name(f".{final.name}.old")
    shutil.rmtree(aside, ignore_errors=True)
    if final.exists():
        os.replace(final, aside)
    os.replace(staging, final)
    shutil.rmtree(aside, ignore_errors=True)


def restore_checkpoint(latest: Path, config, resume_keys, model, optimizer, generator, where: str) -> dict:
    """Load weights, optimizer moments and the training RNG of a checkpoint; returns its progress.

    ``config`` (a TrainConfig or another config class with ``from_dict``/``to_dict``)
    must agree with the stored one on ``resume_keys``, or the run is refused.
    """
    stored = type(config).from_dict(ckpt.read_json(latest / "config.json"))
    ckpt.check_config_matches(stored.to_dict(), config.to_dict(), resume_keys, where)
    ckpt.load_weights(latest, model)
    state = ckpt.read_json(latest / "state.json")
    tensors = load_file(str(latest / "state.safetensors"))
    ckpt.restore_optimizer_state(optimizer, tensors, state["optimizer"])
    generator.set_state(tensors["rng.train"])
    return state


def claim_run_dir(run_dir: Path, resume: bool) -> Path | None:
    """Create ``run_dir``; return its latest checkpoint, refusing to overwrite one without ``resume``."""
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise ckpt.CheckpointError(f"{run_dir} already holds a run; pass resume to continue it or choose another folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    return latest


def start_or_resume(run_dir: Path, latest: Path | None, config, resume_keys, model, optimizer):
    """The training generator and (epoch, images seen, step) to start from; writes ``config.json``.

    The generator shuffles and draws the training noise; with a checkpoint, it and the
    weights and Adam moments continue where the run stopped.
    """
    generator = torch.Generator().manual_seed(config.seed + 1)
    start = (0, 0, 0)
    if latest is not None:
        state = restore_checkpoint(latest, config, resume_keys, model, optimizer, generator, str(run_dir))
        start = (state["epoch"], state["images"], state["step"])
    ckpt.atomic_write_json(run_dir / "config.json", config.to_dict())
    return generator, start


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "latest.json"
    if not pointer.is_file():
        return None
    return Path(run_dir) / ckpt.read_json(pointer)["checkpoint"]


def resolve_checkpoint(path) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise ckpt.CheckpointError(f"{path} is not a checkpoint (no model.safetensors) nor a run folder (no latest.json)")


def load_trained(path, expect: dict | None = None) -> tuple[torch.nn.Module, TrainConfig]:
    """Load a trained model and its config; ``expect`` lists settings it must have been trained with."""
    folder = resolve_checkpoint(path)
    try:
        config = TrainConfig.from_dict(ckpt.read_json(folder / "config.json"))
    except (ValueError, TypeError) as error:
        raise ckpt.CheckpointError(f"{folder / 'config.json'}: {error}") from None
    if expect:
        ckpt.check_config_matches(config.to_dict(), {**config.to_dict(), **expect}, list(expect), str(folder))
    model = build_model(config)
    ckpt.load_weights(folder, model)
    model.eval()
    return model, config


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


# --------------------------------------------------------------------------- training

def initialize_from(model: torch.nn.Module, config: TrainConfig) -> None:
    """Copy the weights of ``config.init_from``, a model of the same network and method.

    Used to start a noisier denoiser from a trained one: the features carry over and
    training converges in a fraction of the epochs.
    """
    source = resolve_checkpoint(config.init_from)
    stored = TrainConfig.from_dict(ckpt.read_json(source / "config.json"))
    ckpt.check_config_matches(stored.to_dict(), config.to_dict(), MODEL_KEYS, str(source))
    ckpt.load_weights(source, model)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    if config.lr_schedule == "cosine":
        return 0.5 * config.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return config.lr


def _distributed():
    """(rank, world size) under ``torchrun``; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def pick_device(name: str | None = None) -> torch.device:
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", rank)
    return torch.device("cpu")


def append_log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "log.jsonl", "a") as file:
        file.write(json.dumps(record) + "\n")


def train(config: TrainConfig, run_dir, resume: bool = False, progress: bool = True, data_dir=None,
          device: str | None = None) -> dict:
    """Train (or resume) a denoiser in ``run_dir``; returns the last evaluation record."""
    run_dir = Path(run_dir)
    rank, world = _distributed()
    device = pick_device(device)
    latest = claim_run_dir(run_dir, resume)

    torch.manual_seed(config.seed)
    model = build_model(config)
    if config.init_from and latest is None:
        initialize_from(model, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator, start = start_or_resume(run_dir, latest, config, RESUME_KEYS, model, optimizer)

    model = prepare_model(model, config, device)
    move_optimizer_state(optimizer, device)
    average = start_weight_average(model, config, latest, start)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    all_train_images, _ = load_dataset(config.dataset, "train", data_dir, color=config.color)
    train_images, val_clean = split_training_set(all_train_images, config)
    val_noisy = None if val_clean is None else fixed_test_noise(val_clean, config.noise, config.test_seed + VALIDATION_SEED_OFFSET)
    test_clean, test_noisy = load_test_set(config, data_dir)

    def batch_loss(indices):
        clean = train_images[indices]
        noisy = add_noise(clean, config.noise, generator)   # same draw on every rank
        clean, noisy = clean[rank::world].to(device), noisy[rank::world].to(device)
        with autocast_for(config, device):
            output = model(encode_input(noisy, config))
        return compute_loss(output, clean, config)

    def evaluate_epoch():
        scores = evaluate(_unwrap(model), test_clean, test_noisy, config)
        if config.training != "ann":
            scores["firing_rates"] = layer_firing_rates(_unwrap(model), test_noisy[:RATE_IMAGES], config)
        if val_clean is not None:
            scores["val_psnr"] = evaluate(_unwrap(model), val_clean, val_noisy, config)["psnr"]
        return scores

    def describe(record):
        validation = f"validation PSNR {record['val_psnr']:.2f} dB, " if "val_psnr" in record else ""
        return (f"{validation}test PSNR {record['psnr']:.2f} dB (noisy input {record['noisy_psnr']:.2f} dB), "
                f"{record['train_img_s']:.0f} img/s")

    return run_epochs(run_dir, config, model, optimizer, generator, start,
                      train_images.shape[0], batch_loss, evaluate_epoch, describe, progress, rank,
                      select_key="val_psnr" if val_clean is not None else None, average=average)


def start_weight_average(model, config: TrainConfig, latest: Path | None, start) -> WeightAverage | None:
    """The run's weight average (``None`` without ``ema_decay``), resumed from ``latest``.

    A resumed averaged run has just loaded its checkpoint's model, the average; the
    optimizer's own weights come from the checkpoint's state.
    """
    if not config.ema_decay:
        return None
    average = WeightAverage(model, config.ema_decay, updates=start[2])
    if latest is not None:
        average.load_raw(stored_raw_weights(latest))
    return average


# The validation images get their own fixed noise, not the test set's draw.
VALIDATION_SEED_OFFSET = 1


def split_training_set(images: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images to train on, clean validation images or ``None`` without ``val_size``).

    The validation images are the *last* ``val_size`` of the training split, so they are
    the same for every seed and ``train_limit`` (which takes the first N of the rest)
    never reaches them. The test set is never used to pick anything.
    """
    if not config.val_size:
        train_images, val_images = images, None
    elif config.val_size >= images.shape[0]:
        raise ValueError(f"val_size {config.val_size} leaves no training images "
                         f"({config.dataset} has {images.shape[0]})")
    else:
        train_images, val_images = images[:-config.val_size], images[-config.val_size:]
    if config.train_limit:
        train_images = train_images[:config.train_limit]
    return train_images, val_images


def run_epochs(run_dir: Path, config, model, optimizer, generator, start: tuple[int, int, int],
               dataset_size: int, batch_loss, evaluate_epoch, describe, progress: bool = True,
               rank: int = 0, select_key: str | None = None, average: WeightAverage | None = None) -> dict:
    """The epoch loop shared by denoisers and classifiers; returns the last evaluation record.

    Each epoch shuffles with ``generator``, sets the scheduled learning rate, takes one
    Adam step per ``batch_loss(indices)``, logs the running loss every
    ``config.log_every`` steps, then (on rank 0) scores ``evaluate_epoch()``, logs it and
    writes the checkpoint. ``start`` is (epoch, images seen, step) of a resumed run.
    With ``select_key`` (a validation score, higher is better) the best epoch so far is
    also kept in ``run_dir/best`` (:func:`keep_if_best`). With ``average`` (a
    :class:`WeightAverage`, updated after every step) the averaged weights are the ones
    scored, kept and saved as the model.
    Sets the process's allocator to reuse freed memory (:mod:`vtsnn.allocator`), which
    makes CPU training steps about 1.3x faster.
    """
    keep_freed_memory()
    start_epoch, images_seen, step = start
    steps_per_epoch = math.ceil(dataset_size / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    record = {}
    for epoch in range(start_epoch, config.epochs):
        model.train()
        order = torch.randperm(dataset_size, generator=generator)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not progress or rank != 0, dynamic_ncols=True)
        started, running_loss, running_count = time.perf_counter(), 0.0, 0
        # CPU time of this process (all threads): unlike wall time, a paused run adds none.
        cpu_started = time.process_time()
        for batch_index in bar:
            indices = order[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, total_steps)
            loss = batch_loss(indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update()
            step += 1
            images_seen += indices.shape[0]
            # Summed on the loss's device: reading it (.item()) makes the host wait for a
            # GPU, so that happens once per log record, not once per step.
            running_loss = running_loss + loss.detach().double()
            running_count += 1
            if step % config.log_every == 0:
                mean_loss = (running_loss / running_count).item()
                elapsed = time.perf_counter() - started
                bar.set_postfix(loss=f"{mean_loss:.4f}", img_s=f"{(batch_index + 1) * config.batch_size / elapsed:.0f}")
                if rank == 0:
                    append_log(run_dir, {"kind": "train", "epoch": epoch + 1, "step": step, "images": images_seen,
                                         "loss": mean_loss})
                running_loss, running_count = 0.0, 0
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if rank == 0:
            # With a weight average, the average is scored, kept and saved as the model.
            with average.applied() if average is not None else nullcontext() as raw_weights:
                metrics = evaluate_epoch()
                record = {"kind": "eval", "epoch": epoch + 1, "step": step, "images": images_seen, **metrics,
                          "epoch_seconds": round(seconds, 2), "epoch_cpu_seconds": round(cpu_seconds, 2),
                          "train_img_s": round(steps_per_epoch * config.batch_size / seconds, 1)}
                append_log(run_dir, record)
                progress_record = {"epoch": epoch + 1, "images": images_seen, "step": step, **metrics}
                # Before the epoch's checkpoint: a run killed in between redoes this epoch,
                # gets the same weights and finds them already kept.
                if select_key is not None:
                    keep_if_best(run_dir, model, config, select_key, progress_record)
                save_checkpoint(run_dir, model, optimizer, generator, config, progress_record, raw_weights)
            if progress:
                tqdm.write(f"epoch {epoch + 1}: {describe(record)}")
    if not record and (run_dir / "latest.json").is_file():
        record = {"kind": "eval", **ckpt.read_json(run_dir / "latest.json")}
    return record


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(device)
