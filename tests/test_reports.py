"""The reports of ``vtsnn reproduce`` (vtsnn.reports): tables, seed statistics, figures, curves.

Each test writes result records by hand, so no training runs here; the end-to-end
runs in test_reproduce.py check that a real run leaves its reports.
"""

from __future__ import annotations

import json

import pytest
import torch

from vtsnn import experiments, reports, reproduce


def test_figures_draw_from_records(tmp_path):
    fig6 = [{"status": "done", "steps": t, "noise": eta, "accuracy": 0.9 - eta / 4 - 0.01 * t}
            for t in (2, 8) for eta in (0.0, 0.4, 0.8)] + [{"status": "not run", "steps": 4, "noise": 0.0,
                                                            "accuracy": None}]
    assert reports.draw_fig6(fig6, tmp_path / "fig6.png").stat().st_size > 0
    fig7 = [{"status": "done", "output_threshold": t, "psnr": 20 + t, "mse": 0.01 / (1 + t), "output_rate": t / 2}
            for t in (0.05, 0.077, 0.1)]
    same = reports.draw_fig7(fig7, tmp_path / "fig7.png").read_bytes()
    mixed = [dict(record, epochs=5 if record["output_threshold"] == 0.077 else 1) for record in fig7]
    assert reports.draw_fig7(mixed, tmp_path / "mixed.png").read_bytes() != same   # epochs are marked


def test_markdown_shows_the_papers_layout(tmp_path):
    reports.write_reports("table1", tmp_path, log=lambda message: None)
    text = (tmp_path / "table1" / "README.md").read_text()
    assert "| dataset | neuron | η = 0.2 | η = 0.4 | η = 0.6 | η = 0.8 |" in text
    assert "| MNIST | if | – / 23.57 | – / 23.15 | – / 23.09 | – / 22.56 |" in text
    assert text.count("not run") == 24 and "standard error" not in text     # no record has one


def test_the_table_gives_the_standard_error_where_a_record_has_it(tmp_path):
    for seed, sem in ((0, None), (1, 0.0612)):
        record = {"experiment": "seeds", "cell": f"mnist-if-0.2-seed{seed}", "status": "done", "psnr": 23.4,
                  "noisy_psnr": 16.75, "paper_psnr": 23.57, "epochs": 5, "seed": seed, "labels": {"seed": seed}}
        if sem is not None:
            record["psnr_sem"] = sem
        reproduce.write_json(tmp_path / "seeds" / f"mnist-if-0.2-seed{seed}.json", record)
    reports.write_reports("seeds", tmp_path, log=lambda message: None)
    text = (tmp_path / "seeds" / "README.md").read_text()
    assert "| 16.75 | 23.40 | 23.57 |" in text and "| 16.75 | 23.40 ± 0.06 | 23.57 |" in text
    assert "is its standard error over the test images" in text


def test_seed_statistics():
    assert reports.seed_statistics([23.0]) == (23.0, None)
    mean, spread = reports.seed_statistics([23.0, 23.5, 24.0])
    assert mean == pytest.approx(23.5) and spread == pytest.approx(0.5)


def test_seed_report_gives_mean_and_spread(tmp_path):
    for seed, psnr in zip((0, 1), (23.4, 23.8)):
        record = {"experiment": "seeds", "cell": f"mnist-if-0.2-seed{seed}", "status": "done", "psnr": psnr,
                  "noisy_psnr": 16.75, "paper_psnr": 23.57, "epochs": 5, "seed": seed, "labels": {"seed": seed}}
        reproduce.write_json(tmp_path / "seeds" / f"mnist-if-0.2-seed{seed}.json", record)
    reports.write_reports("seeds", tmp_path, log=lambda message: None)
    text = (tmp_path / "seeds" / "README.md").read_text()
    assert ("`mnist-if-0.2` over seeds 0, 1: mean 23.60 dB, sample standard deviation 0.28 dB, "
            "range 23.40 to 23.80 dB") in text
    assert text.count("not run") == 1


def test_report_links_only_the_learning_curves_it_has(tmp_path):
    for seed in (0, 1):
        record = {"experiment": "seeds", "cell": f"mnist-if-0.2-seed{seed}", "status": "done", "psnr": 23.0,
                  "noisy_psnr": 16.75, "paper_psnr": 23.57, "epochs": 5, "seed": seed, "labels": {"seed": seed},
                  "run_dir": str(tmp_path / "gone" / str(seed))}
        reproduce.write_json(tmp_path / "seeds" / f"mnist-if-0.2-seed{seed}.json", record)
    (tmp_path / "seeds" / "curves").mkdir()
    (tmp_path / "seeds" / "curves" / "mnist-if-0.2-seed1.png").write_bytes(b"drawn before")
    reports.write_reports("seeds", tmp_path, log=lambda message: None)
    text = (tmp_path / "seeds" / "README.md").read_text()
    assert "curves/mnist-if-0.2-seed1.png" in text and "curves/mnist-if-0.2-seed0.png" not in text


