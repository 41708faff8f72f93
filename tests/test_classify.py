"""VTLeNet classification runs (vtsnn.classify): inputs, training, exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from vtsnn import classify
from vtsnn.checkpoint import CheckpointError
from vtsnn.classify import ClassifyConfig, encode_images, load_classifier, train_classifier


def tiny(**overrides) -> ClassifyConfig:
    settings = dict(steps=4, noise=0.2, epochs=1, batch_size=16, init="spiking", log_every=1)
    settings.update(overrides)
    return ClassifyConfig(**settings)


def weights_of(run_dir) -> dict:
    model, _ = load_classifier(run_dir)
    return model.state_dict()


def test_inputs_keep_the_most_significant_bits():
    image = torch.tensor([[[[0b10110110, 0b01111111]]]], dtype=torch.uint8)
    assert encode_images(image, 2)[:, 0, 0, 0].tolist() == [[1, 0], [0, 1]]
    assert torch.equal(encode_images(image, 8)[:3], encode_images(image, 3))    # T steps = the first T of 8


def test_training_scores_logs_and_checkpoints(tiny_mnist, tmp_path):
    record = train_classifier(tiny(), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    assert 0.0 <= record["accuracy"] <= 1.0 and record["test_images"] == 16 and record["epoch"] == 1
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in log] == ["train"] * 4 + ["eval"]          # 64 images / 16 per batch
    assert json.loads((tmp_path / "run" / "latest.json").read_text())["epoch"] == 1
    model, config = load_classifier(tmp_path / "run")
    assert config == tiny() and model.steps == 4


def test_resume_gives_the_same_weights(tiny_mnist, tmp_path):
    train_classifier(tiny(epochs=2), tmp_path / "whole", progress=False, data_dir=tiny_mnist)
    train_classifier(tiny(epochs=1), tmp_path / "split", progress=False, data_dir=tiny_mnist)
    record = train_classifier(tiny(epochs=2), tmp_path / "split", resume=True, progress=False, data_dir=tiny_mnist)
    assert record["epoch"] == 2
    whole, split = weights_of(tmp_path / "whole"), weights_of(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    again = train_classifier(tiny(epochs=2), tmp_path / "split", resume=True, progress=False, data_dir=tiny_mnist)
    assert again["epoch"] == 2 and again["accuracy"] == record["accuracy"]      # finished: nothing to do


def test_existing_runs_need_resume_and_the_same_configuration(tiny_mnist, tmp_path):
    train_classifier(tiny(), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train_classifier(tiny(), tmp_path / "run", progress=False, data_dir=tiny_mnist)
    with pytest.raises(CheckpointError, match="different configuration"):
        train_classifier(tiny(epochs=2, steps=8), tmp_path / "run", resume=True, progress=False, data_dir=tiny_mnist)


def test_config_validation():
    for bad, phrase in (({"steps": 0}, "steps"), ({"steps": 9}, "steps"), ({"dataset": "cifar10"}, "dataset"),
                        ({"neuron": "relu"}, "neuron"), ({"noise": -1.0}, "noise"), ({"init": "xavier"}, "init"),
                        ({"steps": 2.0}, "steps must be int"), ({"temporal_grad": 1}, "temporal_grad must be bool")):
        with pytest.raises(ValueError, match=phrase):
            ClassifyConfig(**bad)
    config = tiny()
    assert ClassifyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown configuration keys"):
        ClassifyConfig.from_dict({**config.to_dict(), "channels": [4]})
    assert "epochs" not in classify.RESUME_KEYS and "steps" in classify.RESUME_KEYS
