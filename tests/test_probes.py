"""Per-layer firing rates (vtsnn.probes)."""

import torch

from vtsnn.neurons import IF
from vtsnn.probes import FiringRates
from vtsnn.config import TrainConfig
from vtsnn.train import build_model


def spikes(seed=0, shape=(8, 2, 1, 16, 16)):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_rates_are_the_fraction_of_ones_each_layer_emitted():
    torch.manual_seed(0)
    model = build_model(TrainConfig(channels=(4, 8), init="spiking"))
    outputs = {}
    hooks = [module.register_forward_hook(lambda m, i, out, name=name: outputs.setdefault(name, []).append(out))
             for name, module in model.named_modules() if isinstance(module, IF)]
    with torch.inference_mode(), FiringRates(model) as probe:
        model(spikes(0))
        model(spikes(1, shape=(8, 3, 1, 16, 16)))
    for hook in hooks:
        hook.remove()
    rates = probe.rates()
    assert list(rates) == list(outputs) and list(rates)[-1] == "output_neuron"
    for name, seen in outputs.items():
        expected = sum(float(out.sum()) for out in seen) / sum(out.numel() for out in seen)
        assert abs(rates[name] - expected) < 1e-12
    assert any(0 < rate < 1 for rate in rates.values())


def test_hooks_are_removed_and_the_ann_has_no_rates():
    torch.manual_seed(0)
    model = build_model(TrainConfig(channels=(4, 8)))
    with torch.inference_mode(), FiringRates(model) as probe:
        model(spikes())
    before = probe.rates()
    with torch.inference_mode():
        model(spikes(1))
    assert probe.rates() == before
    assert all(not module._forward_hooks for module in model.modules())
    ann = build_model(TrainConfig(channels=(4, 8), training="ann"))
    with torch.inference_mode(), FiringRates(ann) as probe:
        ann(torch.rand(2, 1, 16, 16))
    assert probe.rates() == {}
