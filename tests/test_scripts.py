"""The helper scripts under scripts/ that the README's numbers come from."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_losses_average_each_epochs_logged_losses_beside_its_test_psnr(tmp_path):
    records = [{"kind": "train", "epoch": 1, "loss": 0.4}, {"kind": "train", "epoch": 1, "loss": 0.2},
               {"kind": "eval", "epoch": 1, "psnr": 19.5},
               {"kind": "train", "epoch": 2, "loss": 0.1}]          # interrupted before epoch 2's eval
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    rows = load_script("epoch_losses").epoch_rows(log)
    assert rows == [(1, pytest.approx(0.3), 19.5), (2, pytest.approx(0.1), None)]


def test_gradient_norms_group_each_epochs_logged_norms_and_count_those_over_a_limit(tmp_path):
    records = [{"kind": "train", "epoch": 1, "loss": 0.4, "grad_norm": norm} for norm in (0.1, 0.2, 0.3, 0.9)]
    records += [{"kind": "eval", "epoch": 1, "psnr": 19.5}, {"kind": "train", "epoch": 2, "loss": 0.1, "grad_norm": 0.4}]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    script = load_script("gradient_norms")
    assert script.epoch_norms(log) == {1: [0.1, 0.2, 0.3, 0.9], 2: [0.4]}
    mean, p10, p50, p90, p99, over = script.summary_row([0.1, 0.2, 0.3, 0.9], limit=0.25)
    assert (mean, p50, over) == (pytest.approx(0.375), pytest.approx(0.25), 50.0) and p10 < p50 < p90 < p99 <= 0.9
    assert len(script.summary_row([0.1, 0.2], limit=None)) == 1 + len(script.PERCENTILES)


def test_gradient_norms_refuses_a_log_without_them(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"kind": "train", "epoch": 1, "loss": 0.4}) + "\n")
    with pytest.raises(SystemExit, match="no gradient norms logged"):
        load_script("gradient_norms").epoch_norms(log)


def test_raw_at_checks_compares_both_kinds_of_weights_at_every_check(tmp_path, capsys):
    records = [{"kind": "check", "epoch": 0.5, "val_psnr": 20.0, "raw_val_psnr": 20.5},
               {"kind": "train", "epoch": 1, "loss": 0.1},
               {"kind": "eval", "epoch": 1, "psnr": 21.0, "val_psnr": 21.2, "raw_val_psnr": 20.9},
               {"kind": "check", "epoch": 1.5, "val_psnr": 20.8, "raw_val_psnr": 21.1}]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    script = load_script("raw_at_checks")
    rows = script.check_scores(log)
    assert rows == [(0.5, 20.0, 20.5), (1, 21.2, 20.9), (1.5, 20.8, 21.1)]
    result = script.summary(rows)
    assert (result["checks"], result["raw_wins"]) == (3, 2)
    assert result["mean_difference"] == pytest.approx(0.5 / 3)
    assert (result["min_difference"], result["max_difference"]) == (pytest.approx(-0.3), pytest.approx(0.5))
    assert (result["best_average"], result["best_raw"], result["kept"]) == ((1, 21.2), (1.5, 21.1), "average")
    # A tie between the two at one check keeps the raw weights, scored first; across checks, the earlier.
    assert script.summary([(1, 21.0, 21.0)])["kept"] == "raw"
    assert script.summary([(1, 21.0, 20.0), (2, 20.0, 21.0)])["kept"] == "average"
    script.main([str(log)])
    out = capsys.readouterr().out
    assert "raw weights higher at 2 of 3 checks" in out and "kept: average" in out


def test_raw_at_checks_refuses_a_log_without_raw_scores(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"kind": "eval", "epoch": 1, "val_psnr": 21.0}) + "\n")
    with pytest.raises(SystemExit, match="not trained with --score-raw"):
        load_script("raw_at_checks").check_scores(log)


def test_hidden_mean_leaves_out_the_output_neuron():
    script = load_script("hidden_firing_rates")
    assert script.hidden_mean({"enc0.1": 0.1, "enc0.3": 0.3, script.OUTPUT_LAYER: 0.9}) == pytest.approx(0.2)


def test_hidden_firing_rates_lists_the_spiking_cells_and_skips_ann_ones(tmp_path, capsys):
    script = load_script("hidden_firing_rates")
    (tmp_path / "exp").mkdir()
    records = {"ann": {"cell": "ann", "psnr": 23.0, "firing_rates": {}},
               "snn": {"cell": "snn", "psnr": 20.0, "firing_rates": {"enc0.1": 0.1, "enc0.3": 0.3,
                                                                      script.OUTPUT_LAYER: 0.9}}}
    for name, record in records.items():
        (tmp_path / "exp" / f"{name}.json").write_text(json.dumps(record))
    (tmp_path / "exp" / "summary.json").write_text(json.dumps(list(records.values())))
    script.main(["exp", "--results", str(tmp_path)])
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split() == ["snn", "20.00", "2", "20.0%"]


def test_causal_ceiling_scores_bit_planes_and_trains_every_plane_network(tiny_mnist, tmp_path, capsys):
    import torch
    from vtsnn.coding import uwe_encode
    script = load_script("causal_ceiling")
    clean = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    planes = uwe_encode(clean)
    assert script.bit_error_rates(planes, clean) == [0.0] * 8
    flipped = planes.clone()
    flipped[0] = 1 - flipped[0]                 # every most significant bit wrong: off by 128
    assert script.bit_error_rates(flipped, clean) == [1.0] + [0.0] * 7
    assert script.decoded_psnr(flipped, clean) == pytest.approx(20 * math.log10(255 / 128))
    assert script.plane_inputs(clean, range(3)).shape == (4, 3, 8, 8)

    out, work = tmp_path / "ceiling.json", tmp_path / "planes"
    settings = ["--data-dir", str(tiny_mnist), "--epochs", "1", "--train-limit", "50", "--test-limit", "8",
                "--out", str(out), "--work-dir", str(work)]
    script.main(settings)
    result = json.loads(out.read_text())
    assert set(result["rows"]) == {"causal", "all planes"}
    for row in result["rows"].values():
        assert len(row["bit_error_rates"]) == 8 and all(0 <= r <= 1 for r in row["bit_error_rates"])
        assert math.isfinite(row["psnr"])
    assert result["planes_loaded"] == 0
    assert "all planes, plane 7: trained" in capsys.readouterr().out

    # Resumed after losing one plane's prediction: that plane alone is trained again, to the same bits.
    (work / "causal-plane3.safetensors").unlink()
    script.main(settings)
    again = json.loads(out.read_text())
    assert again["rows"] == result["rows"] and again["planes_loaded"] == 15
    printed = capsys.readouterr().out
    assert "causal, plane 3: trained" in printed and "causal, plane 4: loaded from" in printed
    assert script.default_work_dir(script.argparse.Namespace(
        dataset="mnist", noise=0.2, epochs=5, seed=0, train_limit=None, test_limit=100)) == \
        Path("runs/causal-ceiling/mnist-0.2-epochs5-seed0-test100")


def test_causal_ceiling_reads_a_spiking_models_output_planes():
    import torch
    script = load_script("causal_ceiling")
    noisy = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    bits = script.snn_output_bits("mnist-if-0.2", noisy)
    assert bits.shape == (8, 3, 1, 28, 28)
    assert set(bits.unique().tolist()) <= {0.0, 1.0}


def test_error_by_plane_groups_pixels_by_their_first_wrong_bit():
    import torch
    from vtsnn.coding import uwe_encode
    script = load_script("error_by_plane")
    clean = torch.tensor([100, 200, 7, 50], dtype=torch.uint8)
    bits = uwe_encode(clean)
    bits[0, 0] = 1                                  # 100 -> 228: MSB wrong
    bits[0, 1] = 0                                  # 200 -> 72: MSB wrong
    bits[7, 2] = 0                                  # 7 -> 6: LSB wrong
    assert script.first_wrong_plane(bits, clean).tolist() == [0, 0, 7, 8]
    # With the wrong MSB kept, the closest the later planes can get: 128 for 100, 127 for 200.
    assert script.best_completion(bits, clean, 0)[:2].tolist() == [128, 127]
    result = script.error_by_plane(bits, clean)
    msb, lsb, right = result["rows"][0], result["rows"][7], result["rows"][8]
    assert msb["pixel_share"] == 0.5 and right["pixel_share"] == 0.25 and right["first_wrong_plane"] is None
    assert msb["mean_squared_error"] == 128 ** 2 and lsb["mean_squared_error"] == 1
    assert msb["best_completion_mean_squared_error"] == (28 ** 2 + 73 ** 2) / 2
    assert sum(row["error_share"] for row in result["rows"]) == pytest.approx(1)
    assert result["mse"] == pytest.approx((2 * 128 ** 2 + 1) / 4)
    assert result["best_completion_mse"] == pytest.approx((28 ** 2 + 73 ** 2 + 1) / 4)


def test_error_by_plane_reads_a_trained_model(tiny_mnist, tmp_path, capsys):
    script = load_script("error_by_plane")
    out = tmp_path / "breakdown.json"
    script.main(["mnist-if-0.2", "--data-dir", str(tiny_mnist), "--test-limit", "8", "--out", str(out)])
    [result] = json.loads(out.read_text())["models"].values()
    assert result["test_images"] == 8 and len(result["rows"]) == 9
    assert sum(row["pixel_share"] for row in result["rows"]) == pytest.approx(1)
    assert result["best_completion_mse"] <= result["mse"]
    assert "first wrong plane" in capsys.readouterr().out
    from vtsnn.checkpoint import save_weights
    from vtsnn.config import TrainConfig
    from vtsnn.train import build_model
    ann = TrainConfig(training="ann", channels=(4, 8))
    save_weights(tmp_path / "ann", build_model(ann), ann.to_dict())
    with pytest.raises(SystemExit, match="needs a spiking model"):
        script.main(["mnist-if-0.2", str(tmp_path / "ann"), "--data-dir", str(tiny_mnist), "--test-limit", "8"])
    assert capsys.readouterr().out == ""                    # the ANN refused before the spiking model ran
    with pytest.raises(SystemExit, match="no-such-run not found"):
        script.main(["mnist-if-0.2", str(tmp_path / "no-such-run"), "--data-dir", str(tiny_mnist)])
    assert capsys.readouterr().out == ""                    # refused before the first model ran


def test_imitation_scores_a_student_against_the_clean_images_and_its_teacher(tiny_mnist, tmp_path, capsys):
    from vtsnn.checkpoint import save_weights
    from vtsnn.config import TrainConfig
    from vtsnn.pretrained import resolve_model
    from vtsnn.train import build_model, evaluate, load_test_set, load_trained
    script = load_script("imitation")
    ann = TrainConfig(training="ann", channels=(4, 8))
    save_weights(tmp_path / "ann", build_model(ann), ann.to_dict())
    script.main(["mnist-if-0.2", "--teacher", str(tmp_path / "ann"), "--data-dir", str(tiny_mnist), "--test-limit", "8"])
    lines = capsys.readouterr().out.splitlines()
    scores = {line[:40].strip(): float(line[40:].split()[0]) for line in lines if line.endswith(" dB")}
    assert list(scores) == ["student against the clean images", "teacher against the clean images",
                            "student against the teacher's output"]
    model, config = load_trained(resolve_model("mnist-if-0.2"))
    config.test_limit = 8
    clean, noisy = load_test_set(config, tiny_mnist)
    assert scores["student against the clean images"] == pytest.approx(evaluate(model, clean, noisy, config)["psnr"], abs=0.01)
    assert len(set(scores.values())) == 3
    with pytest.raises(SystemExit, match="trained without a teacher"):
        script.main(["mnist-if-0.2", "--data-dir", str(tiny_mnist)])


def test_raw_vs_average_scores_both_weight_sets_of_an_averaged_checkpoint(tiny_mnist, tmp_path, capsys):
    from vtsnn.config import TrainConfig
    from vtsnn.train import train
    script = load_script("raw_vs_average")
    settings = dict(channels=(4, 8), batch_size=16, epochs=2, init="spiking", val_size=16, log_every=1)
    last = train(TrainConfig(**settings, ema_decay=0.5), tmp_path / "avg", progress=False, data_dir=tiny_mnist)
    plain = train(TrainConfig(**settings), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    averaged, raw = script.score_rows(tmp_path / "avg" / "epoch-0002", tiny_mnist)
    assert (averaged["weights"], raw["weights"]) == ("averaged", "raw")
    assert averaged["val_psnr"] == pytest.approx(last["val_psnr"], abs=1e-4)
    assert averaged["psnr"] == pytest.approx(last["psnr"], abs=1e-4)
    # The raw weights are the ones an unaveraged run of the same seed ends with.
    assert (raw["val_psnr"], raw["psnr"]) == pytest.approx((plain["val_psnr"], plain["psnr"]), abs=1e-4)
    assert len(raw["plane_rates"]) == 8 and all(0 <= rate <= 1 for rate in raw["plane_rates"])
    [only] = script.score_rows(tmp_path / "avg" / "best", tiny_mnist)     # best keeps the average only
    assert only["weights"] == "averaged"
    script.main([str(tmp_path / "avg"), "--data-dir", str(tiny_mnist)])
    assert " raw " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no-such-run is not a checkpoint"):
        script.main([str(tmp_path / "no-such-run"), "--data-dir", str(tiny_mnist)])
    train(TrainConfig(**{**settings, "val_size": 0, "epochs": 1}), tmp_path / "noval", progress=False,
          data_dir=tiny_mnist)
    with pytest.raises(SystemExit, match="held out no validation images"):
        script.main([str(tmp_path / "noval"), "--data-dir", str(tiny_mnist)])


def test_output_margin_counts_membranes_near_the_threshold_step_by_step():
    import torch
    script = load_script("output_margin")
    membranes = torch.tensor([[0.101, 0.099, 0.05, 0.2], [0.3, 0.104, 0.0, 0.0]]).view(2, 1, 1, 1, 4)
    first, second = script.margins_by_step(membranes, threshold=0.1, near=0.05)
    assert (first["step"], first["fired"], first["near"]) == (0, 0.5, 0.5)      # 0.101 and 0.099 lie within 5 %
    assert first["median_fired"] == pytest.approx(0.01, abs=1e-6)    # torch: the lower of the middle two
    assert first["median_silent"] == pytest.approx(-0.5, abs=1e-6)
    assert (second["fired"], second["near"]) == (0.5, 0.25)                      # 0.104: 4 % over
    assert second["median_silent"] == pytest.approx(-1.0, abs=1e-6)
    [silent] = script.margins_by_step(torch.zeros(1, 1, 1, 1, 2), threshold=0.1, near=0.05)
    assert silent["fired"] == 0 and silent["median_fired"] is None


def test_output_margin_reads_a_trained_model_and_refuses_an_ann(tiny_mnist, tmp_path, capsys):
    from vtsnn.checkpoint import save_weights
    from vtsnn.config import TrainConfig
    from vtsnn.train import build_model, load_test_set, load_trained, spiking_output_bits
    script = load_script("output_margin")
    out = tmp_path / "margins.json"
    script.main(["mnist-if-0.2", "--data-dir", str(tiny_mnist), "--test-limit", "8", "--out", str(out)])
    [result] = json.loads(out.read_text())["models"].values()
    assert result["test_images"] == 8 and result["threshold"] == 0.077 and len(result["steps"]) == 8
    # The membranes that fire are the model's own output spikes.
    from vtsnn.pretrained import resolve_model
    model, config = load_trained(resolve_model("mnist-if-0.2"))
    config.test_limit = 8
    _, noisy = load_test_set(config, tiny_mnist)
    bits = spiking_output_bits(model, config, noisy)
    assert [row["fired"] for row in result["steps"]] == pytest.approx(bits.mean(dim=(1, 2, 3, 4)).tolist())
    assert "median margin, firing" in capsys.readouterr().out
    ann = TrainConfig(training="ann", channels=(4, 8))
    save_weights(tmp_path / "ann", build_model(ann), ann.to_dict())
    with pytest.raises(SystemExit, match="is an ANN"):
        script.main(["mnist-if-0.2", str(tmp_path / "ann"), "--data-dir", str(tiny_mnist)])
    assert capsys.readouterr().out == ""                    # refused before the first model ran
    with pytest.raises(SystemExit, match="--near must be in"):
        script.main(["mnist-if-0.2", "--near", "0"])
