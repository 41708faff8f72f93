"""Behavioural circuit models of the UWE encoder (a SAR ADC) and the UWD decoder (a DAC).

Section 4.4 of the paper proposes building UWE and UWD in hardware: UWE is a
successive-approximation ADC (comparator + SAR logic + DAC) that resolves one bit per
time step, most significant bit first -- exactly the spike order of
:func:`vtsnn.coding.uwe_encode` -- and UWD is a binary-weighted resistor DAC that
turns the output spike planes back into an analogue value, ``sum_t 2^(n-1-t) o_t``.
This module simulates both behaviourally (no transistor-level effects), vectorised
over pixels, so that component non-idealities can be swept and their effect on the
code and on denoising measured. Every spike tensor is time-first ``[bits, *shape]``,
MSB at time step 0, like the rest of the package.

Circuits
--------
``DAC(kind="binary")``
    A binary-weighted resistor DAC into the virtual ground of an op-amp summing
    amplifier: bit ``t`` (weight ``2^(n-1-t)``) switches a resistor ``R * 2^t``
    between the reference and ground, and the feedback resistor ``R / 2`` makes the
    ideal output ``v_ref * code / 2^n``. (The summing amplifier inverts; we report
    the magnitude, as a second inverter or a negative reference would.) A bit's
    weight is ``v_ref * R_f / R_t``, so a relative resistor error ``e_t`` divides it
    by ``1 + e_t``. *Decision:* the feedback resistor is taken as exact: its error is
    a pure gain error, which ``v_ref_error`` already models.
``DAC(kind="r2r")``
    A voltage-mode R-2R ladder, unloaded (buffered) output at the MSB end: node ``t``
    has a ``2R`` leg to its bit's switch, consecutive nodes are joined by ``R``, and
    the LSB node is terminated by ``2R`` to ground. Each of these ``2n`` resistors has
    its own error. The ladder is linear in the bit voltages, so the per-bit weights
    are computed once, by Thevenin reduction from the LSB end (exact for any resistor
    values; the tests cross-check it against a nodal-analysis solve). For an ideal
    ladder every step of the reduction is exact in floating point (``2R || 2R = R``,
    dividers of one half), so the ideal R-2R weights equal the ideal binary ones bit
    for bit.
``SARADC``
    Successive approximation: at step ``t`` the trial code is the bits decided so far
    with bit ``t`` set; the comparator keeps the bit if the input (plus a static
    offset, plus fresh Gaussian noise for every comparison) reaches the trial
    threshold. The internal DAC (default: an ideal binary DAC of the same bits and
    ``v_ref``) provides the trial voltages.

Decisions
---------
* **Half-LSB thresholds.** The comparator threshold of trial code ``k`` is
  ``dac(k) - LSB/2`` (``LSB = v_ref / 2^n``, nominal), i.e. the thresholds sit at the
  code boundaries and the ideal ADC is a rounding quantizer: transitions at
  ``(k - 1/2) LSB``, and the input ``v_ref * k / 2^n`` (the centre of code ``k``)
  converts to ``k`` with half an LSB of margin on both sides, so float rounding (for
  example an R-2R DAC or a ``v_ref`` such as 3.3) can never flip a bit. Real SAR ADCs
  build this shift into their DAC for the same reason: the quantization error is
  then ``+-LSB/2`` instead of ``0..1 LSB``.
* **Offset sign.** ``comparator_offset`` is added to the input, as the brief of this
  module states, so a positive offset moves every transition level *down* by the
  offset.
* **Mismatch.** Each resistor gets an independent relative error drawn once from
  ``N(0, mismatch^2)`` with a ``torch.Generator`` seeded by ``seed``. We do not model
  the smaller spread of large resistors built from many unit elements. A draw that
  makes a resistor non-positive is refused (``mismatch`` far too large).
* **Figures of merit** use the *endpoint* method by default (the straight line through
  the first and last code, or the first and last transition for the ADC), so offset
  and gain errors do not appear in DNL/INL; they are reported separately by
  :func:`adc_offset_gain_errors`. ``method="best_fit"`` uses a least-squares line.
  ADC transition levels come from a code-density (histogram) test on a fine linear
  ramp, which stays meaningful for a non-monotonic converter.

End to end
----------
:func:`denoise_with_circuits` runs a trained UWE/UWD denoiser with a chip's ADC in
place of ``uwe_encode`` and its output DAC in place of ``uwd_decode``;
:func:`end_to_end_sweep` turns that into PSNR against one non-ideality, next to the
ideal codec's PSNR (which ideal circuits reproduce exactly). Chips that behave
identically (same bit weights, offset, noise and noise seed) are simulated once per
shared ``cache``. The ``vtsnn circuit`` command (:mod:`vtsnn.cli_circuit`) runs both
sweeps and writes the tables and plots.

Voltages are float64 throughout (the physical quantities), spikes default to float32
like :func:`vtsnn.coding.uwe_encode`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import torch

from .coding import _as_checked_integers, check_bits, uwe_encode

DAC_KINDS = ("binary", "r2r")
SWEEP_PARAMETERS = ("mismatch", "comparator_offset", "comparator_noise", "v_ref_error")

# A ramp test must reach every transition: this many LSB beyond the DAC's range.
DEFAULT_OVERRANGE_LSB = 2
DEFAULT_POINTS_PER_LSB = 16


# --------------------------------------------------------------------------- checks


def _check_kind(kind: str) -> str:
    if kind not in DAC_KINDS:
        raise ValueError(f"unknown DAC kind {kind!r}; choose one of {DAC_KINDS}")
    return kind


def _check_non_negative(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _check_v_ref(v_ref: float) -> float:
    v_ref = float(v_ref)
    if not math.isfinite(v_ref) or v_ref <= 0:
        raise ValueError(f"v_ref must be a finite positive voltage, got {v_ref}")
    return v_ref


def _check_v_ref_error(v_ref_error: float) -> float:
    v_ref_error = _check_finite("v_ref_error", v_ref_error)
    if v_ref_error <= -1:
        raise ValueError(f"v_ref_error must be > -1 (a relative error), got {v_ref_error}")
    return v_ref_error


def _check_spikes(spikes, bits: int) -> torch.Tensor:
    if not isinstance(spikes, torch.Tensor):
        spikes = torch.as_tensor(spikes)
    if spikes.dim() == 0 or spikes.shape[0] != bits:
        raise ValueError(
            f"spikes must be time-first [bits={bits}, ...] (MSB first); got shape {tuple(spikes.shape)}"
        )
    return spikes


def _make_generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


def _derive_seed(seed: int | None, stream: int) -> int | None:
    """A distinct, reproducible seed for each physical part built from one seed."""
    if seed is None:
        return None
    return (int(seed) * 1_000_003 + stream) % (2**63)


# --------------------------------------------------------------------------- DAC


def _binary_weighted_weights(bit_resistors: torch.Tensor) -> torch.Tensor:
    """Per-bit gains of the summing amplifier, ``R_f / R_t`` with ``R_f = R / 2``."""
    feedback_resistor = 0.5
    return feedback_resistor / bit_resistors


def _r2r_weights(legs: torch.Tensor, series: torch.Tensor, termination: torch.Tensor) -> torch.Tensor:
    """Per-bit gains of an unloaded voltage-mode R-2R ladder, by Thevenin reduction.

    Walk from the LSB end to the output (MSB) node keeping the Thevenin equivalent of
    everything below as ``(coefficients . bits, resistance)``; the open-circuit voltage
    is linear in the bit voltages, so tracking one coefficient per bit is exact.
    """
    bits = legs.numel()
    coefficients = torch.zeros(bits, dtype=torch.float64)
    thevenin_resistance = termination.reshape(()).clone()
    for t in range(bits - 1, -1, -1):
        leg = legs[t]
        total = thevenin_resistance + leg
        # Node voltage = divider between the Thevenin source and this bit's leg source.
        coefficients = coefficients * (leg / total)
        coefficients[t] = coefficients[t] + thevenin_resistance / total
        node_resistance = thevenin_resistance * leg / total
        if t > 0:
            # An unloaded series resistor leaves the Thevenin voltage as it is.
            thevenin_resistance = node_resistance + series[t - 1]
    return coefficients


class DAC:
    """A resistor DAC: spike planes ``[bits, ...]`` (MSB first) -> voltages ``[...]``.

    ``kind`` is ``"binary"`` (binary-weighted resistors into a summing amplifier) or
    ``"r2r"`` (R-2R ladder); see the module docstring for the circuits. ``mismatch``
    is the relative standard deviation of every resistor, drawn once here with a
    generator seeded by ``seed``; ``v_ref_error`` is the relative error of the
    reference (a gain error). Ideal output: ``v_ref * code / 2^bits``.

    ``resistor_errors`` (keyword only) replaces the random draw by given relative
    errors, in the order of :attr:`resistor_names`: for ``"binary"`` the ``bits`` bit
    resistors MSB first; for ``"r2r"`` the ``bits`` legs (MSB first), the ``bits - 1``
    series resistors (from the MSB node down) and the termination.
    """

    def __init__(self, bits: int = 8, kind: str = "binary", v_ref: float = 1.0, mismatch: float = 0.0,
                 seed: int | None = None, v_ref_error: float = 0.0, *, resistor_errors=None):
        self.bits = check_bits(bits)
        self.kind = _check_kind(kind)
        self.v_ref = _check_v_ref(v_ref)
        self.mismatch = _check_non_negative("mismatch", mismatch)
        self.v_ref_error = _check_v_ref_error(v_ref_error)
        self.seed = seed
        errors = self._resistor_errors(resistor_errors)
        self.resistances = self._build_resistances(errors)
        gains = self._gains()
        self.bit_weights = self.v_ref * (1.0 + self.v_ref_error) * gains
        self._transfer = None

    @property
    def resistor_names(self) -> tuple[str, ...]:
        return ("bit",) if self.kind == "binary" else ("leg", "series", "termination")

    @property
    def resistor_count(self) -> int:
        return self.bits if self.kind == "binary" else 2 * self.bits

    def _resistor_errors(self, resistor_errors) -> torch.Tensor:
        if resistor_errors is not None:
            errors = torch.as_tensor(resistor_errors, dtype=torch.float64).reshape(-1)
            if errors.numel() != self.resistor_count:
                raise ValueError(
                    f"resistor_errors needs {self.resistor_count} values for a {self.bits}-bit "
                    f"{self.kind} DAC, got {errors.numel()}"
                )
            if not torch.isfinite(errors).all():
                raise ValueError("resistor_errors contains NaN or infinite values")
        else:
            generator = _make_generator(self.seed)
            errors = self.mismatch * torch.randn(self.resistor_count, generator=generator, dtype=torch.float64)
        if (1.0 + errors <= 0).any():
            cause = ("resistor_errors must be > -1" if resistor_errors is not None
                     else f"mismatch={self.mismatch} is far too large for a resistor model")
            raise ValueError(
                f"a resistor error of {errors.min().item():.3g} makes a resistance non-positive; {cause}"
            )
        return errors

    def _build_resistances(self, errors: torch.Tensor) -> dict[str, torch.Tensor]:
        """Resistor values in units of the unit resistor ``R``."""
        n = self.bits
        scale = 1.0 + errors
        if self.kind == "binary":
            nominal = torch.pow(2.0, torch.arange(n, dtype=torch.float64))
            return {"bit": nominal * scale}
        return {
            "leg": 2.0 * scale[:n],
            "series": 1.0 * scale[n:2 * n - 1],
            "termination": 2.0 * scale[2 * n - 1:],
        }

    def _gains(self) -> torch.Tensor:
        if self.kind == "binary":
            return _binary_weighted_weights(self.resistances["bit"])
        r = self.resistances
        return _r2r_weights(r["leg"], r["series"], r["termination"])

    @property
    def lsb(self) -> float:
        """Nominal LSB, ``v_ref / 2^bits`` volts."""
        return self.v_ref / (1 << self.bits)

    def voltage(self, spikes) -> torch.Tensor:
        """Output voltages (float64) for time-first spike planes ``[bits, ...]``.

        Linear in the spikes (differentiable), so any real-valued planes are accepted.
        """
        spikes = _check_spikes(spikes, self.bits)
        weights = self.bit_weights.to(spikes.device)
        return torch.tensordot(weights, spikes.to(torch.float64), dims=([0], [0]))

    def transfer(self) -> torch.Tensor:
        """Voltages of all ``2^bits`` codes, code 0 first (float64, cached)."""
        if self._transfer is None:
            codes = torch.arange(1 << self.bits)
            planes = uwe_encode(codes, self.bits, dtype=torch.float64)
            self._transfer = self.bit_weights @ planes
        return self._transfer

    def __repr__(self) -> str:
        return (f"DAC(bits={self.bits}, kind={self.kind!r}, v_ref={self.v_ref}, mismatch={self.mismatch}, "
                f"seed={self.seed}, v_ref_error={self.v_ref_error})")


# --------------------------------------------------------------------------- ADC


class SARADC:
    """A successive-approximation ADC: voltages ``[...]`` -> spike planes ``[bits, ...]``.

    One bit per time step, MSB first, so the output is directly a UWE spike train.
    ``comparator_offset`` (volts) is added to the input; ``comparator_noise`` (volts
    rms) is fresh Gaussian noise for every comparison, from a generator seeded by
    ``seed`` (the generator advances with each conversion, as a real comparator's
    noise does). ``dac`` defaults to an ideal binary DAC of the same ``bits`` and
    ``v_ref``; thresholds sit half an LSB below each trial voltage (module docstring).
    """

    def __init__(self, bits: int = 8, v_ref: float = 1.0, dac: DAC | None = None,
                 comparator_offset: float = 0.0, comparator_noise: float = 0.0, seed: int | None = None):
        self.bits = check_bits(bits)
        self.v_ref = _check_v_ref(v_ref)
        self.dac = DAC(self.bits, "binary", self.v_ref) if dac is None else dac
        if not isinstance(self.dac, DAC):
            raise ValueError(f"dac must be a vtsnn.circuits.DAC, got {type(self.dac).__name__}")
        if self.dac.bits != self.bits:
            raise ValueError(f"the DAC has {self.dac.bits} bits but the ADC has {self.bits}")
        if self.dac.v_ref != self.v_ref:
            raise ValueError(
                f"the DAC's nominal v_ref ({self.dac.v_ref}) differs from the ADC's ({self.v_ref}); "
                "model a reference error with DAC(v_ref_error=...)"
            )
        self.comparator_offset = _check_finite("comparator_offset", comparator_offset)
        self.comparator_noise = _check_non_negative("comparator_noise", comparator_noise)
        self.seed = seed
        self.generator = _make_generator(seed)
        # Thresholds at the code boundaries: see "Half-LSB thresholds" in the module docstring.
        self.thresholds = self.dac.transfer() - self.lsb / 2

    @property
    def lsb(self) -> float:
        """Nominal LSB, ``v_ref / 2^bits`` volts."""
        return self.v_ref / (1 << self.bits)

    def _comparator_input(self, voltages: torch.Tensor) -> torch.Tensor:
        effective = voltages + self.comparator_offset
        if self.comparator_noise > 0:
            noise = torch.randn(voltages.shape, generator=self.generator, dtype=torch.float64)
            effective = effective + self.comparator_noise * noise.to(voltages.device)
        return effective

    def _successive_approximation(self, voltages) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the SAR loop; return ``(codes int64 [...], decisions bool [bits, ...])``."""
        voltages = torch.as_tensor(voltages, dtype=torch.float64)
        if not torch.isfinite(voltages).all():
            raise ValueError("input voltages contain NaN or infinite values")
        thresholds = self.thresholds.to(voltages.device)
        codes = torch.zeros(voltages.shape, dtype=torch.int64, device=voltages.device)
        decisions = []
        for t in range(self.bits):
            trial = codes | (1 << (self.bits - 1 - t))
            keep = self._comparator_input(voltages) >= thresholds[trial]
            codes = torch.where(keep, trial, codes)
            decisions.append(keep)
        return codes, torch.stack(decisions)

    def convert(self, voltages, dtype=torch.float32) -> torch.Tensor:
        """Convert input voltages to 0/1 spike planes ``[bits, *voltages.shape]``, MSB first."""
        return self._successive_approximation(voltages)[1].to(dtype)

    def convert_codes(self, voltages) -> torch.Tensor:
        """Convert input voltages to integer output codes (int64), same shape."""
        return self._successive_approximation(voltages)[0]

    def __repr__(self) -> str:
        return (f"SARADC(bits={self.bits}, v_ref={self.v_ref}, dac={self.dac!r}, "
                f"comparator_offset={self.comparator_offset}, comparator_noise={self.comparator_noise}, "
                f"seed={self.seed})")


