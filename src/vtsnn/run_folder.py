"""A training run's folder: its epoch checkpoints, the best epoch and the log.

Denoisers (:mod:`vtsnn.train`) and classifiers (:mod:`vtsnn.classify`) share the layout:

    config.json          the run's configuration
    log.jsonl            one JSON record per logged step and per epoch's evaluation
    latest.json          names the last complete epoch's checkpoint and its progress
    epoch-NNNN/          that checkpoint (:mod:`vtsnn.checkpoint`), with optimizer moments
                         and the training RNG, so a resumed run reaches the same weights
    best/                with a validation set, the best-validation epoch's weights

Every folder is written under a temporary name and renamed when complete, so a run
killed at any moment resumes from its last complete epoch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from . import checkpoint as ckpt


def _rng_tensor(generator: torch.Generator) -> torch.Tensor:
    return generator.get_state().clone()


def save_checkpoint(run_dir: Path, model, optimizer, generator, config, progress: dict,
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
    ckpt.save_weights(staging, unwrap_model(model), config.to_dict())
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
    ckpt.save_weights(staging, unwrap_model(model), config.to_dict())
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


def unwrap_model(model):
    """The model inside a DistributedDataParallel wrapper, or ``model`` itself."""
    return model.module if hasattr(model, "module") else model


def append_log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "log.jsonl", "a") as file:
        file.write(json.dumps(record) + "\n")
