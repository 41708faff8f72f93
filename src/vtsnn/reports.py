"""The reports of ``vtsnn reproduce``: each experiment's table, summary and figures.

:func:`write_reports` rebuilds ``results/<experiment>/README.md`` (our number beside
the paper's and the noisy input's, means over seeds, per-epoch scores, paired cells
beside their pairs, firing rates, provenance), ``summary.json`` (one record per cell)
and the figures from the cell files present, so shards that finish at different times each leave a consistent, if
partial, table. The experiments themselves are :mod:`vtsnn.experiments`, the running :mod:`vtsnn.reproduce`.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Callable

import torch

from . import checkpoint as ckpt
from .coding import DECODERS
from .data import DataError, load_dataset
from .experiments import (DATASET_NAMES, EXPERIMENTS, FIG5_IMAGE_INDEX, FIG6_STEPS, NOT_RUN, PAPER_FIG6, Experiment,
                          base_cells, without_seed_part)
from .models import OUTPUT_LAYER
from .reproduce import (duration_text, number_text, percent_text, read_log, read_result, scored_checkpoint,
                        scored_epoch, stored_config, write_json)
from .config import TrainConfig
from .run_folder import latest_checkpoint
from .train import denoise_images, encode_input, load_trained, output_to_image, pick_device, prepare_model


def collect_records(name: str, out_root) -> list[dict]:
    """One record per cell of experiment ``name``: its result, or a "not run" placeholder."""
    folder = Path(out_root) / name
    records = []
    for cell in base_cells(name):
        result = read_result(folder / f"{cell.cell_id}.json")
        if result is None:
            paper_key = "paper_accuracy" if cell.is_classifier else "paper_psnr"
            metrics = ({"accuracy": None} if cell.is_classifier
                       else {"psnr": None, "noisy_psnr": None, "mse": None, "output_rate": None})
            result = {"experiment": name, "cell": cell.cell_id, "status": NOT_RUN, **cell.describe(), **metrics,
                      paper_key: cell.paper, "epochs": None, "seed": cell.config.seed, "labels": cell.labels}
        else:
            # The cell's labels as defined now: a result stored before a label column was
            # added to its experiment (e.g. long-training's loss) would show a blank there.
            result = {**result, "labels": {**result.get("labels", {}), **cell.labels}}
        if cell.paired_with:
            result = {**result, **_paired_fields(cell.paired_with, Path(out_root))}
        records.append(result)
    return records


def _paired_fields(paired_with: str, out_root: Path) -> dict:
    """The paired run's scores as they stand now (read at report time: either run may be redone)."""
    experiment, cell_id = paired_with.split("/")
    pair = read_result(out_root / experiment / f"{cell_id}.json") or {}
    scores = epoch_scores(out_root / experiment / CURVES / f"{cell_id}.jsonl")
    return {"paired_with": paired_with, "paired_psnr": pair.get("psnr"),
            "paired_scored_epoch": averaged_scored_epoch(pair), "paired_machine": machine_name(pair),
            "paired_threads": cpu_threads(pair),
            "paired_epoch_psnr": {epoch: test for epoch, test, _ in scores}}


SUMMARY_KEYS = ("experiment", "cell", "status", "dataset", "noise", "neuron", "encoder", "decoder", "training",
                "temporal_grad", "output_threshold", "steps", "psnr", "noisy_psnr", "paper_psnr", "mse",
                "output_rate", "accuracy", "paper_accuracy", "epochs", "scored_epoch", "selected_by",
                "scored_weights", "val_psnr", "seed", "test_images", "wall_seconds", "cpu_seconds", "paired_with",
                "paired_psnr", "command")


def summary_record(record: dict) -> dict:
    """The record's :data:`SUMMARY_KEYS`, then the cell's labels not among them (e.g. ``lr``)."""
    summary = {key: record[key] for key in SUMMARY_KEYS if key in record}
    labels = record.get("labels", {})
    return {**summary, **{key: value for key, value in labels.items() if key not in summary}}


def write_reports(name: str, out_root="results", data_dir=None, device=None, log=print) -> list[Path]:
    """(Re)write ``summary.json``, ``README.md`` and the figure of ``name`` from its cell files."""
    experiment = EXPERIMENTS[name]
    folder = Path(out_root) / name
    records = collect_records(name, out_root)
    written = []
    write_json(folder / "summary.json", [summary_record(r) for r in records])
    written.append(folder / "summary.json")
    if experiment.figure and any(r["status"] == "done" for r in records):
        draw = FIGURES[name]
        written.append(draw(records, folder / experiment.figure, data_dir=data_dir, device=device))
    written += save_learning_curves(records, folder)
    rates_figure = draw_firing_rates(records, folder / FIRING_RATES_FIGURE)
    if rates_figure is not None:
        written.append(rates_figure)
    report = markdown_report(experiment, records, data_dir, curves_folder=folder / CURVES)
    ckpt.atomic_write_bytes(folder / "README.md", report.encode())
    written.append(folder / "README.md")
    log(f"{name}: {sum(r['status'] == 'done' for r in records)}/{len(records)} cells done; "
        f"reports in {folder}")
    return written


