"""Training loop: runs, logs, checkpoints, exact resume, strict loading."""

import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from vtsnn import jitter as jitter_module
from vtsnn import train as train_module
from vtsnn.checkpoint import CheckpointError
from vtsnn.config import TrainConfig
from vtsnn.reproduce import read_log
from vtsnn.run_folder import best_record, latest_checkpoint, stored_raw_weights
from vtsnn.train import build_model, evaluate, load_test_set, load_trained, make_optimizer, train


def tiny_config(**overrides):
    settings = dict(channels=(4, 8), batch_size=16, epochs=2, init="spiking", temporal_grad=True,
                    lr_schedule="cosine", log_every=1)
    settings.update(overrides)
    return TrainConfig(**settings)


def kept_validation_psnr(run_dir, data_dir, val_size=16):
    """The validation PSNR of ``run_dir/best``, scored again from scratch: the last
    ``val_size`` training images with the noise of the test seed plus the validation offset."""
    model, config = load_trained(run_dir / "best")
    clean, _ = train_module.load_dataset("mnist", "train", data_dir)
    val_clean = clean[-val_size:]
    val_noisy = train_module.fixed_test_noise(val_clean, config.noise, config.test_seed + train_module.VALIDATION_SEED_OFFSET)
    return train_module.evaluate(model, val_clean, val_noisy, config)["psnr"]


def weights_of(run_dir):
    model, _ = load_trained(run_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_logs_evaluates_and_checkpoints(tiny_mnist, tmp_path):
    record = train(tiny_config(), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    assert record["epoch"] == 2 and record["images"] == 128
    assert record["noisy_psnr"] < 25 and np.isfinite(record["psnr"])
    log = read_log(tmp_path / "run" / "log.jsonl")
    assert [r["epoch"] for r in log if r["kind"] == "eval"] == [1, 2]
    rates = [r["firing_rates"] for r in log if r["kind"] == "eval"]
    assert all(list(r)[-1] == "output_neuron" and all(0 <= v <= 1 for v in r.values()) for r in rates)
    assert sum(r["kind"] == "train" for r in log) == 8          # 4 steps per epoch, logged each step
    latest = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert latest["checkpoint"] == "epoch-0002"
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith("epoch")) == ["epoch-0002"]


def test_training_changes_the_weights_and_is_deterministic(tiny_mnist, tmp_path):
    config = tiny_config(epochs=1)
    train(config, tmp_path / "a", progress=False, data_dir=tiny_mnist)
    train(config, tmp_path / "b", progress=False, data_dir=tiny_mnist)
    a, b = weights_of(tmp_path / "a"), weights_of(tmp_path / "b")
    torch.manual_seed(config.seed)
    initial = build_model(config).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], initial[k]) for k in a)


@pytest.mark.parametrize("ema_decay, flip, shift, output_jitter",
                         [(0.0, False, 0, 0.0), (0.9, False, 0, 0.0), (0.0, True, 0, 0.0), (0.0, True, 1, 0.0),
                          (0.0, False, 0, 0.3)])
