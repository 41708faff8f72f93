"""Per-layer firing rates of an untrained U-VTSNN on noisy images, for several initializations.

    python scripts/init_firing_rates.py [--data-dir DIR] [--dataset mnist] [--noise 0.2] [--images 100] [--lif]

Shows why the default PyTorch initialization learns slowly: its deep layers are
silent, so the only signal that reaches the output comes through the top skip.
``--lif`` adds LIF networks at several time constants and gains (LIF scales its
input by 1/tau, and the initialization does not know that). The last column is the
mean over the hidden layers (all but the output).
"""

from __future__ import annotations

import argparse

import torch

from vtsnn.data import add_noise, load_dataset
from vtsnn.neurons import IF
from vtsnn.config import TrainConfig
from vtsnn.train import build_model, encode_input

SETTINGS = [("default", 1.0), ("spiking", 1.0), ("spiking", 1.5), ("spiking", 2.0)]
# (tau, gain): the recipe's gain 1.5, higher gains at the authors' tau 1.1, gain x tau,
# and at tau 2 (residual-tau's best) the gains above it; at tau 4 and 8 the gains that match
# tau 2 at gain 4 (flip-lif-tau's).
LIF_SETTINGS = [(1.1, 1.5), (1.1, 2.0), (1.1, 2.5), (1.1, 3.0), (2.0, 1.5), (2.0, 3.0), (2.0, 4.0), (2.0, 5.0),
                (4.0, 1.5), (4.0, 6.0), (4.0, 7.0), (8.0, 13.0)]


def layer_rates(model, spikes) -> list[float]:
    rates = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: rates.append(out.float().mean().item()))
             for m in model.modules() if isinstance(m, IF)]
    with torch.inference_mode():
        model(spikes)
    for hook in hooks:
        hook.remove()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--lif", action="store_true", help="also LIF networks at several time constants and gains")
    args = parser.parse_args()
    clean, _ = load_dataset(args.dataset, "test", args.data_dir)
    noisy = add_noise(clean[:args.images], args.noise, torch.Generator().manual_seed(0))
    spikes = encode_input(noisy, TrainConfig())
    print("firing rate per spiking layer (encoder, decoder, output), seed 0")
    for init, gain in SETTINGS:
        torch.manual_seed(0)
        model = build_model(TrainConfig(init=init, init_gain=gain))
        label = "default (PyTorch)" if init == "default" else f"spiking, gain {gain}"
        print_rates(label, layer_rates(model, spikes))
    for tau, gain in LIF_SETTINGS if args.lif else []:
        torch.manual_seed(0)
        model = build_model(TrainConfig(neuron="lif", tau=tau, init="spiking", init_gain=gain))
        print_rates(f"LIF tau {tau:g}, gain {gain:g}", layer_rates(model, spikes))


def print_rates(label: str, rates: list[float]) -> None:
    hidden = rates[:-1]
    print(f"{label:22s} " + " ".join(f"{r:.3f}" for r in rates) + f"   mean {sum(hidden) / len(hidden):.3f}")


if __name__ == "__main__":
    main()