def _label_text(record: dict, key: str) -> str:
    value = record.get("labels", {}).get(key, record.get(key, record.get("cell") if key == "id" else None))
    if key == "dataset":
        return DATASET_NAMES.get(value, str(value))
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _metric_columns(name: str) -> list[tuple[str, Callable[[dict], str]]]:
    if name == "fig6":
        return [("accuracy", lambda r: percent_text(r.get("accuracy"))),
                ("paper", lambda r: percent_text(r.get("paper_accuracy")))]
    columns = [("noisy PSNR", lambda r: number_text(r.get("noisy_psnr"))),
               ("PSNR (ours)", _psnr_text),
               ("PSNR (paper)", lambda r: number_text(r.get("paper_psnr")))]
    if name == "fig7":
        columns += [("MSE", lambda r: number_text(r.get("mse"), 5)),
                    ("output rate", lambda r: percent_text(r.get("output_rate")))]
    if name == "energy":
        columns += [("ANN/SNN energy", lambda r: number_text(_energy_ratio(r)))]
    return columns


def _psnr_text(record: dict) -> str:
    # Records scored since 2026-12-04 carry the standard error over the test images.
    sem = record.get("psnr_sem")
    return number_text(record.get("psnr")) + (f" ± {sem:.2f}" if sem is not None and math.isfinite(sem) else "")


def _energy_ratio(record: dict) -> float | None:
    return ((record.get("energy") or {}).get("totals") or {}).get("ann_snn_ratio_exact")