def test_a_stored_result_takes_the_labels_its_cell_has_now(tmp_path):
    # A result stored before long-training named each cell's loss keeps its cell's row complete.
    record = {"experiment": "long-training", "cell": "fashion_mnist-if-0.2-lr0.01-ema0.999", "status": "done",
              "psnr": 20.0, "noisy_psnr": 15.97, "paper_psnr": 21.67, "epochs": 15, "seed": 0,
              "labels": {"dataset": "fashion_mnist"}}
    reproduce.write_json(tmp_path / "long-training" / f"{record['cell']}.json", record)
    stored = reports.collect_records("long-training", tmp_path)[0]
    assert stored["labels"] == {"dataset": "fashion_mnist", "neuron": "if", "noise": 0.2, "loss": "bitplane",
                                "lr": 0.01, "ema_decay": 0.999}
    reports.write_reports("long-training", tmp_path, log=lambda message: None)
    text = (tmp_path / "long-training" / "README.md").read_text()
    assert "| F-MNIST | if | 0.2 | bitplane | 0.01 | 0.999 | 15.97 | 20.00 |" in text


def test_seed_groups_gather_each_configuration_across_seeds():
    def record(cell, seed, psnr, status="done"):
        return {"cell": cell, "seed": seed, "psnr": psnr, "status": status}
    groups = reports.seed_groups([record("a-seed2", 2, 20.0), record("a", 0, 21.0), record("b", 0, 19.0),
                                      record("a-seed1", 1, None, "not run"), record("b-seed10", 10, 18.0)])
    assert groups == {"a": {0: 21.0, 2: 20.0}, "b": {0: 19.0, 10: 18.0}}
    assert list(groups["a"]) == [0, 2]
    # The seed may sit inside the id, before a setting added to the seeded cell.
    groups = reports.seed_groups([record("c-jitter0.1", 0, 21.0), record("c-seed1-jitter0.1", 1, 20.0),
                                  record("c-jitter0.1-seed2", 2, 19.0), record("c-seed10x", 0, 18.0)])
    assert groups == {"c-jitter0.1": {0: 21.0, 1: 20.0, 2: 19.0}, "c-seed10x": {0: 18.0}}


def _table2_seed_record(row, reading, seed, psnr, paper):
    cell = f"{row.lower()}{'-' + reading if reading else ''}-seed{seed}"
    return {"experiment": "table2-seeds", "cell": cell, "status": "done", "psnr": psnr, "noisy_psnr": 16.75,
            "paper_psnr": paper, "epochs": 1, "seed": seed, "labels": {"row": row, "reading": reading, "seed": seed}}


def test_table2_seed_report_gives_row_statistics_ranks_and_order_agreement(tmp_path):
    scores = {("UWE-UWD-STBP", ""): (9.60, [21.0, 22.0, 20.0]),
              ("UWE-MPD-STBP", ""): (8.00, [22.0, 21.0, 23.0]),       # flips against UWE-UWD-STBP
              ("ANN", ""): (23.05, [26.0, 26.5, 27.0])}
    for (row, reading), (paper, psnrs) in scores.items():
        for seed, psnr in enumerate(psnrs):
            record = _table2_seed_record(row, reading, seed, psnr, paper)
            reproduce.write_json(tmp_path / "table2-seeds" / f"{record['cell']}.json", record)
    reports.write_reports("table2-seeds", tmp_path, log=lambda message: None)
    text = (tmp_path / "table2-seeds" / "README.md").read_text()
    assert "| UWE-UWD-STBP |  | 0, 1, 2 | 21.00 | 1.00 | 20.00 to 22.00 | 9.60 | 3 | 2 |" in text
    assert "| UWE-MPD-STBP |  | 0, 1, 2 | 22.00 | 1.00 | 21.00 to 23.00 | 8.00 | 2 | 3 |" in text
    assert "| ANN |  | 0, 1, 2 | 26.50 | 0.50 | 26.00 to 27.00 | 23.05 | 1 | 1 |" in text
    assert "same order: 2 of 3." in text


