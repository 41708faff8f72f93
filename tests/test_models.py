import pytest
import torch

from vtsnn.coding import uwe_encode
from vtsnn.models import OUTPUT_LAYER, UNetANN, UVTSNN, VTLeNet, count_parameters


def random_spikes(*shape, seed=0):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_uvtsnn_has_the_papers_116384_weights():
    assert count_parameters(UVTSNN()) == 116_384
    assert count_parameters(UNetANN()) == 116_384
    assert all(not hasattr(m, "bias") or m.bias is None for m in UVTSNN().modules())


def test_uvtsnn_output_is_binary_spikes_of_the_input_size():
    model = UVTSNN(output_threshold=0.01)
    out = model(random_spikes(8, 2, 1, 28, 28))
    assert out.shape == (8, 2, 1, 28, 28)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("size", [(12, 20), (32, 32), (8, 4)])
def test_uvtsnn_any_size_divisible_by_four_and_any_channels(size):
    model = UVTSNN(in_channels=3, out_channels=3, neuron="lif")
    assert model(random_spikes(4, 1, 3, *size)).shape == (4, 1, 3, *size)


def test_uvtsnn_rejects_sizes_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        UVTSNN()(random_spikes(8, 1, 1, 30, 28))


def test_configurable_widths_change_the_parameter_count():
    small = UVTSNN(channels=(8, 16))
    assert count_parameters(small) < count_parameters(UVTSNN())
    assert small(random_spikes(2, 1, 1, 8, 8)).shape == (2, 1, 1, 8, 8)


def test_output_threshold_defaults_to_the_papers():
    model = UVTSNN()
    assert model.output_neuron.v_threshold == pytest.approx(0.077)
    assert dict(model.named_modules())[OUTPUT_LAYER] is model.output_neuron    # the name firing rates use
    assert {n.v_threshold for n in model.modules() if hasattr(n, "v_threshold") and n is not model.output_neuron} == {1.0}


def test_fused_and_reference_models_give_identical_spikes_and_gradients():
    torch.manual_seed(0)
    fused = UVTSNN(output_threshold=0.05)
    reference = UVTSNN(output_threshold=0.05, backend="reference")
    with torch.no_grad():  # default init is nearly silent; scale it so spikes reach the output
        for p in fused.parameters():
            p.mul_(4)
    reference.load_state_dict(fused.state_dict())
    x = uwe_encode(torch.randint(0, 256, (2, 1, 16, 16), generator=torch.Generator().manual_seed(3)))
    outs = [fused(x), reference(x)]
    assert torch.equal(outs[0], outs[1])
    assert outs[0].sum() > 0
    for out in outs:
        out.sum().backward()
    for p_fused, p_ref in zip(fused.parameters(), reference.parameters()):
        assert torch.equal(p_fused.grad, p_ref.grad)


def test_uvtsnn_output_at_step_t_depends_on_input_steps_up_to_t_only():
    # The premise of scripts/causal_ceiling.py: the MSB of the output sees only the input's MSB plane.
    from vtsnn.train import scale_for_spiking_inputs
    torch.manual_seed(0)
    model = UVTSNN(channels=(4, 8))
    scale_for_spiking_inputs(model, 2.0)                      # PyTorch's default init leaves it silent
    model.head.weight.data.abs_()                             # and an output that fires
    spikes = random_spikes(8, 2, 1, 16, 16)
    with torch.no_grad():
        reference = model(spikes)
        assert 0 < reference.mean() < 1
        for t in range(7):
            changed = spikes.clone()
            changed[t + 1:] = 1 - changed[t + 1:]
            output = model(changed)
            assert torch.equal(output[:t + 1], reference[:t + 1])
            if t == 0:      # (a single flipped LSB plane may change no output spike)
                assert not torch.equal(output[1:], reference[1:])


def test_ann_twin_maps_images_to_images():
    model = UNetANN()
    out = model(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28) and out.dtype == torch.float32


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_vtlenet_classifies_for_every_time_step_count(steps):
    model = VTLeNet(steps=steps)
    logits = model(random_spikes(steps, 3, 1, 28, 28))
    assert logits.shape == (3, 10)
    logits.sum().backward()
    assert model.features[0].module.weight.grad is not None


def test_vtlenet_rejects_bad_step_counts():
    with pytest.raises(ValueError, match="T from 1 to 8"):
        VTLeNet(steps=9)
    with pytest.raises(ValueError, match=r"\[4, B, C, H, W\]"):
        VTLeNet(steps=4)(random_spikes(8, 1, 1, 28, 28))
