"""Classification with VTLeNet (the paper's Fig. 6): accuracy against T and the noise level.

One :class:`ClassifyConfig` defines a run; :func:`train_classifier` trains it with
cross-entropy on the logits, scores the fixed noisy test set after every epoch,
appends to ``log.jsonl`` and writes a checkpoint per epoch with the same folder
layout and atomic writes as the denoisers (:mod:`vtsnn.run_folder`), so
``resume=True`` continues an interrupted run to the very same weights.

Input pipeline, for an 8-bit image ``x`` and ``T`` time steps:

    noisy   = add_noise(x, eta)            fresh noise per training batch; the test
                                           set's noise is fixed by ``test_seed``
    reduced = noisy >> (8 - T)             the T most significant bits
    spikes  = uwe_encode(reduced, bits=T)  T binary planes, MSB at t = 0

*Decision:* the paper says only that VTLeNet runs "with T bits"; we keep the T most
significant bits (a right shift, i.e. rounding down to T-bit precision), because
those are exactly the first T time steps of the 8-bit UWE code: a T-step network
sees the 8-step network's input cut after T steps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt
from .coding import uwe_encode
from .data import add_noise, fixed_test_noise, load_dataset
from .models import VTLeNet
from .config import ConfigRecord, shared_range_checks
from .run_folder import claim_run_dir, resolve_checkpoint, start_or_resume
from .train import move_optimizer_state, pick_device, run_epochs, scale_for_spiking_inputs

SOURCE_BITS = 8          # the datasets' pixels
NUM_CLASSES = 10
CLASSIFY_DATASETS = ("mnist", "fashion_mnist")     # 28x28 gray, what VTLeNet is sized for


@dataclass
class ClassifyConfig(ConfigRecord):
    """Everything that defines a VTLeNet classification run."""

    steps: int = 8                       # T: time steps = input bits kept
    noise: float = 0.0                   # eta of the Gaussian noise on the inputs
    dataset: str = "mnist"
    neuron: str = "if"
    epochs: int = 1
    batch_size: int = 50
    lr: float = 1e-3
    lr_schedule: str = "constant"        # or "cosine" (to 0 over the run)
    init: str = "default"                # or "spiking": weights scaled for 0/1 inputs
    init_gain: float = 2.0
    v_threshold: float = 1.0
    tau: float = 1.1
    temporal_grad: bool = True           # backpropagate through time (False: spatial only)
    seed: int = 0
    test_seed: int = 0                   # the fixed noise of the test set
    train_limit: int | None = None       # use only the first N training images
    test_limit: int | None = None        # score on the first N test images
    log_every: int = 100                 # steps between loss records in log.jsonl
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.check_types()
        checks = [
            (1 <= self.steps <= SOURCE_BITS,
             f"steps (T) must be an integer from 1 to {SOURCE_BITS}, got {self.steps!r}"),
            (self.dataset in CLASSIFY_DATASETS, f"dataset must be one of {CLASSIFY_DATASETS}, got {self.dataset!r}"),
            (self.neuron in ("if", "lif"), f"neuron must be 'if' or 'lif', got {self.neuron!r}"),
            (self.lr_schedule in ("constant", "cosine"),
             f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}"),
            (self.init in ("default", "spiking"), f"init must be default or spiking, got {self.init!r}"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be at least 1"),
            (0 <= self.noise < 10 and math.isfinite(self.noise), f"noise must be in [0, 10), got {self.noise}"),
            *shared_range_checks(self),
        ]
        self.require(checks)


# Keys that must agree to resume a run (epochs may grow; notes and logging may change).
RESUME_KEYS = tuple(k for k in dataclasses.asdict(ClassifyConfig()) if k not in ("epochs", "extra", "log_every"))


# ----------------------------------------------------------------------------- model

def build_classifier(config: ClassifyConfig) -> VTLeNet:
    model = VTLeNet(in_channels=1, num_classes=NUM_CLASSES, image_size=28, steps=config.steps,
                    neuron=config.neuron, v_threshold=config.v_threshold, tau=config.tau,
                    temporal_grad=config.temporal_grad)
    if config.init == "spiking":
        scale_for_spiking_inputs(model, config.init_gain)       # the convolutions
        _scale_linear_layers(model, config.init_gain)           # and the fully connected part
    return model


@torch.no_grad()
def _scale_linear_layers(model: nn.Module, gain: float) -> None:
    """``std = gain / sqrt(fan_in)`` for linear layers, as train.py's rule does for convolutions.

    VTLeNet's fully connected layers also take 0/1 spikes, so PyTorch's default
    (far too small for a threshold of 1) would leave them silent in the same way.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, gain / math.sqrt(module.in_features))