# --------------------------------------------------------------------------- pipeline


def circuit_encode(pixels_uint, adc: SARADC, dtype=torch.float32) -> torch.Tensor:
    """UWE through a circuit: integer pixels -> ideal voltages ``v_ref * x / 2^bits`` -> ADC spikes.

    With an ideal ADC this equals :func:`vtsnn.coding.uwe_encode` bit for bit. Pixels
    are checked as ``uwe_encode`` checks them (integers in ``[0, 2^bits - 1]``).
    """
    codes = _as_checked_integers(pixels_uint, adc.bits)
    voltages = adc.v_ref * codes.to(torch.float64) / (1 << adc.bits)
    return adc.convert(voltages, dtype=dtype)


def circuit_decode(spikes: torch.Tensor, dac: DAC) -> torch.Tensor:
    """UWD through a circuit: spikes -> DAC voltage, in code units (``* 2^bits / v_ref``).

    Uses the nominal ``v_ref``, so reference and resistor errors show up as decoding
    errors. Returns the spikes' floating dtype (float32 for integer spikes); with an
    ideal DAC and ``v_ref`` 1.0 (any power of two) it equals
    :func:`vtsnn.coding.uwd_decode` exactly. Differentiable in the spikes.
    """
    spikes = _check_spikes(spikes, dac.bits)
    out_dtype = spikes.dtype if spikes.is_floating_point() else torch.float32
    return (dac.voltage(spikes) * ((1 << dac.bits) / dac.v_ref)).to(out_dtype)


