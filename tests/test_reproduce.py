"""Running the paper's experiments: vtsnn.reproduce (train, score, status) and ``vtsnn reproduce``
(vtsnn.cli_reproduce).

The end-to-end runs train tiny U-Nets (channels 4, 8) for one epoch on the fake
64-image MNIST of test_train.py.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from vtsnn import checkpoint, cli_reproduce, reproduce, run_lock
from vtsnn.experiments import cells, experiment_names
from vtsnn.reproduce import run_experiment

TINY = {"channels": (4, 8), "train_limit": 32, "test_limit": 16, "batch_size": 16}
TINY_OPTIONS = ["--epochs", "1", "--override", "channels=4,8", "--override", "train_limit=32",
                "--override", "test_limit=16", "--override", "batch_size=16", "--quiet"]


def by_id(name: str) -> dict:
    return {cell.cell_id: cell for cell in cells(name)}


def run_reproduce(capsys, tmp_path, data_dir, *argv):
    code = cli_reproduce.main([*map(str, argv), "--runs-dir", str(tmp_path / "runs"),
                               "--out", str(tmp_path / "results"), "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reproduce_writes_results_and_skips_finished_runs(tiny_mnist, tmp_path, capsys):
    argv = ["table2", "--subset", "id=uwe-uwd-itbp-detached", *TINY_OPTIONS]
    code, out, err = run_reproduce(capsys, tmp_path, tiny_mnist, *argv)
    assert code == 0, err
    assert "training in" in out

    folder = tmp_path / "results" / "table2"
    record = json.loads((folder / "uwe-uwd-itbp-detached.json").read_text())
    assert record["paper_psnr"] == 23.57 and record["epochs"] == 1 and record["seed"] == 0
    assert record["noisy_psnr"] < 25 and record["psnr"] > 0 and 0 <= record["output_rate"] <= 1
    assert 0 < record["psnr_sem"] < record["psnr"]
    assert record["command"].startswith("vtsnn reproduce table2 --subset id=uwe-uwd-itbp-detached")
    assert record["wall_seconds"] >= 0 and record["config"]["channels"] == [4, 8]
    assert record["cpu_seconds"] > 0          # process CPU time, summed from log.jsonl like wall_seconds
    assert list(record["firing_rates"])[-1] == "output_neuron"
    assert record["firing_rates"]["output_neuron"] == record["output_rate"]
    assert all(0 <= rate <= 1 for rate in record["firing_rates"].values())

    summary = json.loads((folder / "summary.json").read_text())
    assert len(summary) == 13
    assert [e["cpu_seconds"] for e in summary if e["status"] == "done"] == [record["cpu_seconds"]]
    assert "Process CPU time (every thread; a paused run adds none), over the 1 cell that" in \
        (folder / "README.md").read_text()
    required = {"dataset", "noise", "neuron", "encoder", "decoder", "training", "psnr", "noisy_psnr",
                "paper_psnr", "epochs", "seed"}
    for entry in summary:
        assert required <= set(entry)
    done = [e for e in summary if e["status"] == "done"]
    assert [e["cell"] for e in done] == ["uwe-uwd-itbp-detached"] and done[0]["psnr"] == record["psnr"]

    table = (folder / "README.md").read_text()
    assert "| UWE-UWD-ITBP | detached | " in table and "23.57" in table and f"{record['psnr']:.2f}" in table
    assert table.count("not run") == 12 and record["command"] in table
    assert "## Per-layer firing rates" in table and (folder / "firing_rates.png").stat().st_size > 0
    curve = [json.loads(line) for line in (folder / "curves" / "uwe-uwd-itbp-detached.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in curve if r["kind"] == "eval"] == [1]
    assert (folder / "curves" / "uwe-uwd-itbp-detached.png").stat().st_size > 0
    assert "## Learning curves" in table and "curves/uwe-uwd-itbp-detached.png" in table

    checkpoint = tmp_path / "runs" / "table2" / "uwe-uwd-itbp-detached" / "latest.json"
    trained_at = checkpoint.stat().st_mtime_ns
    result_at = (folder / "uwe-uwd-itbp-detached.json").stat().st_mtime_ns
    code, out, err = run_reproduce(capsys, tmp_path, tiny_mnist, *argv)
    assert code == 0, err
    assert "not trained again" in out and "training in" not in out
    assert checkpoint.stat().st_mtime_ns == trained_at
    assert (folder / "uwe-uwd-itbp-detached.json").stat().st_mtime_ns == result_at

    code, out, err = run_reproduce(capsys, tmp_path, tiny_mnist, "table2", "--list", *TINY_OPTIONS)
    assert code == 0 and "table2/uwe-uwd-itbp-detached" in out and "trained (1 epoch)" in out
    assert "table2/ttfs-mpd-stbp" in out and "not started" in out

    # The record alone (its tiny configuration, 1 epoch) names the finished run again.
    code, out, err = run_reproduce(capsys, tmp_path, tiny_mnist, "table2", "--subset", "id=uwe-uwd-itbp-detached",
                                   "--as-recorded", "--quiet")
    assert code == 0, err
    assert "not trained again" in out and "already scores epoch 1, kept" in out


def test_fig5_fig7_and_energy_reuse_the_table1_run(tiny_mnist, tmp_path):
    common = dict(out_root=tmp_path / "results", runs_root=tmp_path / "runs", epochs=1, data_dir=tiny_mnist,
                  progress=False, overrides=TINY, log=lambda message: None)
    run_experiment("fig5", subset="noise=0.2", **common)
    assert (tmp_path / "runs" / "table1" / "mnist-if-0.2" / "latest.json").is_file()
    assert (tmp_path / "results" / "fig5" / "fig5.png").stat().st_size > 0
    [energy] = run_experiment("energy", **common)
    assert energy["energy"]["totals"]["mac"] > 0 and energy["energy"]["images"] == TINY["test_limit"]
    assert "## Per layer" in (tmp_path / "results" / "energy" / "README.md").read_text()
    [fig7] = run_experiment("fig7", subset="output_threshold=0.077", **common)
    assert fig7["run_dir"].endswith("table1/mnist-if-0.2") and fig7["mse"] > 0
    assert (tmp_path / "results" / "fig7" / "fig7.png").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["table1"]     # nothing else was trained


def test_user_errors_are_one_line(tmp_path, capsys):
    for argv, phrase in ((["table1", "--subset", "colour=red"], "unknown subset key"),
                         (["table1", "--shard", "3/2"], "I/N"),
                         (["table1", "--jobs", "2", "--shard", "0/2"], "not both"),
                         (["table1", "--override", "colour=1"], "unknown override"),
                         (["table1", "--as-recorded", "--epochs", "2"], "--as-recorded")):
        code, out, err = run_reproduce(capsys, tmp_path, tmp_path, *argv)
        assert code == 1 and "Traceback" not in err
        assert err.strip().startswith("vtsnn: error:") and phrase in err, err
    assert cli_reproduce.main(["table9"]) != 0
    capsys.readouterr()


def test_help_lists_every_experiment():
    # A new experiment that `vtsnn reproduce --help` does not name is one a user cannot find.
    missing = [name for name in experiment_names() if f"\n  {name} " not in cli_reproduce.DESCRIPTION]
    assert missing == []


def test_jobs_start_one_worker_per_shard(tmp_path, monkeypatch, capsys):
    started = []

    class FakeWorker:
        def __init__(self, command, env):
            started.append((command, env["OMP_NUM_THREADS"]))

        def wait(self):
            return 0

    monkeypatch.setattr(cli_reproduce.subprocess, "Popen", FakeWorker)
    code, out, err = run_reproduce(capsys, tmp_path, tmp_path, "fig7", "--jobs", "3", *TINY_OPTIONS)
    assert code == 0, err
    shards = [command[command.index("--shard") + 1] for command, _ in started]
    assert shards == ["0/3", "1/3", "2/3"]
    command = started[0][0]
    assert command[command.index("--record-command") + 1].startswith("vtsnn reproduce fig7 --jobs 3")
    assert "--no-reports" in command and command[command.index("--override") + 1] == "channels=4,8"
    assert (tmp_path / "results" / "fig7" / "summary.json").is_file()    # the parent wrote the reports
    assert "--as-recorded" not in command
    started.clear()
    code, out, err = run_reproduce(capsys, tmp_path, tmp_path, "fig7", "--jobs", "2", "--as-recorded", "--quiet")
    assert code == 0, err
    assert all("--as-recorded" in command for command, _ in started) and len(started) == 2


def test_sigterm_to_the_parent_of_jobs_stops_its_workers_and_waits_for_them(tmp_path, monkeypatch, capsys):
    workers = []

    class FakeWorker:
        def __init__(self, command, env):
            self.terminated, self.waited = False, 0
            workers.append(self)

        def poll(self):
            return 0 if self.terminated else None

        def terminate(self):
            self.terminated = True

        def wait(self):
            self.waited += 1
            if self is workers[0] and self.waited == 1:
                os.kill(os.getpid(), signal.SIGTERM)     # `kill PARENT` while it waits
                time.sleep(5)
            return 130 if self.terminated else 0

    monkeypatch.setattr(cli_reproduce.subprocess, "Popen", FakeWorker)
    code, out, err = run_reproduce(capsys, tmp_path, tmp_path, "fig7", "--jobs", "2", *TINY_OPTIONS)
    assert code == 130 and "interrupted" in err
    assert [(worker.terminated, worker.waited) for worker in workers] == [(True, 2), (True, 1)]


def test_add_command_fits_a_vtsnn_parser(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="vtsnn")
    cli_reproduce.add_command(parser.add_subparsers(dest="command", required=True))
    argv = ["reproduce", "table1", "--list", "--subset", "dataset=mnist,neuron=if", "--runs-dir", str(tmp_path)]
    args = parser.parse_args(argv)
    args.argv = argv
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 cells") and "table1/mnist-if-0.2" in out and "paper 23.57 dB" in out


def test_the_list_names_each_paired_cells_pair(tmp_path, capsys):
    argv = ["reproduce", "full-precision", "--list", "--subset", "id=mnist-lif-0.2-fp32", "--runs-dir",
            str(tmp_path / "runs"), "--out", str(tmp_path / "results")]
    assert cli_reproduce.main(argv[1:]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("full-precision/mnist-lif-0.2-fp32") and line.endswith("(paired with table1/mnist-lif-0.2)")


def test_run_status_names_the_epoch_its_result_scored(tmp_path):
    cell = by_id("table1")["cifar10-if-0.2"]
    record = {"cell": cell.cell_id, "status": "done", "psnr": 18.13, "noisy_psnr": 14.72, "epochs": 5}
    reproduce.write_json(tmp_path / "results" / "table1" / "cifar10-if-0.2.json", record)
    status = reproduce.run_status(cell, tmp_path / "runs", tmp_path / "results")
    assert status == "not started; result: PSNR 18.13 dB (noisy 14.72 dB) at epoch 5"
    reproduce.write_json(tmp_path / "results" / "table1" / "cifar10-if-0.2.json", {**record, "scored_epoch": 4})
    status = reproduce.run_status(cell, tmp_path / "runs", tmp_path / "results")
    assert status.endswith("at epoch 4 of 5")


def test_run_status_and_run_cell_respect_a_run_another_process_trains(tmp_path):
    cell = by_id("table1")["cifar10-if-0.2"]
    run_dir = tmp_path / "runs" / cell.run_name
    with run_lock.run_lock(run_dir):
        status = reproduce.run_status(cell, tmp_path / "runs", tmp_path / "results")
        assert status.startswith(f"training or interrupted (lock {run_lock.lock_path(run_dir)} held: process")
        logged = []
        record = reproduce.run_cell(cell, tmp_path / "runs", tmp_path / "results", None, False, "cpu", "",
                                      log=logged.append, prefix="[1/1]")
    assert record is None and logged[0].startswith("[1/1]: skipped,") and "is being trained by" in logged[0]
    assert not run_dir.exists()


def test_cpu_seconds_need_every_epoch_logged(tmp_path):
    (tmp_path / "latest.json").write_text(json.dumps({"epoch": 2}))
    lines = [{"kind": "eval", "epoch": 1, "epoch_seconds": 10.0},
             {"kind": "eval", "epoch": 2, "epoch_seconds": 12.0, "epoch_cpu_seconds": 20.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert reproduce.training_seconds(tmp_path) == 22.0
    assert reproduce.training_seconds(tmp_path, "epoch_cpu_seconds") is None     # epoch 1 predates the field
    lines[0]["epoch_cpu_seconds"] = 18.0
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert reproduce.training_seconds(tmp_path, "epoch_cpu_seconds") == 38.0


def test_a_run_trained_before_a_setting_existed_still_matches(tmp_path):
    cell = by_id("table1")["mnist-if-0.2"]
    stored = cell.config.to_dict()
    del stored["val_size"]                       # a run from before val_size was a setting
    (tmp_path / "epoch-0001").mkdir()
    (tmp_path / "epoch-0001" / "config.json").write_text(json.dumps(stored))
    (tmp_path / "latest.json").write_text(json.dumps({"checkpoint": "epoch-0001", "epoch": 1}))
    reproduce.check_run_matches(cell, tmp_path)
    stored["noise"] = 0.4
    (tmp_path / "epoch-0001" / "config.json").write_text(json.dumps(stored))
    with pytest.raises(checkpoint.CheckpointError, match="different configuration"):
        reproduce.check_run_matches(cell, tmp_path)


def test_a_long_loop_forecasts_the_training_left(tiny_mnist, tmp_path):
    lines = []
    common = dict(out_root=tmp_path / "results", runs_root=tmp_path / "runs", epochs=1, data_dir=tiny_mnist,
                  progress=False, overrides=TINY, log=lines.append)
    run_experiment("table1", subset="dataset=mnist,noise=0.2", **common)
    forecasts = [line for line in lines if "left to train" in line]
    # Two cells of one epoch each: after the first, one epoch to go, at the first's pace.
    assert len(forecasts) == 1 and forecasts[0].startswith("[1/2]") and " 1 epoch left to train" in forecasts[0]
    lines.clear()
    run_experiment("table1", subset="dataset=mnist,noise=0.2", **common)      # all trained: nothing to forecast
    assert not [line for line in lines if "left to train" in line]


def test_pace_counts_trained_epochs_only():
    pace = reproduce.Pace()
    pace.add(0, 500.0)                     # scored only
    pace.add(2, 120.0)
    pace.add(1, 60.0)
    assert pace.forecast(3) == "3 epochs left to train in this shard, about 3.0 min at 60 s per epoch so far"
    assert pace.forecast(0) == "no training left in this shard"


def test_a_result_without_firing_rates_is_scored_again(tiny_mnist, tmp_path):
    common = dict(out_root=tmp_path / "results", runs_root=tmp_path / "runs", epochs=1, data_dir=tiny_mnist,
                  progress=False, overrides=TINY, log=lambda message: None)
    run_experiment("table1", subset="dataset=mnist,neuron=if,noise=0.2", **common)
    path = tmp_path / "results" / "table1" / "mnist-if-0.2.json"
    old = json.loads(path.read_text())
    del old["firing_rates"]
    path.write_text(json.dumps(old))
    [record] = run_experiment("table1", subset="dataset=mnist,neuron=if,noise=0.2", **common)
    assert record["firing_rates"] and json.loads(path.read_text())["firing_rates"] == record["firing_rates"]
    assert record["psnr"] == old["psnr"]


def test_a_run_with_a_validation_set_is_scored_at_its_best_validation_epoch(tiny_mnist, tmp_path):
    from vtsnn.run_folder import best_record
    from vtsnn.train import evaluate, load_test_set, load_trained

    common = dict(out_root=tmp_path / "results", runs_root=tmp_path / "runs", epochs=3, data_dir=tiny_mnist,
                  progress=False, overrides={**TINY, "val_size": 16}, log=lambda message: None)
    [record] = run_experiment("table1", subset="dataset=mnist,neuron=if,noise=0.2", **common)
    run_dir = tmp_path / "runs" / "table1" / "mnist-if-0.2"
    best = best_record(run_dir)
    assert record["epochs"] == 3 and record["scored_epoch"] == best["epoch"]
    assert record["selected_by"] == "val_psnr" and record["val_psnr"] == best["val_psnr"]
    model, config = load_trained(run_dir / "best")
    assert record["psnr"] == pytest.approx(evaluate(model, *load_test_set(config, tiny_mnist), config)["psnr"], abs=1e-4)
    summary = json.loads((tmp_path / "results" / "table1" / "summary.json").read_text())
    assert [e["scored_epoch"] for e in summary if e["status"] == "done"] == [best["epoch"]]
