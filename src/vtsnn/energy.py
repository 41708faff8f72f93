"""Operation counts and energy of spiking and ANN denoisers (paper Sec. 4.2, Table 3).

An ANN layer multiplies and accumulates (MAC) every weight with every input it
touches, whatever the input's value. A spiking layer does work only when an input
neuron fires: each spike is added (an accumulate, AC) to every synapse it reaches,
its *fan-out*. For one image:

    ANN MACs   conv              H_out * W_out * C_in * C_out * K^2 / groups
               transposed conv   H_in  * W_in  * C_in * C_out * K^2 / groups
               linear            in_features * out_features
    ANN FLOPs  2 * MACs (the paper's way of counting)
    SNN ACs    exact             sum over time steps and input spikes of the spike's fan-out
               paper's formula   firing rate * T * ANN MACs

The exact count is what a layer run with all-ones weights outputs, summed:
``conv(spikes, ones)`` adds one per (spike, synapse) pair, so kernel taps that fall
on the zero padding at the borders, which the ANN count includes, are not counted.
By linearity the spikes are first summed over the input channels of each group, so
the all-ones layer has one channel per group instead of ``C_in * C_out`` (same
result, far cheaper). The paper's formula charges every spike the fan-out of an
interior one, so it is exact for transposed 2x2/2 convolutions and linear layers,
and a slight overestimate for padded convolutions.

Energy = MACs * E_MAC for the ANN and ACs * E_AC for the SNN, with per-operation
energies from Horowitz (ISSCC 2014) at 45 nm (:data:`PRESETS`); the paper uses the
32-bit float figures, 4.6 pJ per MAC and 0.9 pJ per AC.

*Decisions:*

- Every layer of a spiking model counts as AC, the first one included: its input
  is the UWE (or TTFS) spike code of the image, binary like every other layer's. The
  ANN twin's first layer, fed real pixels, is a MAC layer like all the others.
- Only the synaptic operations of Conv2d, ConvTranspose2d and Linear layers are
  counted, as in the paper: membrane updates, max pooling (an OR on spikes) and
  the non-spiking read-out of VTLeNet's last layer are left out; the models have
  no biases.
- Firing rates are measured with forward hooks on those layers (their input), so
  the models are counted exactly as they run, with no change to them. A spiking
  layer whose input is not 0/1 is an error: ACs would not mean anything there.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import IF

COUNTED_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
PICOJOULES_PER_NANOJOULE = 1000.0


# ============================================================================ presets

@dataclass(frozen=True)
class EnergyPreset:
    """Energy of one multiply-accumulate and one accumulate, in picojoules."""

    name: str
    mac_pj: float
    ac_pj: float
    source: str


_HOROWITZ = "Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V"

PRESETS: dict[str, EnergyPreset] = {
    # The paper's figures. Horowitz 2014's table: 32-bit float add 0.9 pJ, multiply
    # 3.7 pJ, so a MAC is 3.7 + 0.9 = 4.6 pJ and an AC (add only) 0.9 pJ.
    "45nm-fp32": EnergyPreset("45nm-fp32", 4.6, 0.9, _HOROWITZ + ": fp32 mult 3.7 + add 0.9"),
    # Same table, 16-bit float: add 0.4 pJ, multiply 1.1 pJ.
    "45nm-fp16": EnergyPreset("45nm-fp16", 1.5, 0.4, _HOROWITZ + ": fp16 mult 1.1 + add 0.4"),
    # Same table, 8-bit integer: add 0.03 pJ, multiply 0.2 pJ. (Real int8 hardware
    # usually accumulates into 32 bits, 0.1 pJ per add; kept at 8 bits for symmetry.)
    "45nm-int8": EnergyPreset("45nm-int8", 0.23, 0.03, _HOROWITZ + ": int8 mult 0.2 + add 0.03"),
}
DEFAULT_PRESET = "45nm-fp32"


def get_preset(preset: str | EnergyPreset) -> EnergyPreset:
    if isinstance(preset, EnergyPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown energy preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


# ============================================================================ one layer

@dataclass
class LayerCount:
    """Operations of one layer call for one image (summed over time steps for the SNN).

    ``input_rate``, ``snn_ac_exact`` and ``snn_ac_paper_formula`` are ``None`` for an
    ANN. ``input_shape`` and ``output_shape`` are per image and per time step.
    """

    name: str
    kind: str                          # "conv", "conv_transpose" or "linear"
    input_shape: tuple
    output_shape: tuple
    params: int
    mac: int
    flops: int
    time_steps: int | None
    input_rate: float | None
    snn_ac_exact: float | None
    snn_ac_paper_formula: float | None

    def to_dict(self) -> dict:
        payload = dataclasses.asdict(self)
        payload["input_shape"] = list(self.input_shape)
        payload["output_shape"] = list(self.output_shape)
        return payload


def layer_kind(layer: nn.Module) -> str:
    if isinstance(layer, nn.ConvTranspose2d):
        return "conv_transpose"
    if isinstance(layer, nn.Conv2d):
        return "conv"
    if isinstance(layer, nn.Linear):
        return "linear"
    raise TypeError(f"no operation count for {type(layer).__name__}")


def macs_per_image(layer: nn.Module, input_shape: tuple, output_shape: tuple) -> int:
    """ANN multiply-accumulates of one call on one image (shapes without the batch dim)."""
    kind = layer_kind(layer)
    if kind == "linear":
        positions = math.prod(input_shape[:-1])     # 1 for a flat [features] input
        return positions * layer.in_features * layer.out_features
    taps = math.prod(layer.kernel_size) * layer.in_channels * layer.out_channels // layer.groups
    if kind == "conv":
        return math.prod(output_shape[1:]) * taps    # every output position reads K^2 C_in/g inputs
    return math.prod(input_shape[1:]) * taps         # every input position writes K^2 C_out/g outputs


def synaptic_operations(layer: nn.Module, spikes: torch.Tensor) -> float:
    """Exact number of (spike, synapse) pairs: ``layer(spikes)`` with all-ones weights, summed.

    ``spikes`` is what the layer receives (any batch size). Input channels of a group
    share their fan-out, so they are summed first and the ones-layer has one input
    and one output channel per group; its result times ``C_out / groups`` is the sum
    the full all-ones layer would give. Sums are taken in float64 to stay exact.
    """
    kind = layer_kind(layer)
    if kind == "linear":
        return spikes.sum(dtype=torch.float64).item() * layer.out_features
    groups = layer.groups
    per_group = spikes.unflatten(1, (groups, layer.in_channels // groups)).sum(dim=2)
    ones = torch.ones((groups, 1, *layer.kernel_size), dtype=per_group.dtype, device=per_group.device)
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=groups)
    if kind == "conv":
        if layer.padding_mode != "zeros":
            raise ValueError(f"exact counts need zero padding, got padding_mode={layer.padding_mode!r}")
        reached = F.conv2d(per_group, ones, **options)
    else:
        reached = F.conv_transpose2d(per_group, ones, output_padding=layer.output_padding, **options)
    return reached.sum(dtype=torch.float64).item() * (layer.out_channels // groups)


# ============================================================================ counting

@dataclass
class _Tally:
    """Running sums of one layer call over the batches."""

    name: str
    layer: nn.Module
    input_shape: tuple = ()
    output_shape: tuple = ()
    spikes: float = 0.0
    input_elements: int = 0
    operations: float = 0.0


def is_spiking_model(model: nn.Module) -> bool:
    return any(isinstance(module, IF) for module in model.modules())


class OperationCounter:
    """Counts the operations of a model over batches fed to :meth:`run`; use as a context manager.

    Hooks on every Conv2d, ConvTranspose2d and Linear layer see each call's input.
    A layer called twice in one forward pass (shared weights) gets one entry per call,
    named ``name#2`` and so on.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.spiking = is_spiking_model(model)
        self.names = {module: name for name, module in model.named_modules() if isinstance(module, COUNTED_LAYERS)}
        self.tallies: list[_Tally] = []
        self.images = 0
        self.time_steps: int | None = None
        self._handles = []
        self._call_index = 0
        self._folded_batch = 0
        self._layout_known = False     # set after the first pass: later passes must repeat its calls

    def __enter__(self) -> "OperationCounter":
        for layer in self.names:
            self._handles.append(layer.register_forward_hook(self._record))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @torch.inference_mode()
    def run(self, batch: torch.Tensor, arithmetic=nullcontext) -> None:
        """One forward pass: spikes ``[T, B, ...]`` for a spiking model, images ``[B, ...]`` for an ANN.

        ``arithmetic()`` is entered around the pass, e.g. bf16 autocast for a model that
        runs in bf16; the counting itself stays in float32/float64, where it is exact.
        """
        if not self._handles:
            raise RuntimeError("OperationCounter.run must be called inside 'with OperationCounter(model)'")
        steps, images = self._batch_layout(batch)
        self._call_index = 0
        self._folded_batch = steps * images
        device = next(self.model.parameters()).device
        self.model.eval()
        with arithmetic():
            self.model(batch.to(device=device, dtype=torch.float32))
        if self._call_index != len(self.tallies):
            raise ValueError("the model ran fewer layers on this batch than on the first one")
        self._layout_known = True
        self.images += images

    def _batch_layout(self, batch: torch.Tensor) -> tuple[int, int]:
        """(time steps, images) of a batch; time steps are 1 for an ANN."""
        if not self.spiking:
            return 1, batch.shape[0]
        if batch.dim() < 3:
            raise ValueError(f"a spiking model takes spikes [T, B, ...], got shape {tuple(batch.shape)}")
        if self.time_steps is not None and batch.shape[0] != self.time_steps:
            raise ValueError(f"every batch needs the same time steps, got {batch.shape[0]} after {self.time_steps}")
        self.time_steps = batch.shape[0]
        return batch.shape[0], batch.shape[1]

    def _record(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        if x.shape[0] != self._folded_batch:
            raise ValueError(f"layer {self.names[layer]} got a batch of {x.shape[0]}, expected time steps x images "
                             f"= {self._folded_batch}; only time-folded layers can be counted")
        tally = self._tally_for_call(layer, tuple(x.shape[1:]), tuple(output.shape[1:]))
        if self.spiking:
            with torch.autocast(x.device.type, enabled=False):     # bf16 cannot count past 256 exactly
                self._count_spikes(tally, layer, x.float())
        self._call_index += 1

    @staticmethod
    def _count_spikes(tally: "_Tally", layer: nn.Module, x: torch.Tensor) -> None:
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"layer {tally.name} of a spiking model got non-binary input; ACs need spikes")
        tally.spikes += x.sum(dtype=torch.float64).item()
        tally.input_elements += x.numel()
        tally.operations += synaptic_operations(layer, x)

    def _tally_for_call(self, layer: nn.Module, input_shape: tuple, output_shape: tuple) -> _Tally:
        if not self._layout_known:                     # first forward pass: calls appear in order
            earlier_calls = sum(t.layer is layer for t in self.tallies)
            name = self.names[layer] + (f"#{earlier_calls + 1}" if earlier_calls else "")
            self.tallies.append(_Tally(name, layer, input_shape, output_shape))
        tally = self.tallies[self._call_index] if self._call_index < len(self.tallies) else None
        if tally is None or tally.layer is not layer or tally.input_shape != input_shape:
            raise ValueError("the model ran different layers or shapes on different batches; count one size at a time")
        return tally

    def counts(self) -> list[LayerCount]:
        if not self.images:
            raise ValueError("no images were counted")
        return [self._layer_count(tally) for tally in self.tallies]

    def _layer_count(self, tally: _Tally) -> LayerCount:
        mac = macs_per_image(tally.layer, tally.input_shape, tally.output_shape)
        rate = exact = paper = None
        if self.spiking:
            rate = tally.spikes / tally.input_elements
            exact = tally.operations / self.images
            paper = rate * self.time_steps * mac
        return LayerCount(name=tally.name, kind=layer_kind(tally.layer), input_shape=tally.input_shape,
                          output_shape=tally.output_shape,
                          params=sum(p.numel() for p in tally.layer.parameters()), mac=mac, flops=2 * mac,
                          time_steps=self.time_steps, input_rate=rate, snn_ac_exact=exact,
                          snn_ac_paper_formula=paper)