def make_circuits(bits: int = 8, kind: str = "binary", v_ref: float = 1.0, mismatch: float = 0.0,
                  comparator_offset: float = 0.0, comparator_noise: float = 0.0, v_ref_error: float = 0.0,
                  seed: int | None = None) -> tuple[SARADC, DAC]:
    """Build the encoder ADC and the decoder DAC of one chip with the given non-idealities.

    The ADC's internal DAC and the output DAC are distinct resistor networks (same
    ``kind``, ``mismatch`` and ``v_ref_error``, independent draws); every part gets
    its own seed derived from ``seed``.
    """
    adc_dac = DAC(bits, kind, v_ref, mismatch, _derive_seed(seed, 0), v_ref_error)
    adc = SARADC(bits, v_ref, adc_dac, comparator_offset, comparator_noise, _derive_seed(seed, 1))
    output_dac = DAC(bits, kind, v_ref, mismatch, _derive_seed(seed, 2), v_ref_error)
    return adc, output_dac


# --------------------------------------------------------------------------- figures of merit


def _check_method(method: str) -> str:
    if method not in ("endpoint", "best_fit"):
        raise ValueError(f"unknown method {method!r}; choose 'endpoint' or 'best_fit'")
    return method


def _reference_line(levels: torch.Tensor, method: str) -> tuple[float, float]:
    """``(start, step)`` of the straight line the levels are compared with."""
    count = levels.numel()
    if method == "endpoint":
        return levels[0].item(), (levels[-1] - levels[0]).item() / (count - 1)
    index = torch.arange(count, dtype=torch.float64)
    index_mean, level_mean = index.mean(), levels.mean()
    step = ((index - index_mean) * (levels - level_mean)).sum() / ((index - index_mean) ** 2).sum()
    return (level_mean - step * index_mean).item(), step.item()


