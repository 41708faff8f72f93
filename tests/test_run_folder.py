"""A run's folder: epoch checkpoints written whole, the best epoch kept, the latest found."""

import pytest
import torch

from vtsnn.checkpoint import CheckpointError
from vtsnn.config import TrainConfig
from vtsnn.run_folder import (append_log, best_record, claim_run_dir, keep_if_best, latest_checkpoint,
                              replace_folder, resolve_checkpoint, save_checkpoint, start_or_resume)
from vtsnn.train import build_model


def tiny_config(**overrides):
    return TrainConfig(**{"channels": (4, 8), **overrides})


def save_epoch(run_dir, model, optimizer, config, epoch):
    generator = torch.Generator().manual_seed(epoch)
    return save_checkpoint(run_dir, model, optimizer, generator, config,
                           {"epoch": epoch, "images": 10 * epoch, "step": epoch})


def test_a_worse_epoch_does_not_replace_the_kept_one(tmp_path):
    config = tiny_config()
    model = build_model(config)
    assert keep_if_best(tmp_path, model, config, "val_psnr", {"epoch": 1, "val_psnr": 20.0})
    assert not keep_if_best(tmp_path, model, config, "val_psnr", {"epoch": 2, "val_psnr": 19.0})
    assert not keep_if_best(tmp_path, model, config, "val_psnr", {"epoch": 3, "val_psnr": 20.0})
    assert best_record(tmp_path)["epoch"] == 1
    assert keep_if_best(tmp_path, model, config, "val_psnr", {"epoch": 4, "val_psnr": 21.0})
    assert best_record(tmp_path)["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_only_the_latest_epoch_is_kept_and_latest_json_names_it(tmp_path):
    config = tiny_config()
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters())
    save_epoch(tmp_path, model, optimizer, config, 1)
    final = save_epoch(tmp_path, model, optimizer, config, 2)
    assert latest_checkpoint(tmp_path) == final == tmp_path / "epoch-0002"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "latest.json"]
    assert resolve_checkpoint(tmp_path) == final and resolve_checkpoint(final) == final


def test_a_resumed_run_gets_the_weights_moments_and_generator_it_saved(tmp_path):
    config = tiny_config()
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(8, 1, 1, 8, 8)).sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    save_checkpoint(tmp_path, model, optimizer, generator, config, {"epoch": 1, "images": 50, "step": 1})
    expected_draw = torch.rand(3, generator=generator)

    fresh = build_model(config)
    fresh_optimizer = torch.optim.Adam(fresh.parameters())
    resumed, start = start_or_resume(tmp_path, latest_checkpoint(tmp_path), config, ["channels"], fresh, fresh_optimizer)
    assert start == (1, 50, 1)
    assert torch.equal(torch.rand(3, generator=resumed), expected_draw)
    for name, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value)
    for index, moments in optimizer.state_dict()["state"].items():
        restored = fresh_optimizer.state_dict()["state"][index]
        assert all(torch.equal(restored[key], value) for key, value in moments.items())
    with pytest.raises(CheckpointError, match="channels"):
        start_or_resume(tmp_path, latest_checkpoint(tmp_path), tiny_config(channels=(4, 4)), ["channels"],
                        build_model(tiny_config(channels=(4, 4))), fresh_optimizer)


def test_a_folder_holding_a_run_is_claimed_only_to_resume(tmp_path):
    assert claim_run_dir(tmp_path / "new", resume=False) is None and (tmp_path / "new").is_dir()
    config = tiny_config()
    model = build_model(config)
    save_epoch(tmp_path / "new", model, torch.optim.Adam(model.parameters()), config, 1)
    with pytest.raises(CheckpointError, match="already holds a run"):
        claim_run_dir(tmp_path / "new", resume=False)
    assert claim_run_dir(tmp_path / "new", resume=True) == tmp_path / "new" / "epoch-0001"


def test_a_folder_that_is_neither_checkpoint_nor_run_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        resolve_checkpoint(tmp_path)


def test_replacing_a_folder_leaves_the_new_one_whole_and_nothing_aside(tmp_path):
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "old.txt").write_text("old")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "new.txt").write_text("new")
    replace_folder(tmp_path / "staging", tmp_path / "final")
    assert [p.name for p in tmp_path.iterdir()] == ["final"]
    assert [p.name for p in (tmp_path / "final").iterdir()] == ["new.txt"]


def test_log_records_are_appended_one_json_line_each(tmp_path):
    append_log(tmp_path, {"kind": "train", "loss": 0.5})
    append_log(tmp_path, {"kind": "eval", "psnr": 20.0})
    assert (tmp_path / "log.jsonl").read_text() == '{"kind": "train", "loss": 0.5}\n{"kind": "eval", "psnr": 20.0}\n'
