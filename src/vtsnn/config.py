"""Run configurations: :class:`TrainConfig`, everything that defines a denoising run.

:class:`ConfigRecord` gives any run configuration (a dataclass; the classifier's too)
type checks by field, a JSON round trip that refuses unknown keys, and one-line errors.
Field names are the ``vtsnn train`` options' names.

Method presets (DESIGN.md, "ITBP vs STBP"):

    training="itbp"  loss on bit planes vs the encoded clean label, membrane detached
    training="stbp"  decode, MSE vs the clean image, gradients through time
    training="ann"   the same-architecture ANN, MSE on real-valued images

``loss`` and ``temporal_grad`` override the preset separately: the authors' released
script is ``training="itbp", temporal_grad=True``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from dataclasses import dataclass, field

from .coding import DECODERS
from .neurons import SURROGATE_ALPHA

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


def _python_number(value):
    """``value`` as a Python int or float if it is a number of another kind (numpy's)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, int):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
        return float(value)
    return value


@functools.cache
def _field_types(cls) -> dict:
    """The resolved type of each field of the dataclass ``cls``. Cached: resolving them
    took two thirds of the time of building every experiment's cells, which makes
    thousands of configurations."""
    return typing.get_type_hints(cls)


class ConfigRecord:
    """JSON round trip and validation shared by the run configurations (dataclasses)."""

    def check_types(self) -> None:
        """Raise ``ValueError`` naming the first field whose value has the wrong type.

        Without it a slip such as ``--override train_limit=3,4`` (a tuple) would reach
        training and fail there, minutes in, with a TypeError far from its cause.
        """
        hints = _field_types(type(self))
        for field_ in dataclasses.fields(self):
            value = getattr(self, field_.name)
            if not _has_type(value, hints[field_.name]):
                raise ValueError(f"{field_.name} must be {_type_text(hints[field_.name])}, got {value!r}")
            # numpy.int64(3) and the like pass, stored as Python numbers so that the
            # configuration still writes as JSON; so do those inside a tuple field.
            if isinstance(value, (tuple, list)):
                setattr(self, field_.name, type(value)(_python_number(item) for item in value))
            else:
                setattr(self, field_.name, _python_number(value))

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
    decoupled_decay: bool = False        # weight_decay shrinks the weights directly (AdamW), not an L2 term in the gradient
    clip_grad: float = 0.0               # clip the gradient's norm (all weights together) to this (0: off)
    ema_decay: float = 0.0               # score and keep a moving average of the weights (0: off)
    score_raw: bool = False              # with ema_decay: also score the raw weights at each check, keep the better
    output_jitter: float = 0.0           # in training: output's input times a factor in [1-a, 1+a] (0: off; vtsnn.jitter)
    init: str = "default"                # or "spiking": weights scaled for 0/1 inputs
    init_gain: float = 2.0
    init_from: str | None = None         # start from this checkpoint's weights (same network)
    teacher: str | None = None           # train against this denoiser's output instead of the clean image
    flip: bool = False                   # mirror a random half of each training batch left-right
    shift: int = 0                       # move each training image by up to this many pixels each way (0: off)
    v_threshold: float = 1.0
    output_threshold: float = 0.077
    tau: float = 1.1
    channels: tuple = (16, 32, 64)
    color: bool = False
    seed: int = 0
    test_seed: int = 0                   # the fixed noise of the test set
    train_limit: int | None = None       # use only the first N training images
    val_size: int = 0                    # hold out the last N training images to pick the best epoch
    checks_per_epoch: int = 1            # validation scores per epoch (the last at its end); needs val_size
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
            (self.shift >= 0, f"shift must be 0 (off) or a number of pixels, got {self.shift}"),
            (self.checks_per_epoch >= 1, f"checks_per_epoch must be at least 1, got {self.checks_per_epoch}"),
            (self.checks_per_epoch == 1 or self.val_size > 0,
             "checks_per_epoch above 1 scores a validation set several times an epoch: it needs val_size"),
            (0 <= self.ema_decay < 1, f"ema_decay must be 0 (off) or in (0, 1), got {self.ema_decay}"),
            (not self.score_raw or (self.ema_decay and self.val_size),
             "score_raw sets the raw weights beside their average at each validation check: it needs "
             "ema_decay and val_size"),
            (0 <= self.output_jitter < 1, f"output_jitter must be 0 (off) or in (0, 1), got {self.output_jitter}"),
            (not self.output_jitter or self.training != "ann",
             "output_jitter moves the output neuron's threshold in training: the ANN twin has none"),
            (0 <= self.clip_grad < math.inf, f"clip_grad must be 0 (off) or a positive number, got {self.clip_grad}"),
            (self.temporal_grad or not self.detach_reset,
             "detach_reset drops a gradient path through time: it needs temporal_grad"),
            (self.teacher is None or self.teacher.strip() != "",
             "teacher must be a run or checkpoint folder, or none"),
            (self.surrogate_alpha > 0 and math.isfinite(self.surrogate_alpha),
             f"surrogate_alpha must be a positive number, got {self.surrogate_alpha}"),
            (0 <= self.weight_decay < math.inf, f"weight_decay must be 0 (off) or a positive number, got {self.weight_decay}"),
            (not self.decoupled_decay or self.weight_decay > 0,
             "decoupled_decay changes how weight_decay acts: it needs a weight_decay above 0"),
            (0 < self.output_threshold < math.inf,
             f"output_threshold must be a positive number, got {self.output_threshold}"),
            (len(self.channels) >= 1 and all(type(width) is int and width >= 1 for width in self.channels),
             f"channels must be one or more whole numbers of at least 1, got {self.channels}"),
            (self.init_from is None or self.init_from.strip() != "",
             "init_from must be a run or checkpoint folder, or none"),
            *shared_range_checks(self),
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


def shared_range_checks(config) -> list[tuple[bool, str]]:
    """Range checks of the settings denoising and classification runs share.

    Torch and the neurons check some of them too, but only once the run has made its
    folder; a config refuses them at once.
    """
    return [
        (0 < config.lr < math.inf, f"lr must be a positive number, got {config.lr}"),
        (0 < config.init_gain < math.inf, f"init_gain must be a positive number, got {config.init_gain}"),
        (0 < config.v_threshold < math.inf, f"v_threshold must be a positive number, got {config.v_threshold}"),
        (1 <= config.tau < math.inf, f"tau must be at least 1 (1: no memory), got {config.tau}"),
        (config.log_every >= 1, f"log_every must be at least 1, got {config.log_every}"),
        (config.train_limit is None or config.train_limit >= 1,
         f"train_limit must be at least 1 or none, got {config.train_limit}"),
        (config.test_limit is None or config.test_limit >= 1,
         f"test_limit must be at least 1 or none, got {config.test_limit}"),
    ]


# Keys that define the trained function: a checkpoint is refused when any differs.
MODEL_KEYS = ("training", "neuron", "encoder", "decoder", "v_threshold", "output_threshold", "tau",
              "channels", "color")
# Keys that must also agree to resume a run (epochs may grow).
RESUME_KEYS = tuple(k for k in dataclasses.asdict(TrainConfig()) if k not in ("epochs", "extra", "log_every"))
