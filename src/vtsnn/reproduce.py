"""Running the paper's experiments: train or resume each cell's run, score it, keep the records.

The experiments themselves (cells, the paper's numbers) are data in :mod:`vtsnn.experiments`.
:func:`run_experiment` trains or resumes each cell's run in ``runs/<experiment>/<cell>``
(finished runs are skipped; a run another process trains is left to it, see
:mod:`vtsnn.run_lock`), evaluates it into ``results/<experiment>/<cell>.json``, then has
:mod:`vtsnn.reports` rebuild ``results/<experiment>/README.md``, ``summary.json`` and the
figures from all the cell files present.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import machine, run_lock
from .classify import ClassifyConfig, load_classification_test_set, load_classifier, train_classifier
from .classify import RESUME_KEYS as CLASSIFY_RESUME_KEYS
from .classify import accuracy as classification_accuracy
from .energy import DEFAULT_PRESET, energy_report
from .experiments import ENERGY_TEST_IMAGES, NOT_RUN, Cell, Config, cells, shard_cells
from .models import OUTPUT_LAYER
from .probes import FiringRates
from .config import RESUME_KEYS as DENOISE_RESUME_KEYS, TrainConfig
from .run_folder import BEST, best_record, latest_checkpoint
from .train import (denoise_images, denoising_scores, load_test_set, load_trained, operation_counts, pick_device,
                    prepare_model, train)


# ========================================================================== run status

def _resume_keys(config: Config) -> tuple[str, ...]:
    return CLASSIFY_RESUME_KEYS if isinstance(config, ClassifyConfig) else DENOISE_RESUME_KEYS


def finished_epoch(run_dir: Path) -> int:
    """The epoch of the run's last complete checkpoint (0 if none)."""
    pointer = Path(run_dir) / "latest.json"
    return int(ckpt.read_json(pointer)["epoch"]) if pointer.is_file() else 0


def check_run_matches(cell: Cell, run_dir: Path) -> None:
    """Refuse a run folder that holds another configuration (other than its epochs)."""
    latest = latest_checkpoint(run_dir)
    if latest is not None:
        # Through the config class, so settings added since the run was trained read as their defaults.
        stored = type(cell.config).from_dict(ckpt.read_json(latest / "config.json")).to_dict()
        ckpt.check_config_matches(stored, cell.config.to_dict(), _resume_keys(cell.config), str(run_dir))