def encode_images(images: torch.Tensor, steps: int) -> torch.Tensor:
    """8-bit images ``[B, 1, H, W]`` -> spikes ``[T, B, 1, H, W]`` of their T most significant bits."""
    return uwe_encode(images >> (SOURCE_BITS - steps), bits=steps)


# ---------------------------------------------------------------------------- scoring

@torch.inference_mode()
def accuracy(model: VTLeNet, images: torch.Tensor, labels: torch.Tensor, steps: int,
             batch_size: int = 500) -> float:
    """Fraction of ``images`` (8-bit, already noisy) classified as ``labels``."""
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        spikes = encode_images(images[start:start + batch_size].to(device), steps)
        predicted = model(spikes).argmax(dim=1).cpu()
        correct += int((predicted == labels[start:start + batch_size]).sum())
    return correct / images.shape[0]


def load_classification_test_set(config: ClassifyConfig, data_dir=None):
    """(noisy test images, labels): the noise is fixed by ``config.test_seed``."""
    images, labels = load_dataset(config.dataset, "test", data_dir)
    if config.test_limit:
        images, labels = images[:config.test_limit], labels[:config.test_limit]
    return fixed_test_noise(images, config.noise, seed=config.test_seed), labels


def load_classifier(path) -> tuple[VTLeNet, ClassifyConfig]:
    """A trained classifier and its config, from a checkpoint or run folder."""
    folder = resolve_checkpoint(path)
    try:
        config = ClassifyConfig.from_dict(ckpt.read_json(folder / "config.json"))
    except (ValueError, TypeError) as error:
        raise ckpt.CheckpointError(f"{folder / 'config.json'}: {error}") from None
    model = build_classifier(config)
    ckpt.load_weights(folder, model)
    model.eval()
    return model, config


# --------------------------------------------------------------------------- training

def train_classifier(config: ClassifyConfig, run_dir, resume: bool = False, progress: bool = True,
                     data_dir=None, device: str | None = None) -> dict:
    """Train (or resume) VTLeNet in ``run_dir``; returns the last evaluation record.

    The record holds ``accuracy`` (a fraction in [0, 1]) on the fixed noisy test set.
    """
    run_dir = Path(run_dir)
    device = pick_device(device)
    latest = claim_run_dir(run_dir, resume)

    torch.manual_seed(config.seed)
    model = build_classifier(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator, start = start_or_resume(run_dir, latest, config, RESUME_KEYS, model, optimizer)
    model = model.to(device)
    move_optimizer_state(optimizer, device)

    train_images, train_labels = load_dataset(config.dataset, "train", data_dir)
    if config.train_limit:
        train_images, train_labels = train_images[:config.train_limit], train_labels[:config.train_limit]
    test_images, test_labels = load_classification_test_set(config, data_dir)

    def batch_loss(indices):
        noisy = add_noise(train_images[indices], config.noise, generator)
        logits = model(encode_images(noisy.to(device), config.steps))
        return nn.functional.cross_entropy(logits, train_labels[indices].to(device))

    def evaluate_epoch():
        return {"accuracy": accuracy(model, test_images, test_labels, config.steps),
                "test_images": int(test_images.shape[0])}

    def describe(record):
        return f"test accuracy {100 * record['accuracy']:.2f}% (T={config.steps}, noise {config.noise:g})"

    return run_epochs(run_dir, config, model, optimizer, generator, start,
                      train_images.shape[0], batch_loss, evaluate_epoch, describe, progress)
