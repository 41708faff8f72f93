"""Tests for the ``vtsnn`` command (vtsnn.cli) and the pretrained-model registry.

The command runs in-process through ``cli.main(argv)``. Models are tiny U-VTSNNs
(channels 4, 8) saved in tmp folders; a fake pretrained folder replaces the
package's through ``pretrained.pretrained_root``. Evaluation without real data uses a
fake CIFAR-10 folder of a few random images. The train/evaluate/resume round trip
reads the real MNIST and runs only when VTSNN_DATA is set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vtsnn import checkpoint, cli, pretrained
from vtsnn.config import TrainConfig
from vtsnn.train import build_model

REAL_DATA = os.environ.get("VTSNN_DATA", "")
needs_real_data = pytest.mark.skipif(not REAL_DATA, reason="set VTSNN_DATA to run tests on the real datasets")

COMMANDS = {
    "train": ["--out", "--resume", "--data-dir", "--device", "--channels", "--temporal-grad", "--no-temporal-grad"],
    "evaluate": ["--model", "--noise", "--test-limit", "--json", "--figure", "--data-dir"],
    "denoise": ["--output", "--model", "--noise", "--seed", "--sample"],
    "encode": ["--output", "--bits"],
    "download": ["--data-dir", "--base-url"],
    "models": [],
    "energy": ["--model", "--test-limit", "--preset", "--json", "--data-dir"],
    "reproduce": ["--epochs", "--subset", "--shard", "--jobs", "--list", "--out"],
    "circuit": ["--model", "--kind", "--parameters", "--values", "--seeds", "--test-limit", "--out"],
}


# ------------------------------------------------------------------------- helpers

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code: int, err: str, *phrases: str) -> None:
    """A user error: non-zero exit, one 'vtsnn: error:' line, no traceback."""
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vtsnn: error: "), err
    for phrase in phrases:
        assert phrase in err, err


def save_tiny_model(folder: Path, **overrides) -> TrainConfig:
    config = TrainConfig(channels=(4, 8), **overrides)
    torch.manual_seed(0)
    checkpoint.save_weights(folder, build_model(config), config.to_dict())
    return config


def write_fake_cifar(data_dir: Path, count: int = 4, seed: int = 0) -> np.ndarray:
    """A cifar-10-batches-py folder with only a test batch of ``count`` random images."""
    images = np.random.default_rng(seed).integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)
    folder = data_dir / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batch = {b"data": images.reshape(count, -1), b"labels": list(range(count))}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    return images


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_tiny_model(folder)
    return folder


@pytest.fixture
def fake_pretrained(tmp_path, monkeypatch) -> Path:
    """A pretrained root with two models, the default and a cifar10 one."""
    root = tmp_path / "pretrained"
    save_tiny_model(root / pretrained.DEFAULT_MODEL)
    save_tiny_model(root / "cifar10-if-0.1", dataset="cifar10", noise=0.1)
    (root / "half-copied").mkdir()                      # no weights: must not be listed
    (root / "half-copied" / "config.json").write_text("{}")
    monkeypatch.setattr(pretrained, "pretrained_root", lambda: root)
    return root


@pytest.fixture
def no_pretrained(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "pretrained_root", lambda: tmp_path / "empty")


def write_gray(path: Path, width: int, height: int, seed: int = 0, bits: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if bits == 16:
        pixels = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        Image.fromarray(pixels).save(path)
    else:
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(path)
    return pixels


# ---------------------------------------------------------------------------- help

def test_main_help_lists_every_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subcommand_help(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert f"usage: vtsnn {command}" in out
    for option in COMMANDS[command]:
        assert option in out


def test_train_help_has_an_option_per_config_field(capsys):
    _, out, _ = run_cli(capsys, "train", "--help")
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in out
    assert "16,32,64" in out                       # tuple defaults shown as typed


def test_no_command_and_unknown_option_are_usage_errors(capsys):
    assert run_cli(capsys)[0] == 2
    code, _, err = run_cli(capsys, "denoise", "-o", "out.png", "--bogus")
    assert code == 2 and "unrecognized arguments" in err


# ---------------------------------------------------------------------- pretrained

def test_available_lists_complete_model_folders(fake_pretrained):
    assert pretrained.available() == ["cifar10-if-0.1", pretrained.DEFAULT_MODEL]
    assert pretrained.path_of("cifar10-if-0.1") == fake_pretrained / "cifar10-if-0.1"
    assert pretrained.resolve_model(None) == fake_pretrained / pretrained.DEFAULT_MODEL
    assert pretrained.model_card("cifar10-if-0.1") == ""


def test_unknown_name_lists_available(fake_pretrained):
    with pytest.raises(ValueError, match="available: cifar10-if-0.1, mnist-if-0.2"):
        pretrained.path_of("mnist-lif-0.9")
    with pytest.raises(ValueError, match="available: "):
        pretrained.resolve_model("mnist-lif-0.9")


def test_no_models_installed_says_so(no_pretrained):
    assert pretrained.available() == []
    with pytest.raises(ValueError, match="no pretrained models are installed"):
        pretrained.path_of(pretrained.DEFAULT_MODEL)
    with pytest.raises(ValueError, match="not installed"):
        pretrained.resolve_model(None)


def test_resolve_model_takes_paths(tmp_path, tiny_model, no_pretrained):
    assert pretrained.resolve_model(str(tiny_model)) == tiny_model
    with pytest.raises(FileNotFoundError):
        pretrained.resolve_model(str(tmp_path / "missing" / "run"))


def test_models_command_lists_pretrained(capsys, fake_pretrained):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert f"{pretrained.DEFAULT_MODEL} (default)" in out and "cifar10-if-0.1" in out and "half-copied" not in out


def test_model_description_names_a_recipe_that_is_not_the_papers():
    from vtsnn.cli import describe_config

    assert "itbp, if neurons" in describe_config(TrainConfig())
    ours = describe_config(TrainConfig(loss="bitplane-residual", ema_decay=0.999))
    assert "itbp, bitplane-residual loss, weight average, if neurons" in ours


def test_models_command_gives_the_score_a_card_states(capsys, fake_pretrained):
    (fake_pretrained / "cifar10-if-0.1" / "MODEL_CARD.md").write_text("# x\n\n**Test PSNR: 18.25 dB** on ...\n")
    code, out, _ = run_cli(capsys, "models")
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert code == 0 and lines["cifar10-if-0.1"].endswith("; test PSNR 18.25 dB (its MODEL_CARD.md)")
    assert "PSNR" not in lines[f"{pretrained.DEFAULT_MODEL} (default)"]        # no card, no score
    assert pretrained.card_psnr("cifar10-if-0.1") == 18.25


# --------------------------------------------------------------------- error paths

def test_missing_input_file(capsys, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "denoise", tmp_path / "nowhere.png", "-o", tmp_path / "out.png",
                           "--model", tiny_model)
    assert_clean_error(code, err, "nowhere.png", "not found")


def test_text_file_named_png_is_refused(capsys, tmp_path, tiny_model):
    fake = tmp_path / "x.png"
    fake.write_text("this is not an image\n")
    code, _, err = run_cli(capsys, "denoise", fake, "-o", tmp_path / "out.png", "--model", tiny_model)
    assert_clean_error(code, err, "x.png", "cannot read")
    code, _, err = run_cli(capsys, "encode", fake, "-o", tmp_path / "planes.png")
    assert_clean_error(code, err, "x.png")


def test_wrong_model_name_lists_available(capsys, tmp_path, fake_pretrained):
    write_gray(tmp_path / "in.png", 8, 8)
    code, _, err = run_cli(capsys, "denoise", tmp_path / "in.png", "-o", tmp_path / "out.png",
                           "--model", "mnist-if-9.9")
    assert_clean_error(code, err, "mnist-if-9.9", "available: cifar10-if-0.1, mnist-if-0.2")


def test_default_model_missing_is_a_clear_error(capsys, tmp_path, no_pretrained):
    code, _, err = run_cli(capsys, "denoise", "--sample", "-o", tmp_path / "out.png")
    assert_clean_error(code, err, "no pretrained models are installed")


def test_checkpoint_of_another_configuration_is_refused(capsys, tmp_path):
    folder = tmp_path / "edited"
    save_tiny_model(folder)
    config = json.loads((folder / "config.json").read_text())
    config["channels"] = [8, 16]                       # the weights are for (4, 8)
    (folder / "config.json").write_text(json.dumps(config))
    write_gray(tmp_path / "in.png", 8, 8)
    code, _, err = run_cli(capsys, "denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--model", folder)
    assert_clean_error(code, err, "does not fit this model configuration")
    assert not (tmp_path / "out.png").exists()


def test_folder_without_checkpoint_is_refused(capsys, tmp_path):
    (tmp_path / "empty-run").mkdir()
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "empty-run")
    assert_clean_error(code, err, "not a checkpoint")


def test_evaluate_with_missing_data_dir(capsys, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "evaluate", "--model", tiny_model, "--data-dir", tmp_path / "no-data")
    assert_clean_error(code, err, "mnist data not found", "vtsnn download mnist")


def test_bad_config_value_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "run", "--neuron", "hh")
    assert_clean_error(code, err, "neuron must be 'if' or 'lif'")


def test_interrupt_exits_130_with_resume_hint(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("vtsnn.train.train", interrupted)
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "run", "--device", "cpu")
    assert code == 130
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err


def test_sigterm_ends_a_command_as_ctrl_c_does_and_its_cleanup_runs(capsys, tmp_path, monkeypatch):
    cleaned = []

    def terminated(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)     # what `kill PID` or a batch scheduler sends
            time.sleep(5)                            # the signal arrives before this ends
        finally:
            cleaned.append(True)                     # e.g. a run's lock file is removed
    monkeypatch.setattr("vtsnn.train.train", terminated)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "run", "--device", "cpu")
    assert code == 130 and cleaned == [True]
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert signal.getsignal(signal.SIGTERM) is before


def test_debug_env_reraises(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VTSNN_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["train", "--out", str(tmp_path / "run"), "--neuron", "hh"])


# ----------------------------------------------------------- train options (no data)

def test_train_options_reach_the_config(capsys, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("vtsnn.train.train", lambda config, run_dir, **kw: calls.append((config, kw)) or
                        {"psnr": 20.0, "noisy_psnr": 14.0, "epoch": 1})
    code, out, _ = run_cli(capsys, "train", "--out", tmp_path / "run", "--channels", "4,8", "--training", "stbp",
                           "--no-temporal-grad", "--train-limit", "100", "--extra", '{"note": "x"}', "--lr", "0.01",
                           "--device", "cpu", "--data-dir", tmp_path)
    assert code == 0 and "final test PSNR 20.00 dB" in out
    config, kwargs = calls[0]
    assert config.channels == (4, 8) and config.training == "stbp" and config.temporal_grad is False
    assert config.loss == "decoded" and config.train_limit == 100 and config.extra == {"note": "x"}
    assert config.lr == 0.01 and config.epochs == 1
    assert kwargs["resume"] is False and kwargs["device"] == "cpu" and kwargs["data_dir"] == str(tmp_path)


def test_resume_keeps_the_stored_config_and_applies_given_options(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stored = TrainConfig(channels=(4, 8), noise=0.3, train_limit=100)
    checkpoint.atomic_write_json(run_dir / "config.json", stored.to_dict())
    calls = []
    monkeypatch.setattr("vtsnn.train.train", lambda config, run_dir, **kw: calls.append((config, kw)) or
                        {"psnr": 20.0, "noisy_psnr": 14.0, "epoch": 3})
    code, _, _ = run_cli(capsys, "train", "--out", run_dir, "--resume", "--epochs", "3", "--train-limit", "none")
    assert code == 0
    config, kwargs = calls[0]
    assert config == dataclasses.replace(stored, epochs=3, train_limit=None)
    assert kwargs["resume"] is True


def test_bad_channels_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "run", "--channels", "4,x")
    assert code == 2 and "comma-separated integers" in err


# ------------------------------------------------------------------------- denoise

def test_denoise_odd_sized_gray_image(capsys, tmp_path, tiny_model):
    write_gray(tmp_path / "odd.png", width=30, height=27)
    code, out, err = run_cli(capsys, "denoise", tmp_path / "odd.png", "-o", tmp_path / "out.png",
                             "--model", tiny_model, "--noise", "0.2", "--seed", "3")
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (30, 27) and result.mode == "L"
    noisy_db, denoised_db = re.search(r"PSNR noisy (\S+) dB, denoised (\S+) dB", out).groups()
    assert 5 < float(noisy_db) < 30 and float(denoised_db) > 0
    assert "mnist" in out and "0.2" in out and "itbp" in out      # the model used


def test_denoise_color_image_channel_by_channel(capsys, tmp_path, tiny_model):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (13, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "color.png")
    code, _, err = run_cli(capsys, "denoise", tmp_path / "color.png", "-o", tmp_path / "out.png",
                           "--model", tiny_model)
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (10, 13) and result.mode == "RGB"
        color_out = np.asarray(result)
    # Each channel is denoised as its own gray image.
    Image.fromarray(rgb[:, :, 1], mode="L").save(tmp_path / "green.png")
    assert run_cli(capsys, "denoise", tmp_path / "green.png", "-o", tmp_path / "green_out.png",
                   "--model", tiny_model)[0] == 0
    with Image.open(tmp_path / "green_out.png") as green:
        assert np.array_equal(np.asarray(green), color_out[:, :, 1])


def test_denoise_16_bit_input_says_it_is_reduced(capsys, tmp_path, tiny_model):
    write_gray(tmp_path / "deep.png", width=9, height=11, bits=16)
    code, out, err = run_cli(capsys, "denoise", tmp_path / "deep.png", "-o", tmp_path / "out.png",
                             "--model", tiny_model)
    assert code == 0, err
    assert "16-bit" in out
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (9, 11) and result.mode == "L"


def test_denoise_sample_adds_the_training_noise(capsys, tmp_path, fake_pretrained):
    code, out, err = run_cli(capsys, "denoise", "--sample", "-o", tmp_path / "out.png",
                             "--noisy-output", tmp_path / "noisy.png")
    assert code == 0, err
    assert "model mnist-if-0.2" in out and "noise 0.2" in out and "PSNR noisy" in out
    for name in ("out.png", "noisy.png"):
        with Image.open(tmp_path / name) as result:
            assert result.size == (28, 28)


def test_sample_image_is_a_real_mnist_digit():
    with Image.open(cli.sample_image_path()) as sample:
        assert sample.mode == "L" and sample.size == (28, 28)
        pixels = np.asarray(sample)
    assert pixels.max() > 200 and (pixels == 0).mean() > 0.5        # a bright stroke on black


def test_pad_to_multiple_reflects_and_falls_back_for_tiny_images():
    image = torch.arange(15, dtype=torch.uint8).view(1, 1, 3, 5)
    padded = cli.pad_to_multiple(image, 4)
    assert padded.shape == (1, 1, 4, 8) and padded.dtype == torch.uint8
    assert torch.equal(padded[..., :3, :5], image)
    assert torch.equal(padded[0, 0, 3, :5], image[0, 0, 1])       # reflection of the row above the edge
    tiny = cli.pad_to_multiple(torch.full((1, 1, 1, 1), 7, dtype=torch.uint8), 4)
    assert tiny.shape == (1, 1, 4, 4) and (tiny == 7).all()
    already = image[..., :2, :4]
    assert cli.pad_to_multiple(already, 2) is already             # nothing to pad


# -------------------------------------------------------------------------- encode

def test_encode_writes_bit_planes(capsys, tmp_path):
    write_gray(tmp_path / "in.png", 12, 10)
    code, out, err = run_cli(capsys, "encode", tmp_path / "in.png", "-o", tmp_path / "planes.png")
    assert code == 0, err
    with Image.open(tmp_path / "planes.png") as planes:
        assert planes.format == "PNG" and planes.size[0] > 200


def test_encode_color_notes_the_gray_conversion(capsys, tmp_path):
    Image.new("RGB", (8, 8), (200, 30, 90)).save(tmp_path / "c.png")
    code, out, _ = run_cli(capsys, "encode", tmp_path / "c.png", "-o", tmp_path / "planes.png", "--bits", "4")
    assert code == 0 and "gray" in out and (tmp_path / "planes.png").is_file()


# ------------------------------------------------------------ evaluate (fake data)

def test_evaluate_on_fake_cifar_writes_json_and_figure(capsys, tmp_path, fake_pretrained):
    write_fake_cifar(tmp_path / "data", count=4)
    code, out, err = run_cli(capsys, "evaluate", "--model", "cifar10-if-0.1", "--data-dir", tmp_path / "data",
                             "--noise", "0.1", "0.3", "--json", tmp_path / "scores.json",
                             "--figure", tmp_path / "grid.png", "--device", "cpu")
    assert code == 0, err
    records = json.loads((tmp_path / "scores.json").read_text())
    assert [r["noise"] for r in records] == [0.1, 0.3]
    for record in records:
        assert {"model", "dataset", "noise", "psnr", "psnr_sem", "noisy_psnr", "images", "seed", "command"} <= set(record)
        assert record["model"] == "cifar10-if-0.1" and record["dataset"] == "cifar10" and record["images"] == 4
        assert 0 < record["psnr_sem"] < 10                            # four random images: some spread
        assert record["command"].startswith("vtsnn evaluate --model cifar10-if-0.1")
    assert records[0]["noisy_psnr"] > records[1]["noisy_psnr"]        # more noise, lower PSNR
    assert "PSNR out" in out and "s.e." in out and "0.3" in out
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.format == "PNG"


def test_evaluate_runs_in_the_trained_precision_unless_told(capsys, tmp_path, fake_pretrained):
    write_fake_cifar(tmp_path / "data", count=4)
    scores = {}
    for precision in (None, "fp32", "bf16"):
        options = ["--precision", precision] if precision else []
        out_json = tmp_path / f"{precision}.json"
        code, out, err = run_cli(capsys, "evaluate", "--model", "cifar10-if-0.1", "--data-dir", tmp_path / "data",
                                 "--json", out_json, "--device", "cpu", *options)
        assert code == 0, err
        record = json.loads(out_json.read_text())[0]
        assert record["precision"] == (precision or "fp32")          # the tiny model was saved in fp32
        assert f"run in {record['precision']}" in out
        scores[precision] = record["psnr"]
    assert scores[None] == scores["fp32"]


def test_train_names_kept_weights_that_have_no_test_score(capsys, tmp_path, tiny_mnist, monkeypatch):
    # Weights kept at a check inside an epoch, or raw ones (--score-raw), were scored on the
    # validation set only.
    from vtsnn import run_folder
    monkeypatch.setattr(run_folder, "best_record", lambda run_dir: {"epoch": 1.5, "val_psnr": 20.25,
                                                                    "selected_by": "val_psnr", "weights": "raw"})
    code, out, err = run_cli(capsys, "train", "--channels", "4,8", "--batch-size", "16", "--val-size", "16",
                             "--ema-decay", "0.5", "--score-raw", "--data-dir", tiny_mnist, "--out",
                             tmp_path / "run", "--quiet", "--device", "cpu")
    assert code == 0, err
    assert f"best validation PSNR 20.25 dB at epoch 1.5, raw weights: {tmp_path / 'run' / 'best'}" in out


def test_unknown_precision_is_a_clean_error(capsys, tiny_model):
    code, _, err = run_cli(capsys, "evaluate", "--model", tiny_model, "--precision", "fp16")
    assert code != 0 and "invalid choice" in err and "Traceback" not in err


# ------------------------------------------------------- train/evaluate (real data)

@needs_real_data
def test_train_evaluate_resume_round_trip(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--channels", "4,8", "--train-limit", "100", "--test-limit", "50",
                             "--val-size", "20", "--epochs", "1", "--out", run_dir, "--quiet", "--device", "cpu")
    assert code == 0, err
    assert "final test PSNR" in out and (run_dir / "latest.json").is_file()
    assert "best validation PSNR" in out and "at epoch 1 " in out and str(run_dir / "best") in out

    code, out, err = run_cli(capsys, "evaluate", "--model", run_dir / "best", "--test-limit", "20", "--json",
                             tmp_path / "eval.json", "--device", "cpu")
    assert code == 0, err
    (record,) = json.loads((tmp_path / "eval.json").read_text())
    assert {"model", "dataset", "noise", "psnr", "noisy_psnr", "images", "seed", "command"} <= set(record)
    assert record["dataset"] == "mnist" and record["noise"] == 0.2 and record["images"] == 20

    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume", "--epochs", "2", "--quiet")
    assert code == 0, err
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "log.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "eval"]
    assert epochs == [1, 2]

    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--epochs", "3", "--quiet")
    assert_clean_error(code, err, "already holds a run")


def test_every_training_option_has_help():
    import dataclasses

    from vtsnn.cli import FIELD_HELP
    from vtsnn.config import TrainConfig

    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(FIELD_HELP)


def test_the_packages_warnings_print_as_one_plain_line(monkeypatch):
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    cli.show_own_warnings_plainly()
    cli.show_own_warnings_plainly()     # a second call does not wrap it twice
    assert warnings.formatwarning("vtsnn: slow here", UserWarning, "train.py", 7) == "vtsnn: slow here\n"
    other = warnings.formatwarning("deprecated", DeprecationWarning, "lib.py", 3, "")
    assert other.startswith("lib.py:3: DeprecationWarning: deprecated")
