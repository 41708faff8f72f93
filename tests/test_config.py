"""Run configurations: validation, presets, type checks, the JSON round trip."""

import dataclasses
import json

import numpy as np
import pytest

from vtsnn.classify import ClassifyConfig
from vtsnn.config import MODEL_KEYS, RESUME_KEYS, ConfigRecord, TrainConfig


def test_config_validation():
    with pytest.raises(ValueError, match="training must be"):
        TrainConfig(training="backprop")
    with pytest.raises(ValueError, match="mse loss"):
        TrainConfig(training="itbp", loss="mse")
    with pytest.raises(ValueError, match="decoder must be one of"):
        TrainConfig(decoder="mpd_early")
    assert TrainConfig(training="stbp").temporal_grad is True
    assert TrainConfig(training="itbp").temporal_grad is False
    assert TrainConfig(training="itbp", temporal_grad=True).loss == "bitplane"
    with pytest.raises(ValueError, match="loss must be one of bitplane, bitplane-squared"):
        TrainConfig(loss="bitplane_squared")
    assert TrainConfig.from_dict(TrainConfig(channels=(4, 8)).to_dict()) == TrainConfig(channels=(4, 8))
    with pytest.raises(ValueError, match="clip_grad must be 0 .off. or a positive number, got -1"):
        TrainConfig(clip_grad=-1)
    with pytest.raises(ValueError, match="clip_grad must be 0 .off. or a positive number, got inf"):
        TrainConfig(clip_grad=float("inf"))
    with pytest.raises(ValueError, match="shift must be 0 .off. or a number of pixels, got -1"):
        TrainConfig(shift=-1)


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, "lr must be a positive number, got 0.0"),
    ("lr", -1e-3, "lr must be a positive number"),
    ("lr", float("nan"), "lr must be a positive number, got nan"),
    ("weight_decay", -0.1, "weight_decay must be 0 .off. or a positive number"),
    ("decoupled_decay", True, "decoupled_decay changes how weight_decay acts: it needs a weight_decay above 0"),
    ("init_gain", 0.0, "init_gain must be a positive number"),
    ("v_threshold", 0.0, "v_threshold must be a positive number, got 0.0"),
    ("output_threshold", -0.077, "output_threshold must be a positive number, got -0.077"),
    ("tau", 0.5, r"tau must be at least 1 \(1: no memory\), got 0.5"),
    ("log_every", 0, "log_every must be at least 1"),
    ("train_limit", 0, "train_limit must be at least 1 or none"),
    ("test_limit", 0, "test_limit must be at least 1 or none"),
    ("init_from", " ", "init_from must be a run or checkpoint folder"),
    ("channels", (16, 0, 64), r"channels must be one or more whole numbers of at least 1, got \(16, 0, 64\)"),
    ("channels", (), "channels must be one or more whole numbers"),
    ("channels", (16, 2.5), "channels must be one or more whole numbers"),
    ("channels", (16, True), "channels must be one or more whole numbers"),
])
def test_settings_out_of_range_are_refused_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})
    if field in dataclasses.asdict(ClassifyConfig()):         # the classifier shares the setting
        with pytest.raises(ValueError, match=message):
            ClassifyConfig(**{field: value})


def test_the_edges_of_the_ranges_are_accepted():
    TrainConfig(tau=1.0, weight_decay=0.0, log_every=1, train_limit=1, test_limit=1, lr=1e-9, init_from="runs/a")


@pytest.mark.parametrize("field, value, phrase", [
    ("train_limit", (3, 4), "train_limit must be int or None"),
    ("epochs", 2.5, "epochs must be int"),
    ("epochs", True, "epochs must be int"),
    ("lr", "fast", "lr must be float"),
    ("temporal_grad", "yes", "temporal_grad must be bool or None"),
    ("extra", [1], "extra must be dict"),
])
def test_fields_of_the_wrong_type_are_refused_by_name(field, value, phrase):
    with pytest.raises(ValueError, match=phrase):
        TrainConfig(**{field: value})


def test_ints_fit_float_fields_and_lists_fit_tuples():
    # JSON and --override write 1.0 as 1, and JSON has no tuples.
    config = TrainConfig(lr=1, noise=0, channels=[4, 8])
    assert config.lr == 1 and config.channels == (4, 8)


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), train_limit=np.int32(7))
    assert (config.epochs, config.lr, config.train_limit) == (3, 0.5, 7)
    assert type(config.epochs) is int and type(config.lr) is float and type(config.train_limit) is int
    json.dumps(config.to_dict())                                 # numpy scalars would not serialize
    with pytest.raises(ValueError, match="epochs must be int"):
        TrainConfig(epochs=np.float64(3.0))
    channels = TrainConfig(channels=[np.int64(4), np.int32(8)]).channels
    assert channels == (4, 8) and all(type(width) is int for width in channels)


def test_unknown_keys_are_refused_by_name():
    payload = {**TrainConfig().to_dict(), "learning_rate": 0.1}
    with pytest.raises(ValueError, match=r"unknown configuration keys \['learning_rate'\]"):
        TrainConfig.from_dict(payload)


def test_a_loss_of_several_terms_is_checked_term_by_term():
    assert TrainConfig(loss="bitplane+decoded-flip", temporal_grad=True).loss_terms == ["bitplane", "decoded-flip"]
    with pytest.raises(ValueError, match="names a term twice"):
        TrainConfig(loss="bitplane+bitplane")
    with pytest.raises(ValueError, match="needs the uwd decoder"):
        TrainConfig(loss="bitplane-residual", decoder="mpd")


def test_the_model_keys_are_fields_and_resuming_may_change_only_the_epochs_and_logging():
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(MODEL_KEYS) <= fields
    assert fields - set(RESUME_KEYS) == {"epochs", "extra", "log_every"}


def test_any_dataclass_can_be_a_checked_config_record():
    @dataclasses.dataclass
    class Tiny(ConfigRecord):
        steps: int = 1

        def __post_init__(self):
            self.check_types()
            self.require([(self.steps > 0, "steps must be positive")])

    assert Tiny.from_dict(Tiny(3).to_dict()) == Tiny(3)
    with pytest.raises(ValueError, match="steps must be int"):
        Tiny("3")
    with pytest.raises(ValueError, match="steps must be positive"):
        Tiny(0)
