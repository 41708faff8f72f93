"""The paper's networks: U-VTSNN (Fig. 3), its same-architecture ANN, and VTLeNet.

Spiking models take spikes ``[T, B, C, H, W]`` and return spikes; encoding the input
and decoding the output (``vtsnn.coding``) stay outside, so any code can be plugged in.

U-VTSNN, with the default sizes (``channels=(16, 32, 64)``, one input channel):

    enc1: conv3x3 C->16, IF, conv3x3 16->16, IF                     (28x28)
    enc2: maxpool 2 (a logical OR on spikes), conv 16->32, IF, conv 32->32, IF   (14x14)
    enc3: maxpool 2, conv 32->64, IF, conv 64->64, IF                (7x7)
    dec2: transposed conv 2x2/2 64->32, IF, concat enc2, conv 64->32, IF, conv 32->32, IF
    dec1: transposed conv 2x2/2 32->16, IF, concat enc1, conv 32->16, IF, conv 16->16, IF
    head: conv1x1 16->1, output IF with V_th = 0.077

No biases and no normalization (the paper: "each layer's bias is set to False"):
116,384 weights for one input channel.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import TimeFolded, cat_channels, fold_time, unfold_time
from .neurons import SURROGATE_ALPHA, make_neuron

OUTPUT_THRESHOLD = 0.077
# The output neuron's attribute name in UVTSNN, and so its name in per-layer firing rates.
OUTPUT_LAYER = "output_neuron"


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)


def up2x2(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)


class UNetTopology(nn.Module):
    """The shared U-Net wiring; subclasses choose the activation and the time layout."""

    def __init__(self, in_channels: int, out_channels: int, channels: tuple[int, ...], activation):
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two levels, got {channels}")
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.levels = len(channels)
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in channels:
            self.encoders.append(nn.ModuleList([conv3x3(previous, width), activation(),
                                                conv3x3(width, width), activation()]))
            previous = width
        self.decoders = nn.ModuleList()
        for width in reversed(channels[:-1]):
            self.decoders.append(nn.ModuleList([up2x2(previous, width), activation(),
                                                conv3x3(2 * width, width), activation(),
                                                conv3x3(width, width), activation()]))
            previous = width
        self.head = nn.Conv2d(previous, out_channels, kernel_size=1, bias=False)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be divisible by this (one halving per level)."""
        return 2 ** (self.levels - 1)

    def check_input_size(self, height: int, width: int) -> None:
        m = self.size_multiple
        if height % m or width % m:
            raise ValueError(f"input height and width must be divisible by {m}, got {height}x{width}; pad the image")