def count_operations(model: nn.Module, spikes_or_images: torch.Tensor, batch_size: int = 100) -> list[LayerCount]:
    """Per-layer operations of ``model`` for one image, averaged over the inputs given.

    Args:
        model: a spiking model (U-VTSNN, VTLeNet: input spikes ``[T, N, C, H, W]``) or
            an ANN (``UNetANN``: input images ``[N, C, H, W]``, MACs only).
        spikes_or_images: the encoded inputs the model runs on.
        batch_size: images per forward pass.

    Returns:
        one :class:`LayerCount` per layer call, in forward order. The SNN counts are
        ``snn_ac_exact`` (spikes times their exact fan-out) and ``snn_ac_paper_formula``
        (the paper's formula: firing rate x T x ANN MACs).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with OperationCounter(model) as counter:
        image_dim = 1 if counter.spiking else 0
        for batch in torch.split(spikes_or_images, batch_size, dim=image_dim):
            counter.run(batch)
    return counter.counts()


def count_operations_on_images(model: nn.Module, images: torch.Tensor, encode, batch_size: int = 100,
                               arithmetic=nullcontext) -> list[LayerCount]:
    """Like :func:`count_operations` on 8-bit images, encoded one batch at a time by ``encode``.

    Saves memory for large test sets: the spike code is ``T`` times the images' size.
    ``arithmetic()`` is entered around each forward pass (see :meth:`OperationCounter.run`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with OperationCounter(model) as counter:
        for batch in torch.split(images, batch_size):
            counter.run(encode(batch), arithmetic)
    return counter.counts()


# ============================================================================ energy

def _ratio(numerator: float, denominator: float | None) -> float | None:
    """``numerator / denominator``; ``None`` without a denominator or for a silent SNN
    (strict JSON has no infinity)."""
    return numerator / denominator if denominator else None


def _layer_energy(count: LayerCount, preset: EnergyPreset) -> dict:
    spiking = count.snn_ac_exact is not None
    return {**count.to_dict(),
            "ann_energy_pj": count.mac * preset.mac_pj,
            "snn_energy_exact_pj": count.snn_ac_exact * preset.ac_pj if spiking else None,
            "snn_energy_paper_formula_pj": count.snn_ac_paper_formula * preset.ac_pj if spiking else None}


def _totals(counts: list[LayerCount], preset: EnergyPreset) -> dict:
    spiking = bool(counts) and counts[0].snn_ac_exact is not None
    mac = sum(c.mac for c in counts)
    totals = {"params": sum(c.params for c in counts), "mac": mac, "flops": 2 * mac,
              "ann_energy_pj": mac * preset.mac_pj}
    if not spiking:
        return {**totals, "input_rate": None, "snn_ac_exact": None, "snn_ac_paper_formula": None,
                "snn_energy_exact_pj": None, "snn_energy_paper_formula_pj": None,
                "ann_snn_ratio_exact": None, "ann_snn_ratio_paper_formula": None}
    elements = [math.prod(c.input_shape) for c in counts]
    exact = sum(c.snn_ac_exact for c in counts)
    paper = sum(c.snn_ac_paper_formula for c in counts)
    totals.update(
        # Spikes over all layer inputs divided by their size: the model's overall firing rate.
        input_rate=sum(c.input_rate * n for c, n in zip(counts, elements)) / sum(elements),
        snn_ac_exact=exact, snn_ac_paper_formula=paper,
        snn_energy_exact_pj=exact * preset.ac_pj, snn_energy_paper_formula_pj=paper * preset.ac_pj)
    totals["ann_snn_ratio_exact"] = _ratio(totals["ann_energy_pj"], totals["snn_energy_exact_pj"])
    totals["ann_snn_ratio_paper_formula"] = _ratio(totals["ann_energy_pj"], totals["snn_energy_paper_formula_pj"])
    return totals


def energy_report(counts: list[LayerCount], preset: str | EnergyPreset = DEFAULT_PRESET) -> dict:
    """Per-layer and total operations and energies (pJ per image), JSON-serializable.

    ANN energy is MACs x E_MAC; SNN energy is ACs x E_AC, from the exact count and from
    the paper's formula; ``ann_snn_ratio_*`` is ANN energy over SNN energy (``None``
    for an ANN model, which has no SNN count, and for an SNN that never fired).
    """
    preset = get_preset(preset)
    spiking = bool(counts) and counts[0].snn_ac_exact is not None
    return {"preset": preset.name, "mac_pj": preset.mac_pj, "ac_pj": preset.ac_pj, "source": preset.source,
            "spiking": spiking, "time_steps": counts[0].time_steps if counts else None,
            "layers": [_layer_energy(count, preset) for count in counts],
            "totals": _totals(counts, preset)}


# ============================================================================ table

def _integer(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _nanojoules(picojoules) -> str:
    return "-" if picojoules is None else f"{picojoules / PICOJOULES_PER_NANOJOULE:,.2f}"


def _rate(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _ratio_text(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def format_table(report: dict) -> str:
    """A Markdown table of :func:`energy_report`: one row per layer, a total row, the ratios."""
    header = ["layer", "kind", "output", "params", "input rate", "MACs", "ACs exact", "ACs paper",
              "E ANN (nJ)", "E SNN exact (nJ)", "E SNN paper (nJ)"]
    rows = []
    for layer in report["layers"]:
        rows.append([layer["name"], layer["kind"], _shape(layer["output_shape"]), _integer(layer["params"]),
                     _rate(layer["input_rate"]), _integer(layer["mac"]), _integer(layer["snn_ac_exact"]),
                     _integer(layer["snn_ac_paper_formula"]), _nanojoules(layer["ann_energy_pj"]),
                     _nanojoules(layer["snn_energy_exact_pj"]), _nanojoules(layer["snn_energy_paper_formula_pj"])])
    totals = report["totals"]
    rows.append(["**total**", "", "", _integer(totals["params"]), _rate(totals["input_rate"]),
                 _integer(totals["mac"]), _integer(totals["snn_ac_exact"]), _integer(totals["snn_ac_paper_formula"]),
                 _nanojoules(totals["ann_energy_pj"]), _nanojoules(totals["snn_energy_exact_pj"]),
                 _nanojoules(totals["snn_energy_paper_formula_pj"])])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("")
    lines.append(f"Per image; preset {report['preset']}: MAC {report['mac_pj']} pJ, AC {report['ac_pj']} pJ "
                 f"({report['source']}). FLOPs = 2 x MACs = {_integer(totals['flops'])}.")
    if report["spiking"]:
        lines.append(f"ANN/SNN energy ratio: {_ratio_text(totals['ann_snn_ratio_exact'])} (exact ACs), "
                     f"{_ratio_text(totals['ann_snn_ratio_paper_formula'])} (paper's formula: "
                     f"rate x T x MACs, T = {report['time_steps']}).")
    return "\n".join(lines)
