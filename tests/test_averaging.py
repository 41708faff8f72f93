"""The moving average of a model's weights: warm-up, updates, swapping in and out."""
import pytest
import torch

from vtsnn.averaging import WeightAverage, warmed_up_decay


def test_decay_warms_up_to_its_cap():
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.999, 90) == pytest.approx(91 / 100)
    assert warmed_up_decay(0.999, 10 ** 6) == 0.999


def test_update_moves_the_average_a_decay_weighted_step_towards_the_weights():
    model = torch.nn.Linear(3, 2, bias=False)
    start = model.weight.detach().clone()
    average = WeightAverage(model, 0.5, updates=10 ** 6)     # past the warm-up: decay 0.5
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update()
    assert torch.allclose(average.average["weight"], start + 0.5)
    assert average.updates == 10 ** 6 + 1


def test_applied_swaps_the_average_in_and_restores_the_raw_weights():
    model = torch.nn.Linear(3, 2, bias=False)
    average = WeightAverage(model, 0.9)
    with torch.no_grad():
        model.weight.mul_(2.0)
    raw = model.weight.detach().clone()
    with average.applied() as kept:
        assert torch.equal(model.weight, average.average["weight"])
        assert torch.equal(kept["weight"], raw)
    assert torch.equal(model.weight, raw)


def test_bad_decay_and_missing_raw_weights_are_refused():
    model = torch.nn.Linear(3, 2)
    for decay in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(model, decay)
    with pytest.raises(ValueError, match="bias"):
        WeightAverage(model, 0.9).load_raw({"weight": model.weight.detach()})