def test_summary_record_adds_the_cells_labels_after_its_fields():
    record = {"cell": "c", "dataset": "cifar10", "psnr": 18.5, "config": {"lr": 0.01},
              "labels": {"dataset": "not this one", "lr": 0.01}}
    assert reports.summary_record(record) == {"cell": "c", "dataset": "cifar10", "psnr": 18.5, "lr": 0.01}


def test_codec_roundtrip_is_exact_for_uwe_uwd_and_ttfs_decodes_better_with_the_early_mpd():
    levels = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)
    assert reports.codec_roundtrip_psnr(levels, "uwe", "uwd") == float("inf")
    early = reports.codec_roundtrip_psnr(levels, "ttfs", "mpd-early")
    assert early > reports.codec_roundtrip_psnr(levels, "ttfs", "mpd") + 3


def test_mpd_order_report_gives_each_rows_mean_over_seeds(tmp_path):
    for seed, psnr in enumerate([17.0, 18.0, 19.0]):
        cell = "ttfs-mpd-early-stbp" + (f"-seed{seed}" if seed else "")     # seed 0 keeps its id
        record = {**_table2_seed_record("TTFS-MPD-EARLY-STBP", "", seed, psnr, 9.76), "experiment": "mpd-order",
                  "cell": cell}
        reproduce.write_json(tmp_path / "mpd-order" / f"{cell}.json", record)
    reports.write_reports("mpd-order", tmp_path, data_dir=tmp_path / "nowhere", log=lambda message: None)
    text = (tmp_path / "mpd-order" / "README.md").read_text()
    assert "| TTFS-MPD-EARLY-STBP |  | 0, 1, 2 | 18.00 | 1.00 | 17.00 to 19.00 | 9.76 | 1 | 1 |" in text


def test_mpd_order_report_has_the_roundtrip_table(tiny_mnist, tmp_path):
    reports.write_reports("mpd-order", tmp_path, data_dir=tiny_mnist, log=lambda message: None)
    text = (tmp_path / "mpd-order" / "README.md").read_text()
    assert "## Round trip of each code pair (ITBP's target, decoded)" in text and "16 clean MNIST test images" in text
    assert "| encoder | uwd | mpd | mpd-early |" in text and "| uwe | inf |" in text
    assert text.count("not run") == len(experiments.cells("mpd-order"))
    reports.write_reports("mpd-order", tmp_path, data_dir=tmp_path / "nowhere", log=lambda message: None)
    assert "Not computed" in (tmp_path / "mpd-order" / "README.md").read_text()


def test_learning_curve_is_kept_when_the_run_folder_now_holds_another_configuration(tmp_path):
    run_dir = tmp_path / "runs" / "ann"
    (run_dir / "epoch-0001").mkdir(parents=True)
    (run_dir / "latest.json").write_text(json.dumps({"epoch": 1, "checkpoint": "epoch-0001"}))
    (run_dir / "epoch-0001" / "config.json").write_text(json.dumps({"epochs": 1}))
    (run_dir / "log.jsonl").write_text(json.dumps({"kind": "eval", "epoch": 1, "images": 10, "psnr": 20.0}) + "\n")
    record = {"cell": "ann", "status": "done", "psnr": 26.0, "epochs": 10, "run_dir": str(run_dir),
              "config": {"epochs": 10}}
    kept = tmp_path / "results" / "curves" / "ann.jsonl"
    kept.parent.mkdir(parents=True)
    kept.write_text("the 10-epoch curve\n")
    assert reports.save_learning_curves([record], tmp_path / "results") == []
    assert kept.read_text() == "the 10-epoch curve\n"
    record["config"] = {"epochs": 1}
    reports.save_learning_curves([record], tmp_path / "results")
    assert json.loads(kept.read_text())["psnr"] == 20.0


def test_ranks_share_ties():
    assert reports._ranks({"a": 23.57, "b": 23.57, "c": 20.7, "d": 24.0}) == {"a": 2, "b": 2, "c": 4, "d": 1}


def test_a_run_without_a_validation_set_is_scored_at_its_last_epoch(tmp_path):
    (tmp_path / "latest.json").write_text(json.dumps({"checkpoint": "epoch-0002", "epoch": 2}))
    checkpoint, selection = reproduce.scored_checkpoint(tmp_path)
    assert checkpoint == tmp_path and selection == {"scored_epoch": 2, "selected_by": "last epoch"}
    assert reports._epochs_cell({"epochs": 5, "scored_epoch": 3}) == "5 (best validation: 3)"
    assert reports._epochs_cell({"epochs": 5, "scored_epoch": 5}) == "5"