def _epochs_text(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def scored_epoch(result: dict) -> int | None:
    """The epoch a result was scored at: the one its validation picked, else its last (older records)."""
    return result.get("scored_epoch") or result.get("epochs")


def run_status(cell: Cell, runs_root, out_root) -> str:
    """One line: how far the cell's run and its result are."""
    run_dir = Path(runs_root) / cell.run_name
    epoch, target = finished_epoch(run_dir), cell.config.epochs
    result = read_result(Path(out_root) / cell.experiment / f"{cell.cell_id}.json")
    try:
        check_run_matches(cell, run_dir)
        mismatch = ""
    except ckpt.CheckpointError as error:
        mismatch = str(error)
    if mismatch:
        return f"conflict: {mismatch}"
    lock = run_lock.describe(run_dir)
    if lock:
        state = f"training or interrupted ({lock})"
    elif epoch >= target:
        state = f"trained ({_epochs_text(epoch)})"
    elif epoch:
        state = f"partial ({epoch}/{target} epochs)"
    else:
        state = "not started"
    if result:
        # A validation set may have picked an earlier epoch than the last one trained.
        epochs, scored = result["epochs"], scored_epoch(result)
        state += f"; result: {_metric_text(result)} at epoch {scored}" + (f" of {epochs}" if scored != epochs else "")
    return state


# ============================================================================ running

def reproduce_command(name: str, epochs=None, subset=None, overrides=None, as_recorded: bool = False) -> str:
    """The ``vtsnn reproduce`` command line that runs these settings (for the records)."""
    words = ["vtsnn", "reproduce", name]
    if epochs is not None:
        words += ["--epochs", str(epochs)]
    if subset:
        words += ["--subset", subset]
    for key, value in (overrides or {}).items():
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        words += ["--override", f"{key}={text}"]
    if as_recorded:
        words.append("--as-recorded")
    return shlex.join(words)


def run_experiment(name: str, out_root="results", runs_root="runs", epochs: int | None = None,
                   subset: str | None = None, shard: tuple[int, int] = (0, 1), data_dir=None,
                   progress: bool = True, overrides: dict | None = None, device: str | None = None,
                   command: str | None = None, reports: bool = True, recorded_in=None,
                   log=print) -> list[dict]:
    """Train (or resume) and evaluate this shard's cells, then rebuild the reports.

    Returns the result records of the cells this call ran. Runs whose last checkpoint
    has reached ``epochs`` are not trained again, and a result file that already
    scores that checkpoint is not recomputed, so running the same command twice
    costs only the reports. ``reports=False`` leaves the reports to the caller (the
    parallel workers of ``--jobs``, whose parent writes them once at the end).
    ``recorded_in``: train each cell as its result there records (see :func:`cells`).
    """
    out_root, runs_root = Path(out_root), Path(runs_root)
    selected = cells(name, epochs, subset, overrides, recorded_in, runs_root)
    if not selected:
        raise ValueError(f"no cell of {name} matches the subset {subset!r}; see 'vtsnn reproduce {name} --list'")
    mine = shard_cells(selected, shard)
    command = command or reproduce_command(name, epochs, subset, overrides, as_recorded=recorded_in is not None)
    log(f"{name}: {len(mine)} of {len(selected)} cells in shard {shard[0]}/{shard[1]}")
    records, pace = [], Pace()
    for position, cell in enumerate(mine, 1):
        prefix = f"[{position}/{len(mine)}] {cell.experiment}/{cell.cell_id}"
        epochs_to_train = epochs_left([cell], runs_root)
        started = time.perf_counter()
        record = run_cell(cell, runs_root, out_root, data_dir, progress, device, command, log, prefix)
        pace.add(epochs_to_train, time.perf_counter() - started)
        if record is not None:
            records.append(record)
        if epochs_to_train and position < len(mine):
            log(f"{prefix}: {pace.forecast(epochs_left(mine[position:], runs_root))}")
    if reports:
        from .reports import write_reports      # here: vtsnn.reports builds on this module

        for experiment in dict.fromkeys(cell.experiment for cell in selected):
            write_reports(experiment, out_root, data_dir=data_dir, device=device, log=log)
    return records


def epochs_left(cells_: list[Cell], runs_root: Path) -> int:
    """Epochs still to train for these cells (a run that several cells share counts once)."""
    targets = {}
    for cell in cells_:
        targets[cell.run_name] = max(targets.get(cell.run_name, 0), cell.config.epochs)
    return sum(max(0, epochs - finished_epoch(Path(runs_root) / run)) for run, epochs in targets.items())


class Pace:
    """Seconds per trained epoch (scoring included) over the cells run so far, for a forecast.

    Cells differ (CIFAR-10 against MNIST, a classifier against a denoiser), so this is a
    rough figure for a long loop, not a promise; it says what it is based on.
    """

    def __init__(self):
        self.epochs, self.seconds = 0, 0.0

    def add(self, epochs: int, seconds: float) -> None:
        if epochs:                        # cells only scored (or skipped) say nothing about training
            self.epochs += epochs
            self.seconds += seconds

    def forecast(self, epochs_to_go: int) -> str:
        if not epochs_to_go:
            return "no training left in this shard"
        per_epoch = self.seconds / self.epochs
        return (f"{epochs_to_go} epoch{'s' * (epochs_to_go != 1)} left to train in this shard, about "
                f"{duration_text(per_epoch * epochs_to_go)} at {duration_text(per_epoch)} per epoch so far")


def run_cell(cell: Cell, runs_root: Path, out_root: Path, data_dir, progress: bool, device, command: str,
             log=print, prefix: str = "") -> dict | None:
    """Train or resume the cell's run unless finished, then score it; ``None`` if its run is busy."""
    run_dir = runs_root / cell.run_name
    check_run_matches(cell, run_dir)
    done = finished_epoch(run_dir)
    if done >= cell.config.epochs:
        log(f"{prefix}: run {run_dir} finished ({_epochs_text(done)}), not trained again")
    else:
        try:
            with run_lock.run_lock(run_dir):
                log(f"{prefix}: training in {run_dir}" + (f" (resuming after epoch {done})" if done else ""))
                trainer = train_classifier if cell.is_classifier else train
                trainer(cell.config, run_dir, resume=True, progress=progress, data_dir=data_dir, device=device)
        except run_lock.RunBusy as busy:
            log(f"{prefix}: skipped, {busy}")
            return None
    result_path = out_root / cell.experiment / f"{cell.cell_id}.json"
    previous = read_result(result_path)
    epoch = finished_epoch(run_dir)
    if _result_is_current(previous, cell, epoch, stored_config(run_dir)):
        log(f"{prefix}: {result_path} already scores epoch {epoch}, kept")
        return previous
    record = score_cell(cell, run_dir, data_dir, device, command)
    write_json(result_path, record)
    log(f"{prefix}: {_metric_text(record)} -> {result_path}")
    return record


def _result_is_current(previous: dict | None, cell: Cell, epoch: int, config: dict) -> bool:
    """Whether a result file scores this epoch of this run with every field scoring now gives."""
    if not previous or previous.get("epochs") != epoch or previous.get("config") != config:
        return False
    # Results from before per-layer firing rates were recorded are scored again.
    return cell.is_classifier or "firing_rates" in previous


def stored_config(run_dir: Path) -> dict:
    return ckpt.read_json(latest_checkpoint(run_dir) / "config.json")


# ============================================================================ scoring

def score_cell(cell: Cell, run_dir: Path, data_dir=None, device=None, command: str = "") -> dict:
    """Evaluate the cell's final checkpoint; the record of ``results/<experiment>/<cell>.json``."""
    started = time.perf_counter()
    torch_device = pick_device(device)
    if cell.is_classifier:
        scores = _score_classifier(run_dir, data_dir, torch_device)
    else:
        scores = _score_denoiser(run_dir, data_dir, torch_device, count_energy=cell.experiment == "energy")
    stored = stored_config(run_dir)
    paper_key = "paper_accuracy" if cell.is_classifier else "paper_psnr"
    return {"experiment": cell.experiment, "cell": cell.cell_id, "status": "done", **cell.describe(),
            **scores, paper_key: cell.paper, "epochs": finished_epoch(run_dir), "seed": stored["seed"],
            "test_seed": stored["test_seed"], "wall_seconds": training_seconds(run_dir),
            "cpu_seconds": training_seconds(run_dir, "epoch_cpu_seconds"),
            "score_seconds": round(time.perf_counter() - started, 2), "command": command,
            "run_dir": str(run_dir), "labels": cell.labels, "config": stored,
            "compute": machine.describe(torch_device)}


def scored_checkpoint(run_dir: Path) -> tuple[Path, dict]:
    """The checkpoint a denoising run is scored at, and how it was chosen.

    A run trained with a validation set (``val_size``) is scored at its best-validation
    epoch (``RUN/best``), the only choice that does not look at the test set; any
    other run at its last epoch. A run that kept raw weights or their average, whichever
    validated higher (``score_raw``), says which in ``scored_weights``.
    """
    best = best_record(run_dir)
    if best is not None:
        weights = {"scored_weights": best["weights"]} if "weights" in best else {}
        return Path(run_dir) / BEST, {"scored_epoch": best["epoch"], "selected_by": best["selected_by"],
                                      "val_psnr": best["val_psnr"], **weights}
    return Path(run_dir), {"scored_epoch": finished_epoch(run_dir), "selected_by": "last epoch"}


def _score_denoiser(run_dir: Path, data_dir, device: torch.device, count_energy: bool = False) -> dict:
    checkpoint, selection = scored_checkpoint(run_dir)
    model, config = load_trained(checkpoint)
    model = prepare_model(model, config, device)
    clean, noisy = load_test_set(config, data_dir)
    with FiringRates(model) as probe:
        denoised = denoise_images(model, noisy, config)
    rates = probe.rates()
    # The scores of train.evaluate, plus the MSE that Fig. 7 plots.
    clean01 = clean.float() / 255.0
    scores = {**denoising_scores(denoised, clean, noisy),
              "mse": torch.mean((denoised.double() - clean01.double()) ** 2).item(),
              "output_rate": rates.get(OUTPUT_LAYER), "firing_rates": rates, **selection}
    if count_energy:
        scores["energy"] = _energy_report(model, config, noisy[:ENERGY_TEST_IMAGES])
    return scores


def _energy_report(model, config: TrainConfig, noisy: torch.Tensor) -> dict:
    # Counted in the arithmetic the model is scored in (results up to 2026-12-04 counted fp32
    # spikes of bf16 models).
    counts = operation_counts(model, noisy, config)
    report = energy_report(counts, DEFAULT_PRESET)
    report["images"] = int(noisy.shape[0])
    return report


def _score_classifier(run_dir: Path, data_dir, device: torch.device) -> dict:
    model, config = load_classifier(run_dir)
    images, labels = load_classification_test_set(config, data_dir)
    return {"accuracy": classification_accuracy(model.to(device), images, labels, config.steps),
            "test_images": int(images.shape[0])}


def read_log(log_path: Path) -> list[dict]:
    """The records of a run's ``log.jsonl`` (or of a copy of it), in order."""
    return [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]


def training_seconds(run_dir: Path, key: str = "epoch_seconds") -> float | None:
    """Training time of the run's epochs, from ``log.jsonl`` (the last record of each epoch).

    ``key="epoch_cpu_seconds"`` sums the process's CPU time instead (``None`` for runs
    trained before it was logged).
    """
    log_path = Path(run_dir) / "log.jsonl"
    if not log_path.is_file():
        return None
    per_epoch = {}
    for record in read_log(log_path):
        if record.get("kind") == "eval" and key in record:
            per_epoch[record["epoch"]] = record[key]
    done = finished_epoch(run_dir)
    counted = [seconds for epoch, seconds in per_epoch.items() if epoch <= done]
    if key != "epoch_seconds" and len(counted) < done:
        return None
    return round(sum(counted), 2)


# ============================================================================ records

def write_json(path: Path, payload) -> None:
    """Atomic, in the order the record was built (cell, what it is, scores, provenance)."""
    ckpt.atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())


def read_result(path: Path) -> dict | None:
    return ckpt.read_json(path) if path.is_file() else None


def number_text(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def percent_text(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def duration_text(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _metric_text(record: dict) -> str:
    if record.get("accuracy") is not None:
        return f"accuracy {100 * record['accuracy']:.2f}%"
    if record.get("psnr") is not None:
        return f"PSNR {record['psnr']:.2f} dB (noisy {record['noisy_psnr']:.2f} dB)"
    return NOT_RUN
