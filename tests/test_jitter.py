import pytest
import torch

from vtsnn.config import TrainConfig
from vtsnn.jitter import jitter_factors, output_jittered, scaled_input
from vtsnn.neurons import IF
from vtsnn.train import build_model


def test_factors_lie_in_their_range_one_per_image_and_step_and_repeat_with_the_seed():
    draw = lambda: jitter_factors(0.1, 8, 5, torch.Generator().manual_seed(3))   # noqa: E731
    factors = draw()
    assert factors.shape == (8, 5, 1, 1, 1)
    assert factors.min() >= 0.9 and factors.max() <= 1.1
    assert factors.std() > 0.02                     # drawn, not all 1
    assert torch.equal(factors, draw())
    assert torch.equal(jitter_factors(0.0, 2, 3, torch.Generator()), torch.ones(2, 3, 1, 1, 1))


@pytest.mark.parametrize("amount", [-0.1, 1.0, 2.0])
def test_factors_refuse_an_amount_outside_0_to_1(amount):
    with pytest.raises(ValueError, match="output jitter must be in"):
        jitter_factors(amount, 8, 2, torch.Generator())


def test_scaled_input_moves_a_neuron_across_its_threshold_inside_the_block_only():
    neuron = IF(v_threshold=1.0)
    current = torch.full((1, 2, 1), 0.95)               # one step, two images, just under threshold
    factors = torch.tensor([1.1, 0.9]).reshape(1, 2, 1)
    with scaled_input(neuron, factors):
        inside = neuron(current)
    assert inside.flatten().tolist() == [1.0, 0.0]      # 1.045 fires, 0.855 does not
    assert neuron(current).flatten().tolist() == [0.0, 0.0]
    assert not neuron._forward_pre_hooks


def test_scaled_input_keeps_a_bf16_current_in_bf16():
    seen = []
    module = torch.nn.Identity()
    module.register_forward_hook(lambda _m, args, _out: seen.append(args[0].dtype))
    with scaled_input(module, torch.full((1, 1), 1.05)):
        module(torch.ones(1, 1, dtype=torch.bfloat16))
    assert seen == [torch.bfloat16]


def test_output_jittered_scales_only_the_output_neuron_and_nothing_without_factors():
    torch.manual_seed(0)
    model = build_model(TrainConfig(channels=(4, 8), init="spiking")).eval()
    torch.nn.init.constant_(model.head.weight, 1.0)      # so the output fires wherever the layer below does
    spikes = (torch.rand(8, 2, 1, 28, 28) < 0.3).float()
    with torch.no_grad():
        plain = model(spikes)
        with output_jittered(model, None):
            assert torch.equal(model(spikes), plain)
        with output_jittered(model, torch.zeros(8, 2, 1, 1, 1)):     # no current: the output never fires
            assert model(spikes).sum() == 0
        assert torch.equal(model(spikes), plain)
    assert plain.sum() > 0


def test_config_refuses_jitter_out_of_range_or_for_the_ann():
    with pytest.raises(ValueError, match="output_jitter must be 0 .off. or in .0, 1., got 1.5"):
        TrainConfig(output_jitter=1.5)
    with pytest.raises(ValueError, match="output_jitter must be 0 .off. or in .0, 1., got -0.1"):
        TrainConfig(output_jitter=-0.1)
    with pytest.raises(ValueError, match="the ANN twin has none"):
        TrainConfig(training="ann", output_jitter=0.1)
    assert TrainConfig(output_jitter=0.1).output_jitter == 0.1