def test_per_epoch_section_reads_the_copied_logs_and_marks_the_scored_epoch(tmp_path):
    log = [{"kind": "train", "epoch": 1, "loss": 0.1},
           {"kind": "eval", "epoch": 1, "psnr": 21.5, "val_psnr": 21.4},
           {"kind": "eval", "epoch": 2, "psnr": 19.2, "val_psnr": 19.3}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    assert reports.epoch_scores(tmp_path / "a.jsonl") == [(1, 21.5, 21.4), (2, 19.2, 19.3)]
    assert reports.epoch_scores(tmp_path / "missing.jsonl") == []
    records = [{"cell": "a", "scored_epoch": 1}, {"cell": "b", "scored_epoch": None}]
    lines = reports._per_epoch_section(records, tmp_path)
    assert "| epoch 1 | epoch 2 |" in lines[4]
    assert lines[6] == "| a | **21.50 (21.40)** | 19.20 (19.30) |"
    assert len(lines) == 8                                   # b has no log: no row
    assert reports._per_epoch_section([{"cell": "b"}], tmp_path) == []
    # Weights picked at a check inside epoch 2 (checks_per_epoch): no column is bold, a line says where.
    lines = reports._per_epoch_section([{"cell": "a", "scored_epoch": 1.5, "val_psnr": 21.6}], tmp_path)
    assert lines[6] == "| a | 21.50 (21.40) | 19.20 (19.30) |"
    assert lines[8] == "- a: scored at epoch 1.5, a check inside the epoch (validation PSNR 21.60), between two columns above."


def test_the_checks_section_lists_every_validation_score_of_runs_checked_inside_epochs(tmp_path):
    log = [{"kind": "train", "epoch": 1, "loss": 0.1},
           {"kind": "check", "epoch": 0.5, "val_psnr": 20.1},
           {"kind": "eval", "epoch": 1, "psnr": 21.5, "val_psnr": 21.4},
           {"kind": "check", "epoch": 1.5, "val_psnr": 21.6},
           {"kind": "eval", "epoch": 2, "psnr": 19.2, "val_psnr": 19.3}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log if e["kind"] != "check"))
    assert reports.validation_checks(tmp_path / "a.jsonl") == [(0.5, 20.1), (1, 21.4), (1.5, 21.6), (2, 19.3)]
    assert reports.validation_checks(tmp_path / "b.jsonl") == []          # checked once an epoch: no section
    lines = reports._checks_section([{"cell": "a", "scored_epoch": 1.5}, {"cell": "b", "scored_epoch": 1}], tmp_path)
    assert lines[0] == "## Validation PSNR at every check"
    assert "a:" in lines and "b:" not in lines
    assert "0.5: 20.10 · 1: 21.40 · 1.5: **21.60** · 2: 19.30" in lines
    assert reports._checks_section([{"cell": "b", "scored_epoch": 1}], tmp_path) == []