def _linearity(levels: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """DNL of consecutive steps and INL of each level, in LSB of the reference line."""
    method = _check_method(method)
    if levels.numel() < 2:
        # One level defines no line (a 1-bit ADC has a single transition).
        return torch.zeros(0, dtype=torch.float64), torch.zeros_like(levels)
    start, step = _reference_line(levels, method)
    if step <= 0:
        raise ValueError("the transfer curve has no positive slope; cannot define an LSB")
    dnl = torch.diff(levels) / step - 1.0
    inl = (levels - (start + step * torch.arange(levels.numel(), dtype=torch.float64))) / step
    return dnl, inl


def dac_dnl_inl(dac: DAC, method: str = "endpoint") -> tuple[torch.Tensor, torch.Tensor]:
    """DNL ``[2^bits - 1]`` (step from code k to k+1) and INL ``[2^bits]`` of a DAC, in LSB.

    ``method="endpoint"`` (default): the LSB is the endpoint slope
    ``(V(2^n-1) - V(0)) / (2^n - 1)``, so INL is 0 at both ends and gain/offset errors
    do not count; ``"best_fit"``: least-squares line.
    """
    return _linearity(dac.transfer(), method)


def _ramp_code_histogram(adc: SARADC, points_per_lsb: int, overrange_lsb: int):
    """Code-density test: ``(v_start, step, hits per code)`` for a fine linear ramp.

    The ramp spans the ADC's input range and its DAC's actual output range, widened by
    ``overrange_lsb`` plus the offset and 8 sigma of noise (rounded up to whole LSBs),
    so every transition is crossed. Samples sit at the centres of ``step``-wide cells,
    never on an ideal transition.
    """
    if isinstance(points_per_lsb, bool) or not isinstance(points_per_lsb, int) or points_per_lsb < 1:
        raise ValueError(f"points_per_lsb must be a positive integer, got {points_per_lsb!r}")
    if isinstance(overrange_lsb, bool) or not isinstance(overrange_lsb, int) or overrange_lsb < 0:
        raise ValueError(f"overrange_lsb must be a non-negative integer, got {overrange_lsb!r}")
    lsb = adc.lsb
    transfer = adc.dac.transfer()
    margin = overrange_lsb + math.ceil((abs(adc.comparator_offset) + 8 * adc.comparator_noise) / lsb)
    low_lsb = math.floor(min(0.0, transfer.min().item()) / lsb) - margin
    high_lsb = math.ceil(max(adc.v_ref, transfer.max().item()) / lsb) + margin
    step = lsb / points_per_lsb
    v_start = low_lsb * lsb
    samples = (high_lsb - low_lsb) * points_per_lsb
    ramp = v_start + (torch.arange(samples, dtype=torch.float64) + 0.5) * step
    codes = adc.convert_codes(ramp)
    hits = torch.bincount(codes, minlength=1 << adc.bits)
    return v_start, step, hits


def _transitions_from_histogram(v_start: float, step: float, hits: torch.Tensor) -> torch.Tensor:
    # Transition k = where the ramp has spent all its samples on codes below k.
    below = torch.cumsum(hits, dim=0)[:-1].to(torch.float64)
    return v_start + below * step


def adc_transition_levels(adc: SARADC, points_per_lsb: int = DEFAULT_POINTS_PER_LSB,
                          overrange_lsb: int = DEFAULT_OVERRANGE_LSB) -> torch.Tensor:
    """Transition levels ``[2^bits - 1]`` in volts: entry ``k-1`` is where code ``k`` begins.

    Measured by a code-density test on a linear ramp with ``points_per_lsb`` samples per
    nominal LSB (resolution ``LSB / points_per_lsb``). Ideal: ``(k - 1/2) * LSB``.
    """
    return _transitions_from_histogram(*_ramp_code_histogram(adc, points_per_lsb, overrange_lsb))


def adc_dnl_inl(adc: SARADC, points_per_lsb: int = DEFAULT_POINTS_PER_LSB, method: str = "endpoint",
                overrange_lsb: int = DEFAULT_OVERRANGE_LSB) -> tuple[torch.Tensor, torch.Tensor]:
    """ADC DNL ``[2^bits - 2]`` (inner codes 1..2^n-2) and INL ``[2^bits - 1]`` (per transition), in LSB.

    Code widths are differences of :func:`adc_transition_levels`; the end codes have no
    width. Endpoint method by default (first and last transition); a missing code has
    DNL -1.
    """
    transitions = adc_transition_levels(adc, points_per_lsb, overrange_lsb)
    return _linearity(transitions, method)


def missing_codes(adc: SARADC, points_per_lsb: int = DEFAULT_POINTS_PER_LSB,
                  overrange_lsb: int = DEFAULT_OVERRANGE_LSB) -> list[int]:
    """Codes never produced on a fine ramp that overdrives the whole range."""
    _, _, hits = _ramp_code_histogram(adc, points_per_lsb, overrange_lsb)
    return torch.nonzero(hits == 0).flatten().tolist()


def adc_offset_gain_errors(adc: SARADC, points_per_lsb: int = DEFAULT_POINTS_PER_LSB,
                           overrange_lsb: int = DEFAULT_OVERRANGE_LSB) -> tuple[float, float]:
    """``(offset error, gain error)`` in nominal LSB, from the first and last transitions.

    Offset: first transition minus its ideal ``LSB / 2``. Gain: span of the transitions
    minus the ideal ``(2^n - 2) LSB``. Both are invisible in endpoint DNL/INL.
    """
    transitions = adc_transition_levels(adc, points_per_lsb, overrange_lsb)
    return _offset_gain_from_transitions(transitions, adc.lsb)


def _offset_gain_from_transitions(transitions: torch.Tensor, lsb: float) -> tuple[float, float]:
    offset = transitions[0].item() / lsb - 0.5
    gain = (transitions[-1] - transitions[0]).item() / lsb - (transitions.numel() - 1)
    return offset, gain


def sinad_db(adc: SARADC, samples: int = 4096, cycles: int = 67, amplitude: float = 0.995) -> float:
    """SINAD (dB) of a coherently sampled sine, from the FFT of the output codes.

    The sine is centred on the code range and its peak-to-peak is ``amplitude`` times
    the full range ``2^n`` LSB. ``cycles`` and ``samples`` must be coprime (coherent
    sampling: no window, no leakage, every code phase visited); ``cycles < samples/2``.
    Signal = the input frequency's bin, noise and distortion = every other bin but DC.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 8:
        raise ValueError(f"samples must be an integer >= 8, got {samples!r}")
    if isinstance(cycles, bool) or not isinstance(cycles, int) or not 0 < cycles < samples / 2:
        raise ValueError(f"cycles must be an integer in (0, samples/2), got {cycles!r}")
    if math.gcd(cycles, samples) != 1:
        raise ValueError(f"cycles ({cycles}) and samples ({samples}) must be coprime for coherent sampling")
    if not 0 < amplitude <= 1:
        raise ValueError(f"amplitude must be in (0, 1] of full scale, got {amplitude}")
    full_range = 1 << adc.bits
    centre = (full_range - 1) / 2 * adc.lsb
    peak = amplitude * full_range / 2 * adc.lsb
    phase = 2 * math.pi * cycles * torch.arange(samples, dtype=torch.float64) / samples
    # A small phase offset keeps samples off the symmetric points of the sine.
    sine = centre + peak * torch.sin(phase + 0.1)
    codes = adc.convert_codes(sine).to(torch.float64)
    power = torch.fft.rfft(codes).abs() ** 2
    power[1:] *= 2  # one-sided spectrum ...
    if samples % 2 == 0:
        power[-1] /= 2  # ... but the Nyquist bin has no mirror
    signal = power[cycles]
    noise_and_distortion = power[1:].sum() - signal
    if noise_and_distortion <= 0:
        return math.inf
    return 10 * math.log10((signal / noise_and_distortion).item())


def enob(adc: SARADC, samples: int = 4096, cycles: int = 67, amplitude: float = 0.995) -> float:
    """Effective number of bits from a full-scale sine test: ``(SINAD - 1.76) / 6.02``."""
    return (sinad_db(adc, samples, cycles, amplitude) - 1.76) / 6.02


# --------------------------------------------------------------------------- sweeps


def _measure_chip(adc: SARADC, output_dac: DAC, points_per_lsb: int) -> dict[str, float]:
    v_start, step, hits = _ramp_code_histogram(adc, points_per_lsb, DEFAULT_OVERRANGE_LSB)
    transitions = _transitions_from_histogram(v_start, step, hits)
    adc_dnl, adc_inl = _linearity(transitions, "endpoint")
    dac_dnl, dac_inl = dac_dnl_inl(output_dac)
    offset, gain = _offset_gain_from_transitions(transitions, adc.lsb)

    def largest(values: torch.Tensor) -> float:
        return values.abs().max().item() if values.numel() else 0.0

    return {
        "max_abs_dnl": largest(adc_dnl),
        "max_abs_inl": largest(adc_inl),
        "missing_codes": float((hits == 0).sum().item()),
        "enob": enob(adc),
        "dac_max_abs_dnl": largest(dac_dnl),
        "dac_max_abs_inl": largest(dac_inl),
        "offset_error_lsb": offset,
        "gain_error_lsb": gain,
    }


def _check_sweep_arguments(kind: str, parameter: str, seeds: Sequence[int], fixed: dict) -> list[int]:
    """Validate what every sweep takes; returns the seeds as a list."""
    _check_kind(kind)
    if parameter not in SWEEP_PARAMETERS:
        raise ValueError(f"unknown sweep parameter {parameter!r}; choose one of {SWEEP_PARAMETERS}")
    unknown = set(fixed) - set(SWEEP_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown fixed settings {sorted(unknown)}; choose from {SWEEP_PARAMETERS}")
    if parameter in fixed:
        raise ValueError(f"{parameter!r} is swept; do not also fix it")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


def sweep(kind: str, parameter: str, values: Iterable[float], bits: int = 8, seeds: Sequence[int] = (0, 1, 2),
          v_ref: float = 1.0, points_per_lsb: int = 32, **fixed) -> list[dict]:
    """Sweep one non-ideality and measure the figures of merit, averaged over seeds.

    ``kind`` is the DAC kind used in both the ADC and the output DAC; ``parameter`` is
    one of :data:`SWEEP_PARAMETERS` (volts for the comparator ones, relative for
    ``mismatch`` and ``v_ref_error``); ``fixed`` sets the other non-idealities (same
    names). For every value and seed :func:`make_circuits` builds one chip. The ramp
    test resolves transitions to ``LSB / points_per_lsb``, the floor of DNL and INL.
    Each record holds ``parameter``, ``value``, ``kind``, ``bits``, ``v_ref``, ``seeds`` and the
    means over seeds of the ADC's ``max_abs_dnl``, ``max_abs_inl`` (LSB, endpoint),
    ``missing_codes`` (count), ``enob`` (plus ``enob_std``), the output DAC's
    ``dac_max_abs_dnl``/``dac_max_abs_inl``, and the ADC's ``offset_error_lsb`` and
    ``gain_error_lsb``.
    """
    check_bits(bits)
    seeds = _check_sweep_arguments(kind, parameter, seeds, fixed)
    records = []
    for value in values:
        settings = dict(fixed, **{parameter: float(value)})
        per_seed = [_measure_chip(*make_circuits(bits, kind, v_ref, seed=seed, **settings), points_per_lsb)
                    for seed in seeds]
        record = {"parameter": parameter, "value": float(value), "kind": kind, "bits": bits, "v_ref": float(v_ref),
                  "seeds": seeds}
        for key in per_seed[0]:
            record[key] = sum(measures[key] for measures in per_seed) / len(per_seed)
        enobs = torch.tensor([measures["enob"] for measures in per_seed], dtype=torch.float64)
        record["enob_std"] = enobs.std(correction=0).item()
        records.append(record)
    return records


PARAMETER_LABELS = {
    "mismatch": "resistor mismatch (relative sigma)",
    "comparator_offset": "comparator offset (LSB)",
    "comparator_noise": "comparator noise (LSB rms)",
    "v_ref_error": "reference error (relative)",
}


def parameter_axis_value(record: dict) -> float:
    """A record's swept value in the unit people read: LSB for the comparator, else as swept."""
    if record["parameter"] in ("comparator_offset", "comparator_noise"):
        return record["value"] * (1 << record["bits"]) / record["v_ref"]
    return record["value"]


def _group_by_kind(records: Iterable[dict]) -> dict[str, list[dict]]:
    """Records per DAC kind, each list sorted by value."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["kind"], []).append(record)
    return {kind: sorted(group, key=lambda record: record["value"]) for kind, group in groups.items()}


def plot_sweep(records: Sequence[dict], path) -> None:
    """Write a PNG of a sweep: max |DNL|, max |INL|, missing codes and ENOB against the value.

    One line per DAC kind. A single parameter gets a 2 x 2 grid of panels; several get
    one column each (their units differ: relative for resistors and the reference,
    LSB for the comparator), one row per figure of merit. Uses matplotlib's Agg
    canvas directly, so it changes no global backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not records:
        raise ValueError("no records to plot")
    panels = (("max_abs_dnl", "ADC max |DNL| (LSB)"), ("max_abs_inl", "ADC max |INL| (LSB)"),
              ("missing_codes", "missing codes"), ("enob", "ENOB (bits)"))
    parameters = list(dict.fromkeys(record["parameter"] for record in records))
    if len(parameters) == 1:
        figure = Figure(figsize=(9, 6.5), layout="constrained")
        grid = figure.subplots(2, 2).flat
        cells = [(axis, parameters[0], panel) for axis, panel in zip(grid, panels)]
    else:
        figure = Figure(figsize=(3.4 * len(parameters), 9.5), layout="constrained")
        grid = figure.subplots(len(panels), len(parameters), squeeze=False)
        cells = [(grid[row, column], parameter, panel)
                 for column, parameter in enumerate(parameters) for row, panel in enumerate(panels)]
    FigureCanvasAgg(figure)
    for axis, parameter, (key, label) in cells:
        chosen = (record for record in records if record["parameter"] == parameter)
        for kind, line in _group_by_kind(chosen).items():
            axis.plot([parameter_axis_value(r) for r in line], [r[key] for r in line], marker="o", label=kind)
        axis.set_ylabel(label)
        axis.set_xlabel(PARAMETER_LABELS.get(parameter, parameter))
        axis.grid(True, alpha=0.3)
    cells[0][0].legend(title="DAC")
    bits = sorted({record["bits"] for record in records})
    figure.suptitle(f"SAR ADC / DAC non-idealities ({', '.join(map(str, bits))}-bit)")
    figure.savefig(path, format="png", dpi=120)


# --------------------------------------------------------------------------- end to end


def check_circuit_model(config, parts: Iterable) -> None:
    """The circuits replace UWE and UWD, so only a UWE/UWD spiking model can use them."""
    from .config import BITS

    if config.training == "ann" or config.encoder != "uwe" or config.decoder != "uwd":
        raise ValueError(
            "the circuits replace the UWE encoder and the UWD decoder; this model is "
            f"training={config.training!r}, encoder={config.encoder!r}, decoder={config.decoder!r}"
        )
    for part in parts:
        if part.bits != BITS:
            raise ValueError(
                f"the model works on {BITS}-bit spike trains; got a {part.bits}-bit {type(part).__name__}"
            )


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


@torch.inference_mode()
def denoise_with_circuits(model: torch.nn.Module, config, noisy_uint8: torch.Tensor, adc: SARADC, dac: DAC,
                          batch_size: int = 500) -> torch.Tensor:
    """Denoise 8-bit images ``[N, C, H, W]`` with the circuits in place of UWE and UWD.

    The :func:`vtsnn.train.denoise_images` pipeline with :func:`circuit_encode`
    (``adc``) for the input spikes and :func:`circuit_decode` (``dac``) for the output
    spikes; the decoded codes are clamped to ``[0, 255]`` (a real DAC's output can
    overshoot full scale) and divided by 255. Returns floats in ``[0, 1]`` on the CPU.
    With ideal circuits the result equals ``denoise_images`` exactly.

    The circuits run on the CPU (they are float64 behavioural models); only the
    model runs on its own device. A noisy comparator draws fresh noise for every
    conversion, so repeated calls with the same ``adc`` differ, as a real chip does.
    """
    from .train import autocast_for

    check_circuit_model(config, (adc, dac))
    batch_size = _check_batch_size(batch_size)
    device = next(model.parameters()).device
    model.eval()
    results = []
    for start in range(0, noisy_uint8.shape[0], batch_size):
        spikes = circuit_encode(noisy_uint8[start:start + batch_size].cpu(), adc)
        with autocast_for(config, device):
            output = model(spikes.to(device))
        codes = circuit_decode(output.float().cpu(), dac)
        results.append(codes.clamp(0.0, 255.0) / 255.0)
    return torch.cat(results)


def _chip_signature(adc: SARADC, dac: DAC) -> tuple | None:
    """Everything that decides what a fresh chip does to the images, or None if unknown.

    Two chips with equal signatures give identical denoised images, whatever the
    parameters that built them (for example any seed without mismatch or noise, or
    an ideal R-2R and an ideal binary DAC), so :func:`end_to_end_sweep` simulates
    each signature once. A noisy comparator without a seed is never repeatable.
    """
    if adc.comparator_noise > 0 and adc.seed is None:
        return None
    noise_seed = adc.seed if adc.comparator_noise > 0 else None
    return (adc.v_ref, tuple(adc.dac.bit_weights.tolist()), adc.comparator_offset, adc.comparator_noise,
            noise_seed, dac.v_ref, tuple(dac.bit_weights.tolist()))


def _cached_psnr(cache: dict, key, compute) -> float:
    """``compute()``, remembered in ``cache`` under ``key`` (None: not repeatable, never cached)."""
    if key is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def end_to_end_sweep(model: torch.nn.Module, config, clean: torch.Tensor, noisy: torch.Tensor, parameter: str,
                     values: Iterable[float], kind: str = "binary", seeds: Sequence[int] = (0, 1, 2),
                     v_ref: float = 1.0, batch_size: int = 500, cache: dict | None = None, **fixed) -> list[dict]:
    """PSNR of a trained denoiser when circuits replace its ideal encoder and decoder.

    ``clean`` and ``noisy`` are 8-bit test images ``[N, C, H, W]`` (for example from
    :func:`vtsnn.train.load_test_set`). For every value of ``parameter`` and every
    seed, :func:`make_circuits` builds one chip (``kind``, ``v_ref``, the other
    non-idealities from ``fixed``, as in :func:`sweep`) and the images are denoised
    through it (:func:`denoise_with_circuits`). Each record holds ``parameter``,
    ``value``, ``kind``, ``bits``, ``v_ref``, ``seeds``, ``fixed``, ``psnr_mean``,
    ``psnr_std`` (population std over seeds), ``psnr_per_seed``, ``psnr_ideal`` (the
    same model with the ideal UWE/UWD codec), ``noisy_psnr`` (the noisy input) and
    ``test_images``; PSNRs in dB, per image then averaged, data range 1.

    ``cache`` (optional): pass the same dict to several calls *on the same model and
    images* to simulate each distinct chip, and the ideal codec, only once.
    """
    from .metrics import psnr
    from .config import BITS
    from .train import denoise_images

    seeds = _check_sweep_arguments(kind, parameter, seeds, fixed)
    batch_size = _check_batch_size(batch_size)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy images differ in shape: {tuple(clean.shape)} vs {tuple(noisy.shape)}")
    check_circuit_model(config, ())
    cache = {} if cache is None else cache
    clean01 = clean.float() / 255.0
    # A guard, not a proof: a cache shared across models or image sets would be wrong.
    scope = (id(model), id(noisy), batch_size)

    def score(denoised: torch.Tensor) -> float:
        return psnr(denoised, clean01).item()

    def simulate(adc: SARADC, dac: DAC) -> float:
        return score(denoise_with_circuits(model, config, noisy, adc, dac, batch_size))

    ideal = _cached_psnr(cache, (scope, "ideal"), lambda: score(denoise_images(model, noisy, config, batch_size)))
    noisy_psnr = score(noisy.float() / 255.0)
    records = []
    for value in values:
        settings = dict(fixed, **{parameter: float(value)})
        per_seed = []
        for seed in seeds:
            adc, dac = make_circuits(BITS, kind, v_ref, seed=seed, **settings)
            signature = _chip_signature(adc, dac)
            key = None if signature is None else (scope, signature)
            per_seed.append(_cached_psnr(cache, key, functools.partial(simulate, adc, dac)))
        scores = torch.tensor(per_seed, dtype=torch.float64)
        records.append({
            "parameter": parameter, "value": float(value), "kind": kind, "bits": BITS, "v_ref": float(v_ref),
            "seeds": seeds, "fixed": {name: float(setting) for name, setting in fixed.items()},
            "psnr_mean": scores.mean().item(), "psnr_std": scores.std(correction=0).item(),
            "psnr_per_seed": per_seed, "psnr_ideal": ideal, "noisy_psnr": noisy_psnr,
            "test_images": int(clean.shape[0]),
        })
    return records


def plot_end_to_end(records: Sequence[dict], path) -> None:
    """Write a PNG of :func:`end_to_end_sweep` records: PSNR against the value, one panel per parameter.

    One line (mean, error bars of the std over seeds) per DAC kind; the ideal codec's
    PSNR is a dashed line (the noisy input's PSNR, usually far below, is in the title
    so that it does not flatten the axis). Comparator values are in LSB. Uses
    matplotlib's Agg canvas directly, so it changes no global backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not records:
        raise ValueError("no records to plot")
    parameters = list(dict.fromkeys(record["parameter"] for record in records))
    columns = min(len(parameters), 2)
    rows = math.ceil(len(parameters) / columns)
    figure = Figure(figsize=(4.6 * columns, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for axis, parameter in zip(axes, parameters):
        chosen = [record for record in records if record["parameter"] == parameter]
        for kind, line in _group_by_kind(chosen).items():
            axis.errorbar([parameter_axis_value(r) for r in line], [r["psnr_mean"] for r in line],
                          yerr=[r["psnr_std"] for r in line], marker="o", capsize=3, label=f"{kind} circuits")
        axis.axhline(chosen[0]["psnr_ideal"], color="black", linestyle="--", linewidth=1, label="ideal UWE/UWD")
        axis.set_xlabel(PARAMETER_LABELS.get(parameter, parameter))
        axis.set_ylabel("PSNR (dB)")
        axis.ticklabel_format(axis="y", useOffset=False)  # tiny changes: show dB, not an offset
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    for axis in axes[len(parameters):]:
        axis.set_visible(False)  # the unused panel of an odd count
    first = records[0]
    figure.suptitle(f"Denoising through SAR ADC / DAC circuits ({first['test_images']} test images; "
                    f"noisy input {first['noisy_psnr']:.2f} dB)")
    figure.savefig(path, format="png", dpi=120)


__all__ = [
    "DAC_KINDS", "SWEEP_PARAMETERS", "DAC", "SARADC", "circuit_encode", "circuit_decode", "make_circuits",
    "dac_dnl_inl", "adc_transition_levels", "adc_dnl_inl", "missing_codes", "adc_offset_gain_errors",
    "sinad_db", "enob", "sweep", "plot_sweep", "denoise_with_circuits", "end_to_end_sweep",
    "check_circuit_model", "PARAMETER_LABELS", "parameter_axis_value", "plot_end_to_end",
]
