"""Checkpoints: safetensors weights + a JSON config, written atomically.

A checkpoint is a folder:

    config.json          the model/training configuration (what the weights belong to)
    model.safetensors    the weights
    state.safetensors    optional: optimizer moments and RNG states, for exact resume
    state.json           optional: epoch, images seen, optimizer hyper-parameters

Loading is strict: the weights must match the model built from ``config.json``
exactly (names and shapes), and a caller that expects a configuration gets an error
when the stored one differs, instead of a silently wrong model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to a different configuration."""


def _publish(temporary: str, path: Path) -> None:
    """Give the finished temporary file normal permissions, then rename it into place.

    ``mkstemp`` creates files readable by their owner only; a checkpoint should get the
    mode any new file gets (0666 minus the umask), so colleagues can read it.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, temporary, metadata=metadata)
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None


def save_weights(folder: Path, model: torch.nn.Module, config: dict) -> None:
    """Write ``model.safetensors`` then ``config.json`` (the config last: it marks completeness)."""
    folder = Path(folder)
    atomic_save_tensors(folder / "model.safetensors", model.state_dict())
    atomic_write_json(folder / "config.json", config)


def load_weights(folder: Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model``, refusing any missing, extra or reshaped tensor."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        tensors = load_file(str(path))
    except Exception as error:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or extra or reshaped:
        details = "; ".join(part for part in (
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {extra[:3]}" if extra else "",
            f"wrong shape {reshaped[:3]}" if reshaped else "") if part)
        raise CheckpointError(f"{path} does not fit this model configuration: {details}")
    model.load_state_dict(tensors, strict=True)


def check_config_matches(stored: dict, expected: dict, keys, where: str) -> None:
    """Raise if any of ``keys`` differs between a stored and an expected configuration."""
    different = [k for k in keys if stored.get(k) != expected.get(k)]
    if different:
        pairs = ", ".join(f"{k}: checkpoint {stored.get(k)!r} vs requested {expected.get(k)!r}" for k in different)
        raise CheckpointError(f"{where} was trained with a different configuration ({pairs})")


def flatten_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON scalars."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