def markdown_report(experiment: Experiment, records: list[dict], data_dir=None, curves_folder=None) -> str:
    """The experiment's Markdown: the table (ours beside the paper's), settings and commands.

    ``curves_folder`` holds the copied training logs that the per-epoch table reads.
    """
    headers = [h for h, _ in experiment.label_columns] + [h for h, _ in _metric_columns(experiment.name)]
    headers += ["epochs", "seed", "train time", "status"]
    intro = ("Produced by `vtsnn reproduce` (commands below); each cell's JSON beside this file holds its "
             "configuration, compute and command.")
    if experiment.name != "fig6":
        intro += " \"noisy PSNR\" is the PSNR of the noisy input itself, so every gain is visible."
    if any("psnr_sem" in record for record in records):
        intro += (" \"± x\" after our PSNR is its standard error over the test images: how far another draw of "
                  "as many images could move it (cells scored since 2026-12-04).")
    lines = [f"# {experiment.title}", "", intro, "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for record in records:
        row = [_label_text(record, key) for _, key in experiment.label_columns]
        row += [show(record) for _, show in _metric_columns(experiment.name)]
        row += [_epochs_cell(record), str(record.get("seed", "–")),
                duration_text(record.get("wall_seconds")), record["status"]]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", experiment.note, ""]
    if experiment.layout:
        lines += _paper_layout(experiment, records)
    if experiment.figure:
        lines += [f"![{experiment.name}]({experiment.figure})", ""]
    lines += _seed_section(experiment, records) + _row_seed_section(experiment, records)
    lines += _roundtrip_section(experiment, data_dir) + _energy_section(records)
    if experiment.per_epoch and curves_folder is not None:
        lines += _per_epoch_section(records, Path(curves_folder)) + _checks_section(records, Path(curves_folder))
    lines += _paired_section(records, curves_folder)
    lines += _firing_rate_section(records) + _curves_section(records, curves_folder) + _provenance_section(records)
    return "\n".join(lines)


def _epochs_cell(record: dict) -> str:
    """Epochs trained, and the epoch scored when a validation set chose an earlier one."""
    epochs, scored = record.get("epochs"), record.get("scored_epoch")
    if not epochs:
        return "–"
    return f"{epochs} (best validation: {scored})" if scored and scored != epochs else str(epochs)


def _paper_layout(experiment: Experiment, records: list[dict]) -> list[str]:
    """The same numbers laid out as in the paper, each cell "ours / paper"."""
    row_keys, column_key = experiment.layout
    columns = list(dict.fromkeys(_label_text(r, column_key) for r in records))
    rows: dict[tuple, dict] = {}
    for record in records:
        row = tuple(_label_text(record, key) for key in row_keys)
        rows.setdefault(row, {})[_label_text(record, column_key)] = record
    show = percent_text if experiment.name == "fig6" else number_text
    metric, paper = ("accuracy", "paper_accuracy") if experiment.name == "fig6" else ("psnr", "paper_psnr")
    headers = [header for header, key in experiment.label_columns if key in row_keys]
    headers += [f"{_column_header(experiment, column_key)} = {c}" for c in columns]
    lines = ["## In the paper's layout (ours / paper)", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row, by_column in rows.items():
        texts = [f"{show(by_column[c].get(metric))} / {show(by_column[c].get(paper))}" if c in by_column else ""
                 for c in columns]
        lines.append("| " + " | ".join([*row, *texts]) + " |")
    return lines + [""]


def _column_header(experiment: Experiment, key: str) -> str:
    return next((header for header, label in experiment.label_columns if label == key), key)


def _seed_section(experiment: Experiment, records: list[dict]) -> list[str]:
    """Mean and spread over seeds, for each configuration scored with more than one seed.

    Table 2's seed experiments have a section per row of their own (:func:`_row_seed_section`).
    """
    if experiment.name in ROW_SEED_EXPERIMENTS:
        return []
    lines = []
    for base, by_seed in seed_groups(records).items():
        if len(by_seed) < 2:
            continue
        scores = list(by_seed.values())
        mean, spread = seed_statistics(scores)
        seeds = ", ".join(str(seed) for seed in by_seed)
        lines.append(f"- `{base}` over seeds {seeds}: mean {mean:.2f} dB, sample standard deviation "
                     f"{spread:.2f} dB, range {min(scores):.2f} to {max(scores):.2f} dB.")
    return ["## Mean and spread over seeds", "", *lines, ""] if lines else []


def seed_groups(records: list[dict]) -> dict[str, dict[int, float]]:
    """Scored cells grouped by their id without its ``-seedN`` part: ``{base id: {seed: psnr}}``, seeds in order.

    The part may end the id or sit inside it: a cell built from a seeded cell names the
    seed before its own setting ("...-seed1-jitter0.1"), and one seeded last after it
    ("...-jitter0.1-seed2"); both repeat "...-jitter0.1".
    """
    groups = _scores_by_seed(records, lambda record: without_seed_part(record["cell"]))
    return {base: dict(sorted(by_seed.items())) for base, by_seed in groups.items()}


def _scores_by_seed(records: list[dict], key: Callable[[dict], object]) -> dict:
    """``{key(record): {seed: psnr}}`` over the scored records, groups and seeds in record order."""
    groups: dict = {}
    for record in records:
        if record["status"] == "done" and record.get("psnr") is not None:
            groups.setdefault(key(record), {})[record.get("seed")] = record["psnr"]
    return groups


ROUNDTRIP_EXPERIMENTS = ("table2", "mpd-order")
# The decoders of Table 2 and mpd-order (uwd-lsb only pairs with uwe-lsb, which they do not use).
ROUNDTRIP_DECODERS = tuple(decoder for decoder in DECODERS if decoder != "uwd-lsb")


def codec_roundtrip_psnr(clean: torch.Tensor, encoder: str, decoder: str) -> float:
    """PSNR of 8-bit images sent through ``encoder`` then ``decoder``, with no network between.

    ITBP's loss pulls the output spikes towards the encoded clean image, so a model
    that fits its target exactly decodes to this round trip: the score ITBP training
    heads for (a partial fit can land on either side of it).
    """
    from .metrics import psnr
    config = TrainConfig(encoder=encoder, decoder=decoder)
    return psnr(output_to_image(encode_input(clean, config), config), clean.float() / 255.0).item()


def _roundtrip_section(experiment: Experiment, data_dir) -> list[str]:
    """Each encoder/decoder pair's round trip on the clean MNIST test images (ITBP's target, decoded)."""
    if experiment.name not in ROUNDTRIP_EXPERIMENTS:
        return []
    try:
        clean, _ = load_dataset("mnist", "test", data_dir)
    except DataError as error:        # reports can be rebuilt without the data
        return ["## Round trip of each code pair", "", f"Not computed: {error}", ""]
    lines = ["## Round trip of each code pair (ITBP's target, decoded)", "",
             f"PSNR (dB) of the {clean.shape[0]:,} clean MNIST test images encoded, then decoded, with no network "
             "between. ITBP's loss pulls the output spikes towards the encoded clean image, so a model that "
             "fits its target exactly scores this: the value ITBP training heads for. It is not a bound: a "
             "model that fits its target only in part can score on either side of it.", "",
             "| encoder | " + " | ".join(ROUNDTRIP_DECODERS) + " |", "|---|" + "---|" * len(ROUNDTRIP_DECODERS)]
    for encoder in ("uwe", "ttfs"):
        scores = [codec_roundtrip_psnr(clean, encoder, decoder) for decoder in ROUNDTRIP_DECODERS]
        lines.append(f"| {encoder} | " + " | ".join(number_text(score) for score in scores) + " |")
    return lines + ["", "`inf`: the code is exact (UWD inverts UWE).", ""]


ROW_SEED_EXPERIMENTS = ("table2-seeds", "mpd-order")


def _row_seed_section(experiment: Experiment, records: list[dict]) -> list[str]:
    """Per row of Table 2 (or of mpd-order): mean and spread over seeds, ranks, and which orders every seed agrees on."""
    if experiment.name not in ROW_SEED_EXPERIMENTS:
        return []
    rows = seed_rows(records)
    if not rows:
        return []
    ours = _ranks({row: stats["mean"] for row, stats in rows.items()})
    paper = _ranks({row: stats["paper"] for row, stats in rows.items() if stats["paper"] is not None})
    headers = ["method", "ITBP reading", "seeds", "mean", "std", "range", "paper", "rank (ours)", "rank (paper)"]
    lines = ["## Mean and spread per row", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for (method, reading), stats in rows.items():
        scores = stats["scores"]
        lines.append("| " + " | ".join([
            method, reading, ", ".join(str(seed) for seed in stats["seeds"]), number_text(stats["mean"]),
            number_text(stats["std"]), f"{min(scores):.2f} to {max(scores):.2f}", number_text(stats["paper"]),
            str(ours[(method, reading)]), str(paper.get((method, reading), "–"))]) + " |")
    agree, pairs = seed_order_agreement(rows)
    lines += ["", "Ranks are by mean PSNR, 1 = best; the paper's two ITBP readings share its single number, "
                  "so they share its rank.",
              f"Pairs of rows that every seed run on both puts in the same order: {agree} of {pairs}.", ""]
    return lines


def seed_rows(records: list[dict]) -> dict[tuple[str, str], dict]:
    """``(method, reading) -> {by_seed, seeds, scores, mean, std, paper}`` over the scored cells, in table order."""
    def row(record: dict) -> tuple[str, str]:
        labels = record.get("labels", {})
        return labels.get("row", ""), labels.get("reading", "")
    papers: dict[tuple[str, str], float | None] = {}
    for record in records:
        papers.setdefault(row(record), record.get("paper_psnr"))
    rows = {}
    for key, by_seed in _scores_by_seed(records, row).items():
        scores = list(by_seed.values())
        mean, std = seed_statistics(scores)
        rows[key] = {"by_seed": by_seed, "paper": papers[key], "seeds": list(by_seed), "scores": scores,
                     "mean": mean, "std": std}
    return rows


def seed_order_agreement(rows: dict[tuple[str, str], dict]) -> tuple[int, int]:
    """How many pairs of :func:`seed_rows` rows keep one order in every seed that scored both (of how many)."""
    names = list(rows)
    agree = pairs = 0
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            one, other = rows[first]["by_seed"], rows[second]["by_seed"]
            signs = {one[seed] > other[seed] for seed in one if seed in other}
            if signs:
                pairs += 1
                agree += len(signs) == 1
    return agree, pairs


def _ranks(values: dict) -> dict:
    """Competition ranks, 1 = highest; equal values share a rank."""
    ordered = sorted(values.values(), reverse=True)
    return {key: ordered.index(value) + 1 for key, value in values.items()}


def seed_statistics(scores: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single score)."""
    return statistics.mean(scores), (statistics.stdev(scores) if len(scores) > 1 else None)


def _energy_section(records: list[dict]) -> list[str]:
    reports = [r for r in records if r.get("energy")]
    if not reports:
        return []
    from .energy import format_table
    report = reports[0]["energy"]
    return ["## Per layer", "", f"Counted on {report['images']} noisy test images.", "", format_table(report), ""]


def _layer_label(name: str) -> str:
    """``encoders.1.3`` -> ``enc1.3``; ``output_neuron`` -> ``out``."""
    return "out" if name == OUTPUT_LAYER else name.replace("encoders.", "enc").replace("decoders.", "dec")


def _measured_firing_rates(records: list[dict]) -> tuple[list[dict], list[str]]:
    """The scored records that have per-layer firing rates, and every layer they name, in order."""
    measured = [r for r in records if r["status"] == "done" and r.get("firing_rates")]
    return measured, list(dict.fromkeys(name for r in measured for name in r["firing_rates"]))


def _firing_rate_section(records: list[dict]) -> list[str]:
    measured, layers = _measured_firing_rates(records)
    if not measured:
        return []
    headers = ["cell", *map(_layer_label, layers)]
    lines = ["## Per-layer firing rates", "",
             "Fraction of spikes per spiking layer (encoder, decoder, output; over time steps, pixels and "
             f"the scored test images), measured while scoring. Figure: [{FIRING_RATES_FIGURE}]"
             f"({FIRING_RATES_FIGURE}).", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for record in measured:
        rates = record["firing_rates"]
        lines.append("| " + " | ".join([record["cell"], *(percent_text(rates.get(name)) for name in layers)]) + " |")
    return lines + [""]


def _curves_section(records: list[dict], curves_folder: Path | None = None) -> list[str]:
    """Links to each scored run's learning curve: only those drawn in ``curves_folder`` when it is given
    (a run trained on another machine, or before curves were kept, has none)."""
    cells = [r["cell"] for r in records if _has_learning_curve(r)
             and (curves_folder is None or (Path(curves_folder) / f"{r['cell']}.png").is_file())]
    if not cells:
        return []
    links = ", ".join(f"[{cell}]({CURVES}/{cell}.png)" for cell in cells)
    return ["## Learning curves", "",
            f"Test PSNR and training loss against images seen, one figure per run, from the run's "
            f"`log.jsonl` (copied beside it in `{CURVES}/`): {links}.", ""]


def epoch_scores(log_path: Path) -> list[tuple[int, float, float | None]]:
    """(epoch, test PSNR, validation PSNR or None) after each epoch of a training log."""
    if not log_path.is_file():
        return []
    return [(e["epoch"], e["psnr"], e.get("val_psnr")) for e in read_log(log_path) if e.get("kind") == "eval"]


def _per_epoch_section(records: list[dict], curves_folder: Path) -> list[str]:
    scores = {r["cell"]: epoch_scores(curves_folder / f"{r['cell']}.jsonl") for r in records}
    scores = {cell: rows for cell, rows in scores.items() if rows}
    if not scores:
        return []
    epochs = sorted({epoch for rows in scores.values() for epoch, _, _ in rows})
    lines = ["## PSNR after each epoch", "",
             "Test PSNR (dB) after each epoch, the validation PSNR in brackets; bold marks the epoch "
             "the validation picked, the one scored above.", "",
             "| cell | " + " | ".join(f"epoch {epoch}" for epoch in epochs) + " |",
             "|---|" + "|".join("---" for _ in epochs) + "|"]
    scored = {r["cell"]: averaged_scored_epoch(r) for r in records}
    for cell, rows in scores.items():
        by_epoch = {epoch: (test, val) for epoch, test, val in rows}
        texts = []
        for epoch in epochs:
            if epoch not in by_epoch:
                texts.append("–")
                continue
            test, val = by_epoch[epoch]
            text = number_text(test) + (f" ({number_text(val)})" if val is not None else "")
            texts.append(f"**{text}**" if epoch == scored[cell] else text)
        lines.append(f"| {cell} | " + " | ".join(texts) + " |")
    return lines + [""] + _mid_epoch_lines(records)


def _mid_epoch_lines(records: list[dict]) -> list[str]:
    """A line per cell whose validation picked weights from inside an epoch (``checks_per_epoch``),
    which no column of the per-epoch table holds."""
    picked = [r for r in records if r.get("scored_epoch") is not None and r["scored_epoch"] != int(r["scored_epoch"])]
    lines = [f"- {r['cell']}: scored at epoch {r['scored_epoch']:g}, a check inside the epoch (validation PSNR "
             f"{number_text(r.get('val_psnr'))}), between two columns above." for r in picked]
    lines += _raw_weights_lines(records)
    return lines + ([""] if lines else [])


def averaged_scored_epoch(record: dict):
    """The epoch whose per-epoch scores (the average's) are the ones scored, bold in the
    tables; ``None`` where the run was scored at its raw weights, which no column holds."""
    return None if record.get("scored_weights") == "raw" else scored_epoch(record)


def _raw_weights_lines(records: list[dict]) -> list[str]:
    """A line per cell scored at its raw weights, which validated above their average
    (``score_raw``): the table's other numbers are the average's."""
    return [f"- {r['cell']}: scored at its raw weights of epoch {r['scored_epoch']:g} (validation PSNR "
            f"{number_text(r.get('val_psnr'))}), which validated above their average; the per-epoch scores "
            "above are the average's." for r in records if r.get("scored_weights") == "raw"]


def validation_checks(log_path: Path) -> list[tuple[float, float]]:
    """(epoch, validation PSNR) at every check of a run scored several times an epoch
    (``checks_per_epoch``): the mid-epoch checks and the ends of epochs, in order; empty
    for a run without mid-epoch checks."""
    log = read_log(log_path) if log_path.is_file() else []
    if not any(e.get("kind") == "check" for e in log):
        return []
    return [(e["epoch"], e["val_psnr"]) for e in log if e.get("kind") in ("check", "eval") and "val_psnr" in e]


def raw_validation_scores(log_path: Path) -> dict[float, float]:
    """The raw weights' validation PSNR by check (epochs done), in a run that scored them
    beside their average (``score_raw``); empty otherwise."""
    log = read_log(log_path) if log_path.is_file() else []
    return {e["epoch"]: e["raw_val_psnr"] for e in log if e.get("kind") in ("check", "eval") and "raw_val_psnr" in e}


def _checks_section(records: list[dict], curves_folder: Path) -> list[str]:
    checks = {r["cell"]: validation_checks(curves_folder / f"{r['cell']}.jsonl") for r in records}
    checks = {cell: rows for cell, rows in checks.items() if rows}
    if not checks:
        return []
    lines = ["## Validation PSNR at every check", "",
             "The validation PSNR (dB) of the averaged weights at each check, by epochs done (4.25: a quarter "
             "of the fifth epoch), and the raw weights' in brackets where a run scored both; bold marks the "
             "weights kept and scored.", ""]
    scored = {r["cell"]: (r.get("scored_epoch"), r.get("scored_weights", "average")) for r in records}
    for cell, rows in checks.items():
        raw = raw_validation_scores(curves_folder / f"{cell}.jsonl")

        def shown(value, epoch, weights):
            text = number_text(value)
            return f"**{text}**" if (epoch, weights) == scored[cell] else text
        lines += [f"{cell}:", "", " · ".join(
            f"{epoch:g}: {shown(val, epoch, 'average')}" + (f" ({shown(raw[epoch], epoch, 'raw')})" if epoch in raw else "")
            for epoch, val in rows), ""]
    return lines


def _paired_section(records: list[dict], curves_folder: Path | None) -> list[str]:
    """Each paired cell beside its pair: scored PSNR, the difference, and test PSNR after each epoch."""
    paired = [r for r in records if r.get("paired_with")]
    if not paired:
        return []
    lines = ["## Beside the paired runs", "",
             "Each cell beside the run it differs from in one setting (the pair's result as committed now): "
             "the scored PSNR of both and their difference, then the test PSNR after each epoch, "
             "this cell's / the pair's, bold where each was scored.", "",
             "| cell | paired run | PSNR | paired PSNR | difference | by epoch |", "|---|---|---|---|---|---|"]
    for record in paired:
        ours, theirs = record.get("psnr"), record.get("paired_psnr")
        difference = f"{ours - theirs:+.2f}" if ours is not None and theirs is not None else "–"
        mine = ({epoch: test for epoch, test, _ in epoch_scores(Path(curves_folder) / f"{record['cell']}.jsonl")}
                if curves_folder is not None else {})
        theirs_by_epoch = record["paired_epoch_psnr"]
        by_epoch = " · ".join(
            f"{_epoch_text(mine, epoch, averaged_scored_epoch(record))} / "
            f"{_epoch_text(theirs_by_epoch, epoch, record.get('paired_scored_epoch'))}"
            for epoch in sorted({*mine, *theirs_by_epoch}))
        lines.append(f"| {record['cell']} | {record['paired_with']} | {number_text(ours)} | "
                     f"{number_text(theirs)} | {difference} | {by_epoch or '–'} |")
    return lines + [""] + _other_arithmetic_lines(paired)


# What platform.machine() gives where a record's model name could not be read (records
# before vtsnn.machine read /proc/cpuinfo): the architecture only, not which processor.
ARCHITECTURE_NAMES = {"x86_64", "AMD64", "aarch64", "arm64"}


def machine_name(record: dict) -> str | None:
    """The CPU or GPU model a result was computed on (``compute``'s name), if it says."""
    compute = record.get("compute")
    name = compute.get("name") if isinstance(compute, dict) else None
    return None if name in ARCHITECTURE_NAMES else name


def cpu_threads(record: dict) -> int | None:
    """How many threads a result computed on the CPU used, if it says."""
    compute = record.get("compute")
    if not isinstance(compute, dict) or compute.get("device") != "cpu":
        return None
    return compute.get("threads")


def _other_arithmetic_lines(paired: list[dict]) -> list[str]:
    """A line per cell whose pair was computed in other arithmetic: on another machine, or
    on the same CPU with another number of threads. On one CPU with as many threads a cell
    repeats its pair's training step for step up to its setting; otherwise the roundings
    differ, and with them the whole course of training, as with another seed."""
    lines = [f"- {r['cell']} {reason}" for r in paired if (reason := _other_arithmetic(r))]
    return lines + ([""] if lines else [])


def _other_arithmetic(record: dict) -> str | None:
    """How a paired cell's arithmetic differed from its pair's, or None where it did not
    (or where a record does not say)."""
    mine, theirs = machine_name(record), record.get("paired_machine")
    if not (mine and theirs):
        return None
    if mine != theirs:
        return (f"ran on {mine}, its paired run on {theirs}: their difference is not the setting's alone: "
                "training on another CPU does not repeat a run step for step.")
    threads, paired_threads = cpu_threads(record), record.get("paired_threads")
    if threads and paired_threads and threads != paired_threads:
        return (f"ran with {_threads_text(threads)}, its paired run with {_threads_text(paired_threads)} on the "
                "same CPU: their difference is not the setting's alone: sums split among other threads round "
                "otherwise, so training does not repeat a run step for step.")
    return None


def _threads_text(threads: int) -> str:
    return f"{threads} thread{'' if threads == 1 else 's'}"


def _epoch_text(scores: dict[int, float], epoch: int, scored: int | None) -> str:
    """The test PSNR after ``epoch``, bold if it is the scored one."""
    if epoch not in scores:
        return "–"
    text = number_text(scores[epoch])
    return f"**{text}**" if epoch == scored else text


def _provenance_section(records: list[dict]) -> list[str]:
    done = [r for r in records if r["status"] == "done"]
    if not done:
        return ["No cell has been run yet."]
    lines = ["## How these numbers were made", ""]
    for command in dict.fromkeys(r.get("command", "") for r in done):
        names = ", ".join(r["cell"] for r in done if r.get("command", "") == command)
        lines.append(f"- `{command}`: {names}")
    computes = dict.fromkeys(f"{r['compute']['name']} ({r['compute']['device']}, torch {r['compute']['torch']})"
                             for r in done if r.get("compute"))
    total = sum(r.get("wall_seconds") or 0 for r in done)
    timed = [r["cpu_seconds"] for r in done if r.get("cpu_seconds") is not None]
    cpu = (f" Process CPU time (every thread; a paused run adds none), over the {len(timed)} cell"
           f"{'' if len(timed) == 1 else 's'} that logged it: {duration_text(sum(timed))}." if timed else "")
    lines += ["", f"Training time, summed over the cells shown: {duration_text(total)} "
                  f"(shared runs counted once per cell).{cpu} Scored on: {'; '.join(computes) or 'unknown'}.", ""]
    return lines


# ============================================================================ figures

def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(figure)
    return figure


def _save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


CURVES = "curves"
FIRING_RATES_FIGURE = "firing_rates.png"


def _has_learning_curve(record: dict) -> bool:
    return record["status"] == "done" and record.get("psnr") is not None and bool(record.get("run_dir"))


def _run_holds_scored_config(record: dict) -> bool:
    """Whether the record's run folder still holds the configuration it scored (epochs included)."""
    run_dir = Path(record["run_dir"])
    if latest_checkpoint(run_dir) is None:
        return False
    return "config" not in record or stored_config(run_dir) == record["config"]


def save_learning_curves(records: list[dict], folder: Path) -> list[Path]:
    """Copy each scored denoiser's ``log.jsonl`` to ``folder/curves/CELL.jsonl`` and plot it.

    Run folders stay out of the repository; these copies go in, so the curves behind a
    table travel with it. Only the scored epochs are copied (a run trained further
    since is cut there). A cell whose run folder is gone, or now holds another
    configuration than the one scored, keeps the copy it has.
    """
    from .figures import learning_curve

    written = []
    for record in filter(_has_learning_curve, records):
        log_path = Path(record["run_dir"]) / "log.jsonl"
        if not log_path.is_file() or not _run_holds_scored_config(record):
            continue
        entries = [entry for entry in read_log(log_path) if entry.get("epoch", 0) <= (record.get("epochs") or 0)]
        target = folder / CURVES / f"{record['cell']}.jsonl"
        ckpt.atomic_write_bytes(target, "".join(json.dumps(entry) + "\n" for entry in entries).encode())
        written += [target, learning_curve(entries, target.with_suffix(".png"))]
    return written


def draw_firing_rates(records: list[dict], path: Path) -> Path | None:
    """Per-layer firing rate of every scored spiking cell, one line per cell; ``None`` if none."""
    measured, layers = _measured_firing_rates(records)
    if not measured:
        return None
    figure = _new_figure(9.0, 4.0)
    axis = figure.subplots()
    for record in measured:
        rates = record["firing_rates"]
        axis.plot(range(len(layers)), [100 * rates[name] if name in rates else float("nan") for name in layers],
                  "o-", markersize=3, linewidth=1, label=record["cell"])
    axis.set_xticks(range(len(layers)), [_layer_label(name) for name in layers], rotation=45, fontsize=8)
    axis.set_ylabel("firing rate (%)")
    axis.set_xlabel("spiking layer (forward order)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6, ncol=2 if len(measured) > 12 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save_figure(figure, path)


def draw_fig5(records: list[dict], path: Path, data_dir=None, device=None) -> Path:
    """Clean, noisy and denoised versions of one MNIST test digit, one model per noise level."""
    from .data import fixed_test_noise, load_dataset
    from .figures import noise_level_panel

    done = [r for r in records if r["status"] == "done"]
    images, _ = load_dataset("mnist", "test", data_dir)
    clean = images[FIG5_IMAGE_INDEX:FIG5_IMAGE_INDEX + 1]
    noisy_by_eta, denoised_by_eta, psnr_by_eta = {}, {}, {}
    for record in done:
        model, config = load_trained(scored_checkpoint(record["run_dir"])[0])
        model = prepare_model(model, config, pick_device(device))
        noisy = fixed_test_noise(clean, config.noise, seed=config.test_seed)
        noisy_by_eta[config.noise] = noisy.float() / 255.0
        denoised_by_eta[config.noise] = denoise_images(model, noisy, config)
        psnr_by_eta[config.noise] = {"psnr": record["psnr"], "noisy_psnr": record["noisy_psnr"]}
    return noise_level_panel(clean.float() / 255.0, noisy_by_eta, denoised_by_eta, path, psnr_by_eta=psnr_by_eta)


def draw_fig6(records: list[dict], path: Path, data_dir=None, device=None) -> Path:
    """Accuracy against the noise level, one line per T, with the paper's stated points."""
    figure = _new_figure(5.5, 3.8)
    axis = figure.subplots()
    for steps in FIG6_STEPS:
        points = sorted((r["noise"], 100 * r["accuracy"]) for r in records
                        if r.get("steps") == steps and r.get("accuracy") is not None)
        if points:
            axis.plot(*zip(*points), "o-", label=f"T = {steps}")
    paper = [(noise, 100 * value, steps) for (steps, noise), value in PAPER_FIG6.items()]
    axis.plot([p[0] for p in paper], [p[1] for p in paper], "k*", markersize=11, label="paper (text)")
    for noise, value, steps in paper:
        axis.annotate(f"T={steps}", (noise, value), textcoords="offset points", xytext=(6, -10), fontsize=8)
    axis.set_xlabel("noise level η")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("VTLeNet on MNIST")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save_figure(figure, path)


def draw_fig7(records: list[dict], path: Path, data_dir=None, device=None) -> Path:
    """PSNR and MSE, and the output firing rate, against the output threshold."""
    done = sorted((r for r in records if r["status"] == "done"), key=lambda r: r["output_threshold"])
    thresholds = [r["output_threshold"] for r in done]
    figure = _new_figure(9.0, 3.6)
    quality_axis, rate_axis = figure.subplots(1, 2)
    quality_axis.plot(thresholds, [r["psnr"] for r in done], "o-", color="C0", label="PSNR")
    quality_axis.set_ylabel("test PSNR (dB)", color="C0")
    mse_axis = quality_axis.twinx()
    mse_axis.plot(thresholds, [r["mse"] for r in done], "s--", color="C1", label="MSE")
    mse_axis.set_ylabel("test MSE", color="C1")
    rate_axis.plot(thresholds, [100 * (r["output_rate"] or 0.0) for r in done], "o-", color="C2")
    rate_axis.set_ylabel("output firing rate (%)")
    for axis in (quality_axis, rate_axis):
        axis.set_xscale("log")          # the sweep spans decades around 0.077
        axis.set_xticks(thresholds, [f"{t:g}" for t in thresholds])
        axis.minorticks_off()
        axis.axvline(0.077, color="gray", linestyle=":")
        axis.set_xlabel("output threshold (dotted: the paper's 0.077)")
        axis.grid(alpha=0.3)
    if len({r.get("epochs") for r in done}) > 1:
        # Runs of different lengths are not comparable point to point: say which is which.
        for record in done:
            quality_axis.annotate(f"{record.get('epochs')} ep", (record["output_threshold"], record["psnr"]),
                                  textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
        quality_axis.set_title("denoising quality (ep: epochs trained)")
    else:
        quality_axis.set_title("denoising quality")
    rate_axis.set_title("output spikes")
    return _save_figure(figure, path)


FIGURES = {"fig5": draw_fig5, "fig6": draw_fig6, "fig7": draw_fig7}