def test_resume_after_interruption_gives_identical_weights(tiny_mnist, tmp_path, monkeypatch, ema_decay, flip, shift,
                                                           output_jitter):
    config = tiny_config(epochs=3, ema_decay=ema_decay, flip=flip, shift=shift, output_jitter=output_jitter)
    train(config, tmp_path / "whole", progress=False, data_dir=tiny_mnist)

    calls = {"n": 0}
    real_add_noise = train_module.add_noise

    def interrupting_add_noise(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:      # in the middle of epoch 2 (4 batches per epoch)
            raise KeyboardInterrupt
        return real_add_noise(*args, **kwargs)

    monkeypatch.setattr(train_module, "add_noise", interrupting_add_noise)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", progress=False, data_dir=tiny_mnist)
    monkeypatch.setattr(train_module, "add_noise", real_add_noise)
    assert json.loads((tmp_path / "split" / "latest.json").read_text())["epoch"] == 1
    train(config, tmp_path / "split", resume=True, progress=False, data_dir=tiny_mnist)

    whole, split = weights_of(tmp_path / "whole"), weights_of(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    whole_raw, split_raw = (stored_raw_weights(latest_checkpoint(tmp_path / run)) for run in ("whole", "split"))
    assert whole_raw.keys() == split_raw.keys() == (whole.keys() if ema_decay else set())
    assert all(torch.equal(whole_raw[k], split_raw[k]) for k in whole_raw)


def test_output_jitter_changes_training_but_not_scoring(tiny_mnist, tmp_path, monkeypatch):
    train(tiny_config(epochs=1), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    scaled = []
    real_scaled_input = jitter_module.scaled_input

    def counting_scaled_input(module, factors):
        scaled.append((type(module).__name__, tuple(factors.shape), factors.min().item(), factors.max().item()))
        return real_scaled_input(module, factors)

    monkeypatch.setattr(jitter_module, "scaled_input", counting_scaled_input)
    last = train(tiny_config(epochs=1, output_jitter=0.3), tmp_path / "jittered", progress=False, data_dir=tiny_mnist)
    plain, jittered = weights_of(tmp_path / "plain"), weights_of(tmp_path / "jittered")
    assert any(not torch.equal(plain[k], jittered[k]) for k in plain)
    # One draw per training step (64 images in batches of 16), one factor per image and
    # time step, on the output neuron; evaluation draws none.
    assert len(scaled) == 4
    assert all(name == "IF" and shape == (8, 16, 1, 1, 1) and 0.7 <= low <= high <= 1.3
               for name, shape, low, high in scaled)
    model, config = load_trained(tmp_path / "jittered")
    clean, noisy = load_test_set(config, tiny_mnist)
    assert evaluate(model, clean, noisy, config)["psnr"] == pytest.approx(last["psnr"], abs=1e-6)


def test_weight_average_is_what_a_run_scores_and_saves_while_training_is_unchanged(tiny_mnist, tmp_path):
    train(tiny_config(), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    last = train(tiny_config(ema_decay=0.9), tmp_path / "averaged", progress=False, data_dir=tiny_mnist)
    plain, averaged = weights_of(tmp_path / "plain"), weights_of(tmp_path / "averaged")
    raw = stored_raw_weights(latest_checkpoint(tmp_path / "averaged"))
    assert all(torch.equal(raw[k], plain[k]) for k in plain)          # the optimizer's path is the same
    assert any(not torch.equal(averaged[k], plain[k]) for k in plain)  # but the model handed out differs
    model, config = load_trained(tmp_path / "averaged")
    clean, noisy = load_test_set(config, tiny_mnist)
    assert evaluate(model, clean, noisy, config)["psnr"] == pytest.approx(last["psnr"], abs=1e-6)


def test_gradient_clipping_scales_only_steps_above_the_limit(tiny_mnist, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    train(tiny_config(epochs=1, clip_grad=1e9), tmp_path / "loose", progress=False, data_dir=tiny_mnist)
    train(tiny_config(epochs=1, clip_grad=1e-6), tmp_path / "tight", progress=False, data_dir=tiny_mnist)
    plain, loose, tight = (weights_of(tmp_path / run) for run in ("plain", "loose", "tight"))
    assert all(torch.equal(plain[k], loose[k]) for k in plain)       # no step reached the limit
    assert any(not torch.equal(plain[k], tight[k]) for k in plain)   # every step was scaled down
    # The log holds each step's gradient norm before clipping: the tight run's first is the
    # plain run's (same weights), and every one is far above its limit.
    plain_norms, tight_norms = ([r["grad_norm"] for r in read_log(tmp_path / run / "log.jsonl") if r["kind"] == "train"]
                                for run in ("plain", "tight"))
    assert tight_norms[0] == plain_norms[0] and min(tight_norms) > 1e-3


def test_each_loss_record_holds_the_mean_and_largest_gradient_norm(tiny_mnist, tmp_path):
    train(tiny_config(epochs=1, log_every=2), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    records = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    assert len(records) == 2
    for record in records:
        assert 0 < record["grad_norm"] < record["grad_norm_max"]


def test_running_step_stats_average_and_start_over():
    running = train_module.RunningStepStats()
    for loss, norm in ((0.5, 1.0), (0.25, 3.0), (0.75, 2.0)):
        running.add(torch.tensor(loss), torch.tensor(norm))
    assert running.take() == pytest.approx({"loss": 0.5, "grad_norm": 2.0, "grad_norm_max": 3.0})
    running.add(torch.tensor(0.1), torch.tensor(0.5))
    assert running.take() == pytest.approx({"loss": 0.1, "grad_norm": 0.5, "grad_norm_max": 0.5})


def clean_batches_seen(monkeypatch) -> list[torch.Tensor]:
    """A list that fills, while training, with the clean images of each batch as they go
    to ``add_noise`` (after any augmentation)."""
    seen = []
    real_add_noise = train_module.add_noise

    def recording_add_noise(clean, *args, **kwargs):
        seen.append(clean.clone())
        return real_add_noise(clean, *args, **kwargs)

    monkeypatch.setattr(train_module, "add_noise", recording_add_noise)
    return seen


def test_flip_trains_on_whole_images_some_of_them_mirrored(tiny_mnist, tmp_path, monkeypatch):
    real_add_noise = train_module.add_noise
    seen = clean_batches_seen(monkeypatch)
    train(tiny_config(epochs=1, flip=True), tmp_path / "flip", progress=False, data_dir=tiny_mnist)
    images, _ = train_module.load_dataset("mnist", "train", tiny_mnist)
    batch = torch.cat(seen)
    as_is = (batch[:, None] == images[None]).flatten(2).all(2).any(1)
    mirrored = (batch[:, None] == images.flip(-1)[None]).flatten(2).all(2).any(1)
    assert bool((as_is | mirrored).all()) and bool(mirrored.any()) and bool((as_is & ~mirrored).any())
    monkeypatch.setattr(train_module, "add_noise", real_add_noise)
    train(tiny_config(epochs=1), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    flipped, plain = weights_of(tmp_path / "flip"), weights_of(tmp_path / "plain")
    assert any(not torch.equal(flipped[k], plain[k]) for k in plain)


def test_shift_trains_on_images_moved_by_at_most_the_shift(tiny_mnist, tmp_path, monkeypatch):
    seen = clean_batches_seen(monkeypatch)
    train(tiny_config(epochs=1, shift=1), tmp_path / "shift", progress=False, data_dir=tiny_mnist)
    images, _ = train_module.load_dataset("mnist", "train", tiny_mnist)
    batch = torch.cat(seen)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    height, width = images.shape[-2:]
    # Each image seen is a training image moved by -1, 0 or 1 pixels down and across.
    shifted = [padded[..., 1 - down:1 - down + height, 1 - across:1 - across + width]
               for down in (-1, 0, 1) for across in (-1, 0, 1)]
    seen_as = torch.stack([(batch[:, None] == candidates[None]).flatten(2).all(2).any(1) for candidates in shifted])
    assert bool(seen_as.any(0).all())
    assert bool(seen_as[4].any()) and bool((~seen_as[4]).any())    # some kept in place, some moved


def test_existing_run_needs_resume_and_the_same_configuration(tiny_mnist, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_config(epochs=1), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="different configuration"):
        train(tiny_config(epochs=2, noise=0.4), tmp_path / "run", resume=True, progress=False, data_dir=tiny_mnist)


def test_loading_refuses_a_checkpoint_from_another_configuration(tiny_mnist, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    folder = latest_checkpoint(tmp_path / "run")
    with pytest.raises(CheckpointError, match="different configuration"):
        load_trained(folder, expect={"noise": 0.8})
    config = json.loads((folder / "config.json").read_text())
    config["channels"] = [8, 16]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_trained(folder)


@pytest.mark.parametrize("training, overrides", [("stbp", {}), ("ann", {}), ("itbp", {"temporal_grad": False}),
                                                  ("itbp", {"encoder": "ttfs", "decoder": "mpd"}),
                                                  ("itbp", {"encoder": "ttfs", "decoder": "mpd-early"}),
                                                  ("itbp", {"encoder": "uwe-lsb", "decoder": "uwd-lsb"})])
def test_every_method_trains(tiny_mnist, tmp_path, training, overrides):
    config = tiny_config(training=training, epochs=1, **{"temporal_grad": None, **overrides})
    record = train(config, tmp_path / "run", progress=False, data_dir=tiny_mnist)
    assert np.isfinite(record["psnr"])
    assert ("firing_rates" in record) == (training != "ann")


def test_surrogate_and_reset_settings_reach_every_neuron_and_are_checked():
    from vtsnn.neurons import IF
    model = build_model(TrainConfig(training="stbp", neuron="lif", detach_reset=True, surrogate_alpha=4.0))
    neurons = [m for m in model.modules() if isinstance(m, IF)]
    assert len(neurons) > 10
    assert all(n.detach_reset and n.surrogate_alpha == 4.0 and n.temporal_grad for n in neurons)
    with pytest.raises(ValueError, match="surrogate_alpha must be a positive number"):
        TrainConfig(surrogate_alpha=-1.0)
    with pytest.raises(ValueError, match="detach_reset .* needs temporal_grad"):
        TrainConfig(training="itbp", detach_reset=True)          # ITBP's detached reading: nothing to drop
    # Runs trained before these settings existed read them as the paper's.
    old = TrainConfig().to_dict()
    del old["detach_reset"], old["surrogate_alpha"]
    assert TrainConfig.from_dict(old) == TrainConfig()


def test_lsb_first_code_encodes_decodes_and_scores_a_perfect_output_at_zero_loss():
    config = TrainConfig(encoder="uwe-lsb", decoder="uwd-lsb")
    clean = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    spikes = train_module.encode_input(clean, config)
    assert torch.equal(spikes[0], (clean & 1).float())
    assert torch.equal(train_module.output_to_image(spikes, config), clean.float() / 255)
    assert train_module.compute_loss(spikes, clean, config).item() == 0
    with pytest.raises(ValueError, match="goes both ways"):
        TrainConfig(encoder="uwe-lsb")
    with pytest.raises(ValueError, match="goes both ways"):
        TrainConfig(decoder="uwd-lsb")


def test_the_loss_field_chooses_the_plane_weights():
    clean = torch.full((1, 1, 2, 2), 128, dtype=torch.uint8)      # only the MSB plane is on
    silent = torch.zeros(8, 1, 1, 2, 2)
    paper = train_module.compute_loss(silent, clean, TrainConfig())
    squared = train_module.compute_loss(silent, clean, TrainConfig(loss="bitplane-squared"))
    assert paper.item() == pytest.approx(128 / 255)
    assert squared.item() == pytest.approx(128 ** 2 / sum(4 ** k for k in range(8)))


def test_the_residual_loss_counts_only_the_planes_that_can_still_help():
    clean = torch.full((1, 1, 1, 1), 100, dtype=torch.uint8)
    msb_on = torch.zeros(8, 1, 1, 1, 1)
    msb_on[0] = 1                                              # 128 for 100: the MSB is wrong
    residual = train_module.compute_loss(msb_on, clean, TrainConfig(loss="bitplane-residual"))
    paper = train_module.compute_loss(msb_on, clean, TrainConfig())
    # Residual: later planes should now be 0, as they are; only the MSB counts.
    assert residual.item() == pytest.approx(128 / 255)
    # The paper's target also wants 100's own bits (64 + 32 + 4) in the later planes.
    assert paper.item() == pytest.approx((128 + 64 + 32 + 4) / 255)
    with pytest.raises(ValueError, match="bitplane-residual loss needs the uwd decoder"):
        TrainConfig(loss="bitplane-residual", decoder="mpd")
    flip = train_module.compute_loss(msb_on, clean, TrainConfig(loss="decoded-flip", temporal_grad=True))
    assert flip.item() == pytest.approx((28 / 255) ** 2)                  # the decoded MSE: 128 for 100
    with pytest.raises(ValueError, match="decoded-flip loss needs the uwd decoder"):
        TrainConfig(loss="decoded-flip", decoder="mpd-early")
    # With the later planes off as emitted, the MSB is better on (128 is 28 from 100, 0 is 100).
    assert train_module.compute_loss(msb_on, clean, TrainConfig(loss="bitplane-flip")).item() == 0



def test_a_loss_of_several_terms_is_their_sum():
    clean = torch.full((1, 1, 1, 1), 100, dtype=torch.uint8)
    msb_on = torch.zeros(8, 1, 1, 1, 1)
    msb_on[0] = 1
    both = TrainConfig(loss="bitplane+decoded-flip", temporal_grad=True)
    assert both.loss_terms == ["bitplane", "decoded-flip"]
    parts = [train_module.compute_loss(msb_on, clean, TrainConfig(loss=term)) for term in both.loss_terms]
    assert train_module.compute_loss(msb_on, clean, both).item() == pytest.approx(sum(p.item() for p in parts))
    with pytest.raises(ValueError, match="names a term twice"):
        TrainConfig(loss="bitplane+bitplane")
    with pytest.raises(ValueError, match="several joined by"):
        TrainConfig(loss="bitplane+nothing")
    with pytest.raises(ValueError, match="needs the uwd decoder"):
        TrainConfig(loss="bitplane+decoded-flip", decoder="mpd")
    for mixed in ({"training": "ann", "loss": "mse+decoded"}, {"loss": "bitplane+mse"}):
        with pytest.raises(ValueError, match="mse loss goes with training='ann' only, and alone"):
            TrainConfig(**mixed)


def test_checkpoint_files_get_normal_permissions(tiny_mnist, tmp_path):
    import os
    import stat
    umask = os.umask(0o022)
    try:
        train(tiny_config(epochs=1), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    finally:
        os.umask(umask)
    folder = latest_checkpoint(tmp_path / "run")
    for name in ("model.safetensors", "config.json", "state.safetensors"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644


def test_validation_images_are_the_last_training_images_and_never_trained_on():
    images = torch.arange(10).view(10, 1, 1, 1)
    train_images, val_images = train_module.split_training_set(images, TrainConfig(val_size=3, train_limit=4))
    assert val_images.flatten().tolist() == [7, 8, 9]
    assert train_images.flatten().tolist() == [0, 1, 2, 3]
    train_images, val_images = train_module.split_training_set(images, TrainConfig())
    assert val_images is None and train_images.shape[0] == 10
    with pytest.raises(ValueError, match="leaves no training images"):
        train_module.split_training_set(images, TrainConfig(val_size=10))
    with pytest.raises(ValueError, match="val_size"):
        TrainConfig(val_size=-1)


def test_the_epoch_with_the_best_validation_psnr_is_kept(tiny_mnist, tmp_path):
    record = train(tiny_config(epochs=3, val_size=16), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    assert record["images"] == 3 * 48                       # 64 training images minus 16 held out
    scores = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "eval"]
    best = best_record(tmp_path / "run")
    first_best = max(scores, key=lambda r: (r["val_psnr"], -r["epoch"]))
    assert best["selected_by"] == "val_psnr"
    assert (best["epoch"], best["val_psnr"], best["psnr"]) == (first_best["epoch"], first_best["val_psnr"],
                                                               first_best["psnr"])
    assert kept_validation_psnr(tmp_path / "run", tiny_mnist) == pytest.approx(best["val_psnr"], abs=1e-4)


@pytest.mark.parametrize("steps, checks, expected", [(10, 1, set()), (10, 4, {2, 5, 8}), (3, 3, {1, 2}),
                                                     (2, 5, {1})])
def test_mid_epoch_checks_are_evenly_spaced_and_leave_the_end_to_the_epoch(steps, checks, expected):
    assert train_module.mid_epoch_steps(steps, checks) == expected


def test_checks_per_epoch_needs_a_validation_set():
    with pytest.raises(ValueError, match="needs val_size"):
        TrainConfig(checks_per_epoch=2)
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(checks_per_epoch=0, val_size=10)


def test_mid_epoch_checks_keep_the_best_weights_without_changing_training(tiny_mnist, tmp_path):
    settings = dict(epochs=2, val_size=16, ema_decay=0.5)
    plain = train(tiny_config(**settings), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    checked = train(tiny_config(**settings, checks_per_epoch=3), tmp_path / "checked", progress=False,
                    data_dir=tiny_mnist)
    # The same weights after every epoch: scoring in between draws nothing and trains nothing.
    assert (checked["psnr"], checked["val_psnr"]) == (plain["psnr"], plain["val_psnr"])
    log = read_log(tmp_path / "checked" / "log.jsonl")
    checks = [r for r in log if r["kind"] == "check"]
    assert [r["epoch"] for r in checks] == [0.333, 0.667, 1.333, 1.667]   # 48 images: 3 steps per epoch
    assert [r["step"] for r in checks] == [1, 2, 4, 5]
    scored = [(r["val_psnr"], -r["epoch"], r["epoch"]) for r in log if r["kind"] in ("check", "eval")]
    best = best_record(tmp_path / "checked")
    assert best["epoch"] == max(scored)[2] and best["selected_by"] == "val_psnr"
    assert kept_validation_psnr(tmp_path / "checked", tiny_mnist) == pytest.approx(best["val_psnr"], abs=1e-4)


def test_score_raw_keeps_raw_weights_or_their_average_whichever_validates_higher(tiny_mnist, tmp_path):
    # The ANN twin: the tiny spiking model stays silent here, so every score would tie.
    settings = dict(training="ann", temporal_grad=None, epochs=2, val_size=16, ema_decay=0.5, checks_per_epoch=3)
    plain = train(tiny_config(**settings), tmp_path / "plain", progress=False, data_dir=tiny_mnist)
    both = train(tiny_config(**settings, score_raw=True), tmp_path / "both", progress=False, data_dir=tiny_mnist)
    # Training and the average are the same: scoring the raw weights too draws and trains nothing.
    assert (both["psnr"], both["val_psnr"]) == (plain["psnr"], plain["val_psnr"])
    plain_log, log = (read_log(tmp_path / run / "log.jsonl") for run in ("plain", "both"))
    checks = [r for r in log if r["kind"] in ("check", "eval")]
    assert [r["val_psnr"] for r in checks] == [r["val_psnr"] for r in plain_log if r["kind"] in ("check", "eval")]
    assert len(checks) == 6 and all("raw_val_psnr" in r for r in checks)
    assert not any("raw_val_psnr" in r for r in plain_log)
    # The raw weights are not the average (decay 0.5 trails them by a step or two).
    assert all(r["raw_val_psnr"] != r["val_psnr"] for r in checks)
    # best holds the highest of all twelve scores, labelled with whose weights they are.
    scores = [(r[key], -r["epoch"], r["epoch"], weights) for r in checks
              for key, weights in (("raw_val_psnr", "raw"), ("val_psnr", "average"))]
    best = best_record(tmp_path / "both")
    top = max(scores)
    assert (best["val_psnr"], best["epoch"], best["weights"]) == (top[0], top[2], top[3])
    assert kept_validation_psnr(tmp_path / "both", tiny_mnist) == pytest.approx(best["val_psnr"], abs=1e-4)
    # The saved model is still the average, as without score_raw.
    assert all(torch.equal(a, b) for a, b in zip(weights_of(tmp_path / "both").values(),
                                                 weights_of(tmp_path / "plain").values()))
    assert "weights" not in best_record(tmp_path / "plain")


def test_score_raw_needs_an_average_and_a_validation_set():
    with pytest.raises(ValueError, match="score_raw .* needs ema_decay and val_size"):
        TrainConfig(score_raw=True, val_size=10)
    with pytest.raises(ValueError, match="score_raw .* needs ema_decay and val_size"):
        TrainConfig(score_raw=True, ema_decay=0.9)
    assert TrainConfig(score_raw=True, ema_decay=0.9, val_size=10).score_raw


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_training_runs_on_the_gpu(tiny_mnist, tmp_path, precision):
    record = train(tiny_config(epochs=1, precision=precision), tmp_path / "run", progress=False,
                   data_dir=tiny_mnist, device="cuda")
    assert np.isfinite(record["psnr"]) and record["psnr"] > 0
    model, _ = load_trained(tmp_path / "run")          # saved from the GPU, loads on the CPU
    assert next(model.parameters()).device.type == "cpu"


def test_spiking_output_bits_are_the_output_spikes_of_every_batch_in_order():
    config = tiny_config()
    torch.manual_seed(0)
    model = build_model(config)
    noisy = torch.randint(0, 256, (5, 1, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    bits = train_module.spiking_output_bits(model, config, noisy)
    assert bits.shape == (8, 5, 1, 12, 12) and set(bits.unique().tolist()) <= {0.0, 1.0}
    # Batched or not, the same spikes: each image's output depends on that image alone.
    one_by_one = torch.cat([output.float() for output in train_module.model_outputs(model, noisy, config,
                                                                                       batch_size=1)], dim=1)
    assert torch.equal(bits, one_by_one)
    decoded = train_module.denoise_images(model, noisy, config)
    assert torch.allclose(decoded, train_module.output_to_image(bits, config))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_model_on_cpu_runs_with_channels_last_weights_in_either_precision(precision):
    config = TrainConfig(channels=(4, 8), precision=precision)
    model = train_module.prepare_model(build_model(config), config, torch.device("cpu"))
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_fp32_on_a_gpu_keeps_the_default_layout():
    assert train_module.uses_channels_last("bf16", torch.device("cuda"))
    assert not train_module.uses_channels_last("fp32", torch.device("cuda"))
    assert train_module.uses_channels_last("fp32", torch.device("cpu"))


@pytest.mark.parametrize("native, precision, warned", [(False, "bf16", True), (True, "bf16", False),
                                                       (None, "bf16", False), (False, "fp32", False)])
def test_bf16_on_a_cpu_without_native_bf16_warns_that_fp32_is_faster(monkeypatch, native, precision, warned):
    monkeypatch.setattr(train_module.machine, "cpu_has_native_bf16", lambda: native)
    config = TrainConfig(channels=(4, 8), precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train_module.prepare_model(build_model(config), config, torch.device("cpu"))
    messages = [str(w.message) for w in caught if "native bf16" in str(w.message)]
    assert messages == ([train_module.SLOW_BF16_WARNING] if warned else [])
    assert "--precision fp32" in train_module.SLOW_BF16_WARNING
    assert isinstance(model, torch.nn.Module)


def test_a_teacher_s_rounded_output_replaces_the_clean_image_as_the_target(tiny_mnist, tmp_path, monkeypatch):
    train(tiny_config(training="ann", epochs=1), tmp_path / "teacher", progress=False, data_dir=tiny_mnist)
    config = tiny_config(epochs=1, teacher=str(tmp_path / "teacher"))
    seen = {"noisy": [], "targets": [], "clean": []}
    real_add_noise, real_loss = train_module.add_noise, train_module.compute_loss

    def add_noise(clean, noise, generator):
        noisy = real_add_noise(clean, noise, generator)
        seen["clean"].append(clean)
        seen["noisy"].append(noisy)
        return noisy

    def compute_loss(output, target, config):
        seen["targets"].append(target)
        return real_loss(output, target, config)
    monkeypatch.setattr(train_module, "add_noise", add_noise)
    monkeypatch.setattr(train_module, "compute_loss", compute_loss)
    train(config, tmp_path / "student", progress=False, data_dir=tiny_mnist)

    teacher = train_module.load_teacher(config, torch.device("cpu"))
    model, teacher_config = teacher
    for noisy, clean, target in zip(seen["noisy"], seen["clean"], seen["targets"]):
        expected = (train_module.denoise_images(model, noisy, teacher_config) * 255).round().to(torch.uint8)
        assert target.dtype == torch.uint8 and torch.equal(target, expected)
        assert not torch.equal(target, clean)
    assert len(seen["targets"]) == 4


def test_training_with_a_teacher_differs_from_training_on_clean_images_and_repeats(tiny_mnist, tmp_path):
    train(tiny_config(training="ann", epochs=1), tmp_path / "teacher", progress=False, data_dir=tiny_mnist)
    for name, teacher in (("plain", None), ("taught", tmp_path / "teacher"), ("again", tmp_path / "teacher")):
        config = tiny_config(epochs=1, teacher=None if teacher is None else str(teacher), loss="bitplane-residual")
        train(config, tmp_path / name, progress=False, data_dir=tiny_mnist)
    plain, taught, again = (weights_of(tmp_path / name) for name in ("plain", "taught", "again"))
    assert all(torch.equal(taught[k], again[k]) for k in taught)
    assert any(not torch.equal(taught[k], plain[k]) for k in taught)


def test_a_teacher_of_another_dataset_or_none_at_all_is_refused(tiny_mnist, tmp_path):
    train(tiny_config(training="ann", epochs=1), tmp_path / "teacher", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="^teacher: .*dataset: checkpoint 'mnist' vs requested 'fashion_mnist'"):
        train_module.load_teacher(tiny_config(dataset="fashion_mnist", teacher=str(tmp_path / "teacher")),
                                  torch.device("cpu"))
    with pytest.raises(CheckpointError, match="^teacher: .*not a checkpoint"):
        train(tiny_config(teacher=str(tmp_path / "missing")), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="teacher must be"):
        tiny_config(teacher=" ")


def test_a_run_can_start_from_the_weights_another_run_kept(tiny_mnist, tmp_path, monkeypatch):
    train(tiny_config(epochs=1, val_size=16), tmp_path / "source", progress=False, data_dir=tiny_mnist)
    kept = weights_of(tmp_path / "source" / "best")
    starts = []
    prepare = train_module.prepare_model

    def record_start(model, config, device):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return prepare(model, config, device)

    monkeypatch.setattr(train_module, "prepare_model", record_start)
    config = tiny_config(epochs=1, lr=1e-4, init_from=str(tmp_path / "source" / "best"))
    train(config, tmp_path / "restart", progress=False, data_dir=tiny_mnist)
    train(tiny_config(epochs=1, lr=1e-4), tmp_path / "fresh", progress=False, data_dir=tiny_mnist)
    restart, fresh = starts
    assert all(torch.equal(restart[k], kept[k]) for k in kept)
    assert any(not torch.equal(fresh[k], kept[k]) for k in kept)
    # Resumed, a run goes on from its own weights instead of starting over from the source's,
    # which it no longer needs.
    after_one = weights_of(tmp_path / "restart")
    shutil.rmtree(tmp_path / "source")
    starts.clear()
    train(dataclasses.replace(config, epochs=2), tmp_path / "restart", resume=True, progress=False, data_dir=tiny_mnist)
    assert all(torch.equal(starts[0][k], after_one[k]) for k in after_one)
    assert any(not torch.equal(starts[0][k], kept[k]) for k in kept)


def test_a_missing_or_different_starting_checkpoint_is_refused_before_any_run_folder(tiny_mnist, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "source", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="^init_from: .*not a checkpoint"):
        train(tiny_config(init_from=str(tmp_path / "missing")), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="^init_from: .*channels"):
        train(tiny_config(channels=(4, 16), init_from=str(tmp_path / "source")), tmp_path / "run", progress=False,
              data_dir=tiny_mnist)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("decoupled, expected", [
    # AdamW: every weight shrinks by lr x decay, whatever its size or gradient.
    (True, [4.0 * (1 - 0.1 * 0.5), -3.0 * (1 - 0.1 * 0.5)]),
    # Adam: the decay is a gradient (0.5 w), which Adam's first step turns into a move of lr toward 0.
    (False, [4.0 - 0.1, -3.0 + 0.1]),
])
def test_weight_decay_is_decoupled_only_when_asked(decoupled, expected):
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[4.0, -3.0]]))
    config = TrainConfig(lr=0.1, weight_decay=0.5, decoupled_decay=decoupled)
    optimizer = make_optimizer(layer, config)
    layer.weight.grad = torch.zeros_like(layer.weight)      # only the decay moves the weights
    optimizer.step()
    assert layer.weight.detach().flatten().tolist() == pytest.approx(expected, rel=1e-5)