def test_a_run_that_scored_its_raw_weights_too_shows_both_and_marks_the_kept_ones(tmp_path):
    log = [{"kind": "check", "epoch": 0.5, "val_psnr": 20.1, "raw_val_psnr": 20.4},
           {"kind": "eval", "epoch": 1, "psnr": 21.5, "val_psnr": 21.4, "raw_val_psnr": 21.7}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    assert reports.raw_validation_scores(tmp_path / "a.jsonl") == {0.5: 20.4, 1: 21.7}
    raw_kept = {"cell": "a", "scored_epoch": 1, "scored_weights": "raw", "val_psnr": 21.7}
    assert "0.5: 20.10 (20.40) · 1: 21.40 (**21.70**)" in reports._checks_section([raw_kept], tmp_path)
    average_kept = {"cell": "a", "scored_epoch": 1, "scored_weights": "average", "val_psnr": 21.4}
    assert "0.5: 20.10 (20.40) · 1: **21.40** (21.70)" in reports._checks_section([average_kept], tmp_path)
    # The per-epoch table holds the average's scores: a line says the raw weights were scored.
    lines = reports._per_epoch_section([raw_kept], tmp_path)
    assert ("- a: scored at its raw weights of epoch 1 (validation PSNR 21.70), which validated above their "
            "average; the per-epoch scores above are the average's.") in lines
    assert not any("raw weights" in line for line in reports._per_epoch_section([average_kept], tmp_path))
    # Bold marks the average's scored epoch only: the raw weights' scores are in no column.
    assert "| a | 21.50 (21.40) |" in lines
    assert "| a | **21.50 (21.40)** |" in reports._per_epoch_section([average_kept], tmp_path)
    # Nor does a pair scored at its raw weights get its average's epoch in bold.
    reproduce.write_json(tmp_path / "other" / "a.json", raw_kept)
    (tmp_path / "other" / "curves").mkdir()
    (tmp_path / "other" / "curves" / "a.jsonl").write_text((tmp_path / "a.jsonl").read_text())
    assert reports._paired_fields("other/a", tmp_path)["paired_scored_epoch"] is None
    reproduce.write_json(tmp_path / "other" / "a.json", average_kept)
    assert reports._paired_fields("other/a", tmp_path)["paired_scored_epoch"] == 1


def test_a_paired_cell_is_shown_beside_its_pair_epoch_by_epoch(tmp_path):
    def done(experiment, cell, psnr, scored_epoch, epoch_psnrs):
        record = {"experiment": experiment, "cell": cell, "status": "done", "psnr": psnr, "noisy_psnr": 16.75,
                  "paper_psnr": 22.99, "epochs": len(epoch_psnrs), "scored_epoch": scored_epoch, "seed": 0}
        reproduce.write_json(tmp_path / experiment / f"{cell}.json", record)
        log = [{"kind": "eval", "epoch": epoch, "psnr": value} for epoch, value in enumerate(epoch_psnrs, 1)]
        (tmp_path / experiment / "curves").mkdir(parents=True, exist_ok=True)
        (tmp_path / experiment / "curves" / f"{cell}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    done("table1", "mnist-lif-0.2", 20.98, 2, [20.41, 20.98, 20.84])
    done("full-precision", "mnist-lif-0.2-fp32", 21.61, 2, [20.81, 21.61, 20.94])
    reports.write_reports("full-precision", tmp_path, log=lambda message: None)
    text = (tmp_path / "full-precision" / "README.md").read_text()
    assert ("| mnist-lif-0.2-fp32 | table1/mnist-lif-0.2 | 21.61 | 20.98 | +0.63 | "
            "20.81 / 20.41 · **21.61** / **20.98** · 20.94 / 20.84 |") in text
    # A pair not run yet leaves its columns empty rather than failing the report.
    assert "| fashion_mnist-lif-0.2-fp32 | table1/fashion_mnist-lif-0.2 | – | – | – | – |" in text
    summary = json.loads((tmp_path / "full-precision" / "summary.json").read_text())
    by_cell = {record["cell"]: record for record in summary}
    assert by_cell["mnist-lif-0.2-fp32"]["paired_psnr"] == 20.98
    assert by_cell["cifar10-lif-0.6-fp32"]["paired_with"] == "table1/cifar10-lif-0.6"


def test_a_pair_computed_on_another_machine_is_flagged():
    def record(cell, machine, paired_machine):
        return {"cell": cell, "paired_with": f"x/{cell}", "compute": {"name": machine} if machine else None,
                "paired_machine": paired_machine}
    assert reports.machine_name({"compute": {"name": "AMD EPYC"}}) == "AMD EPYC"
    assert reports.machine_name({}) is None
    assert reports.machine_name({"compute": {"name": "x86_64"}}) is None     # the architecture, not the model
    lines = reports._other_arithmetic_lines([record("a", "AMD EPYC", "Intel Xeon"), record("b", "AMD EPYC", "AMD EPYC"),
                                          record("c", None, "Intel Xeon"), record("d", "AMD EPYC", None)])
    assert lines == ["- a ran on AMD EPYC, its paired run on Intel Xeon: their difference is not the setting's "
                     "alone: training on another CPU does not repeat a run step for step.", ""]
    assert reports._other_arithmetic_lines([record("b", "AMD EPYC", "AMD EPYC")]) == []


def test_a_pair_computed_with_another_thread_count_is_flagged():
    # On one CPU, a run with 1 thread and one with 2 sum in another order and part ways.
    def record(cell, threads, paired_threads, device="cpu"):
        return {"cell": cell, "paired_with": f"x/{cell}", "paired_machine": "AMD EPYC",
                "compute": {"name": "AMD EPYC", "device": device, "threads": threads},
                "paired_threads": paired_threads}
    assert reports.cpu_threads({"compute": {"name": "AMD EPYC", "device": "cpu", "threads": 2}}) == 2
    assert reports.cpu_threads({"compute": {"name": "H100", "device": "cuda", "threads": 16}}) is None
    assert reports.cpu_threads({}) is None
    lines = reports._other_arithmetic_lines([record("a", 1, 2), record("b", 2, 2), record("c", 1, None),
                                          record("d", 1, 2, device="cuda")])
    assert lines == ["- a ran with 1 thread, its paired run with 2 threads on the same CPU: their difference is "
                     "not the setting's alone: sums split among other threads round otherwise, so training does "
                     "not repeat a run step for step.", ""]