class UVTSNN(UNetTopology):
    """The fully spiking U-Net of the paper (Fig. 3): spikes ``[T, B, C, H, W]`` in and out.

    Args:
        in_channels: input channels (1 for the paper's gray images).
        out_channels: output channels.
        channels: widths of the encoder levels.
        neuron: ``"if"`` or ``"lif"``.
        v_threshold: threshold of every hidden neuron.
        output_threshold: threshold of the output neuron (the paper: 0.077).
        tau: LIF time constant.
        v_reset: ``None`` = soft reset.
        temporal_grad: ``False`` = ITBP (no gradient through time), ``True`` = BPTT.
        detach_reset: with ``temporal_grad``, no gradient through the soft reset.
        surrogate_alpha: width parameter of the arctangent surrogate (2: DESIGN.md's).
        backend: neuron kernels, ``"fused"`` or ``"reference"``.

    ``detach_reset`` and ``surrogate_alpha`` change training only; the forward pass is the same.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: tuple[int, ...] = (16, 32, 64),
                 neuron: str = "if", v_threshold: float = 1.0, output_threshold: float = OUTPUT_THRESHOLD,
                 tau: float = 1.1, v_reset: float | None = None, temporal_grad: bool = False,
                 backend: str = "fused", detach_reset: bool = False, surrogate_alpha: float = SURROGATE_ALPHA):
        options = dict(tau=tau, v_reset=v_reset, temporal_grad=temporal_grad, backend=backend,
                       detach_reset=detach_reset, surrogate_alpha=surrogate_alpha)
        super().__init__(in_channels, out_channels, channels,
                         lambda: make_neuron(neuron, v_threshold=v_threshold, **options))
        self.output_neuron = make_neuron(neuron, v_threshold=output_threshold, **options)   # OUTPUT_LAYER

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        if spikes.dim() != 5:
            raise ValueError(f"UVTSNN expects spikes [T, B, C, H, W], got shape {tuple(spikes.shape)}")
        steps = spikes.shape[0]
        self.check_input_size(*spikes.shape[-2:])

        def conv(layer, x):  # stateless: run once on the time-folded batch
            return unfold_time(layer(fold_time(x)), steps)

        skips = []
        x = spikes
        for level, (conv_a, neuron_a, conv_b, neuron_b) in enumerate(self.encoders):
            if level:
                x = unfold_time(nn.functional.max_pool2d(fold_time(x), 2), steps)
            x = neuron_b(conv(conv_b, neuron_a(conv(conv_a, x))))
            skips.append(x)
        for (up, neuron_up, conv_a, neuron_a, conv_b, neuron_b), skip in zip(self.decoders, reversed(skips[:-1])):
            x = cat_channels([skip, neuron_up(conv(up, x))])
            x = neuron_b(conv(conv_b, neuron_a(conv(conv_a, x))))
        return self.output_neuron(conv(self.head, x))


class UNetANN(UNetTopology):
    """The "same architecture ANN" of Table 2: the U-VTSNN wiring with ReLU, real-valued I/O.

    Takes images ``[B, C, H, W]`` (the paper's setting: noisy pixels in ``[0, 1]``) and
    returns a real-valued image of the same size (no output activation).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__(in_channels, out_channels, channels, lambda: nn.ReLU(inplace=True))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4:
            raise ValueError(f"UNetANN expects images [B, C, H, W], got shape {tuple(image.shape)}")
        self.check_input_size(*image.shape[-2:])
        skips = []
        x = image
        for level, (conv_a, act_a, conv_b, act_b) in enumerate(self.encoders):
            if level:
                x = nn.functional.max_pool2d(x, 2)
            x = act_b(conv_b(act_a(conv_a(x))))
            skips.append(x)
        for (up, act_up, conv_a, act_a, conv_b, act_b), skip in zip(self.decoders, reversed(skips[:-1])):
            x = torch.cat([skip, act_up(up(x))], dim=1)
            x = act_b(conv_b(act_a(conv_a(x))))
        return self.head(x)


class VTLeNet(nn.Module):
    """LeNet-5 with spiking neurons and UWE input, for classification (Fig. 6).

    conv5x5 C->6 (pad 2), IF, maxpool 2, conv5x5 6->16, IF, maxpool 2, fc ->120, IF,
    fc 120->84, IF, fc 84->classes. The last layer is not spiking: its per-step outputs
    are read out with the UWD weights ``2^(T-1-t)`` normalized to sum 1, so a time step
    counts as much as the input bit it mostly carries. *Decision* (the paper does not
    say how the class is read out).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, steps: int = 8,
                 neuron: str = "if", v_threshold: float = 1.0, tau: float = 1.1, temporal_grad: bool = False,
                 backend: str = "fused"):
        super().__init__()
        if not 1 <= steps <= 8:
            raise ValueError(f"VTLeNet takes T from 1 to 8 time steps (UWE bits), got {steps}")
        self.steps = steps
        options = dict(v_threshold=v_threshold, tau=tau, temporal_grad=temporal_grad, backend=backend)
        feature_size = ((image_size // 2) - 4) // 2
        self.features = nn.ModuleList([
            TimeFolded(nn.Conv2d(in_channels, 6, 5, padding=2, bias=False)), make_neuron(neuron, **options),
            TimeFolded(nn.MaxPool2d(2)),
            TimeFolded(nn.Conv2d(6, 16, 5, bias=False)), make_neuron(neuron, **options),
            TimeFolded(nn.MaxPool2d(2)),
            TimeFolded(nn.Flatten()),
            TimeFolded(nn.Linear(16 * feature_size * feature_size, 120, bias=False)), make_neuron(neuron, **options),
            TimeFolded(nn.Linear(120, 84, bias=False)), make_neuron(neuron, **options),
            TimeFolded(nn.Linear(84, num_classes, bias=False)),
        ])
        weights = torch.pow(2.0, torch.arange(steps - 1, -1, -1, dtype=torch.float32))
        self.register_buffer("readout_weights", weights / weights.sum(), persistent=False)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, C, H, W]`` -> class logits ``[B, classes]``."""
        if spikes.dim() != 5 or spikes.shape[0] != self.steps:
            raise ValueError(f"VTLeNet expects spikes [{self.steps}, B, C, H, W], got shape {tuple(spikes.shape)}")
        x = spikes
        for layer in self.features:
            x = layer(x)
        return torch.tensordot(self.readout_weights.to(x.dtype), x, dims=([0], [0]))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
