"""Pretrained denoisers shipped inside the package, found by name.

Each model is a folder ``vtsnn/pretrained/<name>/`` holding the layout that
:func:`vtsnn.train.load_trained` reads::

    config.json          the TrainConfig it was trained with
    model.safetensors    the weights
    MODEL_CARD.md        how it was trained, its scores, and the command that made it

Names say dataset, neuron and training noise level, e.g. ``mnist-if-0.2``, and then the
recipe where it is not Table 1's: ``mnist-if-0.2-residual`` was trained on residual
bit-plane targets with Adam's peak rate 1e-2 and weight averaging. A model
spec given by a user (``--model``) is either such a name or a path to a checkpoint
or run folder; :func:`resolve_model` turns either into a folder.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

# The best denoiser we ship for the paper's headline task (MNIST, eta 0.2): 24.44 dB
# against 23.61 for mnist-if-0.2, Table 1's recipe (results/pretrained/).
DEFAULT_MODEL = "mnist-if-0.2-residual"
# The files that make a folder a usable model; a half-copied folder is not listed.
REQUIRED_FILES = ("config.json", "model.safetensors")
MODEL_CARD = "MODEL_CARD.md"


def pretrained_root() -> Path:
    """The folder holding the pretrained models (tests replace this function)."""
    return Path(str(importlib.resources.files("vtsnn") / "pretrained"))


def _is_model_folder(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in REQUIRED_FILES)


def available() -> list[str]:
    """Names of the installed pretrained models, sorted."""
    root = pretrained_root()
    if not root.is_dir():
        return []
    return sorted(folder.name for folder in root.iterdir() if _is_model_folder(folder))


def _available_text() -> str:
    names = available()
    if not names:
        return ("no pretrained models are installed; give the path of a checkpoint or run folder instead "
                "(e.g. one made by `vtsnn train --out runs/NAME`)")
    return f"available: {', '.join(names)}"


def path_of(name: str) -> Path:
    """The folder of the pretrained model ``name``; ``ValueError`` if there is none."""
    if name not in available():
        raise ValueError(f"unknown pretrained model {name!r}; {_available_text()}")
    return pretrained_root() / name


def model_card(name: str) -> str:
    """The text of a pretrained model's ``MODEL_CARD.md`` ('' if it has none)."""
    card = path_of(name) / MODEL_CARD
    return card.read_text(encoding="utf-8") if card.is_file() else ""


# The headline line that scripts/publish_model.py writes into every card.
_CARD_PSNR = re.compile(r"\*\*Test PSNR: ([0-9.]+) dB\*\*")


def card_psnr(name: str) -> float | None:
    """The test PSNR a pretrained model's card states (``None`` if it states none)."""
    found = _CARD_PSNR.search(model_card(name))
    return float(found.group(1)) if found else None


def is_pretrained_name(spec) -> bool:
    return spec is not None and str(spec) in available()


def resolve_model(spec=None) -> Path:
    """A model folder from a pretrained name or a checkpoint/run path (None: the default).

    An installed name wins over a same-named folder in the working directory, so
    ``--model mnist-if-0.2`` means the shipped model wherever it is run from.
    """
    if spec is None:
        if DEFAULT_MODEL not in available():
            raise ValueError(f"the default model {DEFAULT_MODEL!r} is not installed; {_available_text()}")
        return path_of(DEFAULT_MODEL)
    if is_pretrained_name(spec):
        return path_of(str(spec))
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if _looks_like_path(str(spec)):
        raise FileNotFoundError(f"model {spec} not found: no such checkpoint or run folder")
    raise ValueError(f"unknown pretrained model {str(spec)!r} and no folder of that name; {_available_text()}")


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.startswith((".", "~"))
