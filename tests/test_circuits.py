"""Tests for vtsnn.circuits: behavioural SAR ADC (UWE) and resistor DAC (UWD) models."""

import pytest
import torch

from vtsnn import circuits as circuits_module
from vtsnn.circuits import (
    DAC, DAC_KINDS, SARADC, adc_dnl_inl, adc_offset_gain_errors, adc_transition_levels, circuit_decode,
    circuit_encode, dac_dnl_inl, denoise_with_circuits, end_to_end_sweep, enob, make_circuits, missing_codes,
    parameter_axis_value, plot_end_to_end, plot_sweep, sweep,
)
from vtsnn.coding import uwd_decode, uwe_encode
from vtsnn.metrics import psnr
from vtsnn.config import TrainConfig
from vtsnn.train import build_model, denoise_images


def all_codes(bits):
    return torch.arange(1 << bits)


def binary_dac_with_msb_error(bits, msb_error):
    """A binary-weighted DAC whose MSB resistor alone is off by ``msb_error`` (relative)."""
    errors = torch.zeros(bits, dtype=torch.float64)
    errors[0] = msb_error
    return DAC(bits, "binary", resistor_errors=errors)


def ladder_weights_by_nodal_analysis(dac):
    """Independent check of the R-2R weights: solve the ladder's node equations ``G v = i``."""
    n = dac.bits
    legs, series, termination = (dac.resistances[k] for k in ("leg", "series", "termination"))
    conductance = torch.zeros(n, n, dtype=torch.float64)
    for t in range(n):
        conductance[t, t] += 1 / legs[t]
    conductance[n - 1, n - 1] += 1 / termination[0]
    for t in range(n - 1):
        g = 1 / series[t]
        conductance[t, t] += g
        conductance[t + 1, t + 1] += g
        conductance[t, t + 1] -= g
        conductance[t + 1, t] -= g
    # Bit t alone at the reference injects v_ref / leg_t into node t; the output is node 0.
    injected = torch.diag(dac.v_ref * (1 + dac.v_ref_error) / legs)
    return torch.linalg.solve(conductance, injected)[0]


# ------------------------------------------------------------------ ideal equivalence


@pytest.mark.parametrize("kind", DAC_KINDS)
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_ideal_circuits_reproduce_uwe_and_uwd_on_every_code(bits, kind):
    codes = all_codes(bits)
    adc = SARADC(bits, dac=DAC(bits, kind))
    assert torch.equal(circuit_encode(codes, adc), uwe_encode(codes, bits))
    decoded = circuit_decode(uwe_encode(codes, bits), DAC(bits, kind))
    assert torch.equal(decoded, codes.to(torch.float32))
    assert torch.equal(decoded, uwd_decode(uwe_encode(codes, bits)))


@pytest.mark.parametrize("kind", DAC_KINDS)
def test_ideal_adc_is_exact_for_a_reference_that_is_not_a_power_of_two(kind):
    # v_ref = 3.3 makes the code voltages inexact in float; the half-LSB thresholds absorb that.
    codes = all_codes(8)
    adc = SARADC(8, v_ref=3.3, dac=DAC(8, kind, v_ref=3.3))
    assert torch.equal(circuit_encode(codes, adc), uwe_encode(codes, 8))
    decoded = circuit_decode(uwe_encode(codes, 8), DAC(8, kind, v_ref=3.3))
    assert torch.allclose(decoded.double(), codes.double(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", DAC_KINDS)
def test_ideal_circuits_on_a_random_image_batch(kind):
    generator = torch.Generator().manual_seed(7)
    image = torch.randint(0, 256, (2, 1, 5, 7), generator=generator)
    adc, dac = make_circuits(8, kind, seed=3)
    spikes = circuit_encode(image, adc)
    assert spikes.shape == (8, 2, 1, 5, 7)
    assert torch.equal(spikes, uwe_encode(image, 8))
    assert torch.equal(circuit_decode(spikes, dac), image.to(torch.float32))


def test_circuit_decode_is_differentiable():
    spikes = uwe_encode(torch.tensor([3, 200]), 8).requires_grad_(True)
    circuit_decode(spikes, DAC(8, "r2r")).sum().backward()
    expected = torch.pow(2.0, torch.arange(7, -1, -1, dtype=torch.float32))
    assert torch.equal(spikes.grad[:, 0], expected)


# ------------------------------------------------------------------ ideal linearity


@pytest.mark.parametrize("kind", DAC_KINDS)
@pytest.mark.parametrize("method", ["endpoint", "best_fit"])
def test_ideal_dac_is_monotonic_and_linear(kind, method):
    dac = DAC(8, kind)
    transfer = dac.transfer()
    assert (torch.diff(transfer) > 0).all()
    assert torch.equal(transfer, all_codes(8).double() / 256)
    dnl, inl = dac_dnl_inl(dac, method)
    assert dnl.shape == (255,) and inl.shape == (256,)
    assert dnl.abs().max() < 1e-9 and inl.abs().max() < 1e-9


def test_ideal_r2r_equals_ideal_binary():
    for bits in (1, 4, 8, 16):
        assert torch.equal(DAC(bits, "r2r").bit_weights, DAC(bits, "binary").bit_weights)


def test_ideal_adc_transitions_sit_at_half_lsb_points():
    adc = SARADC(8)
    transitions = adc_transition_levels(adc, points_per_lsb=4)
    expected = (torch.arange(1, 256, dtype=torch.float64) - 0.5) / 256
    assert torch.allclose(transitions, expected, rtol=0, atol=1e-12)
    dnl, inl = adc_dnl_inl(adc)
    assert dnl.shape == (254,) and inl.shape == (255,)
    assert dnl.abs().max() < 1e-9 and inl.abs().max() < 1e-9
    assert missing_codes(adc) == []
    assert adc_offset_gain_errors(adc) == pytest.approx((0.0, 0.0), abs=1e-9)


# ------------------------------------------------------------------ non-ideal components


def test_mismatched_r2r_ladder_matches_nodal_analysis():
    dac = DAC(8, "r2r", mismatch=0.02, seed=5, v_ref_error=0.03)
    assert torch.allclose(dac.bit_weights, ladder_weights_by_nodal_analysis(dac), rtol=1e-12, atol=0)
    assert not torch.equal(dac.bit_weights, DAC(8, "r2r").bit_weights)


def test_dac_output_is_the_bit_weighted_sum():
    dac = DAC(6, "binary", mismatch=0.05, seed=1)
    codes = all_codes(6)
    voltages = dac.voltage(uwe_encode(codes, 6))
    assert torch.allclose(voltages, dac.transfer(), rtol=0, atol=1e-15)
    assert torch.allclose(dac.transfer()[1:][torch.tensor([31, 15, 7, 3, 1, 0])], dac.bit_weights)


def test_msb_resistor_error_gives_the_largest_dnl_at_the_major_carry():
    bits, msb_error = 8, 0.01
    dnl, inl = dac_dnl_inl(binary_dac_with_msb_error(bits, msb_error))
    # By hand: the MSB weighs 0.5 / 1.01 V, the other bits sum to 0.5 - 1/256 V.
    msb, rest, lsb = 0.5 / (1 + msb_error), 0.5 - 1 / 256, 1 / 256
    endpoint_lsb = (msb + rest) / 255
    major_carry = 2 ** (bits - 1) - 1
    assert dnl.abs().argmax().item() == major_carry
    assert dnl[major_carry].item() == pytest.approx((msb - rest) / endpoint_lsb - 1, abs=1e-12)
    assert dnl[major_carry].item() == pytest.approx(-1.2687, abs=1e-3)  # the 8-bit DAC is non-monotonic
    assert dnl[0].item() == pytest.approx(lsb / endpoint_lsb - 1, abs=1e-12)
    assert inl[0] == 0 and inl[-1] == 0


def test_too_small_msb_in_the_adc_dac_loses_the_codes_below_the_major_carry():
    # MSB weight 0.5/1.02 V = 125.49 LSB: above its threshold 124.99 LSB the ADC already
    # outputs 128, so 126 and 127 can never be produced.
    adc = SARADC(8, dac=binary_dac_with_msb_error(8, 0.02))
    assert missing_codes(adc) == [126, 127]
    dnl, _ = adc_dnl_inl(adc)
    assert dnl[125].item() == pytest.approx(-1.0) and dnl[126].item() == pytest.approx(-1.0)


def test_seeds_make_mismatch_and_noise_reproducible():
    same_a, same_b = DAC(8, "r2r", mismatch=0.01, seed=4), DAC(8, "r2r", mismatch=0.01, seed=4)
    other = DAC(8, "r2r", mismatch=0.01, seed=5)
    assert torch.equal(same_a.bit_weights, same_b.bit_weights)
    assert not torch.equal(same_a.bit_weights, other.bit_weights)

    image = torch.randint(0, 256, (3, 16, 16), generator=torch.Generator().manual_seed(0))
    noisy = [circuit_encode(image, SARADC(8, comparator_noise=0.004, seed=s)) for s in (11, 11, 12)]
    assert torch.equal(noisy[0], noisy[1])
    assert not torch.equal(noisy[0], noisy[2])
    assert not torch.equal(noisy[0], uwe_encode(image, 8))


def test_make_circuits_is_reproducible_and_uses_distinct_parts():
    first = make_circuits(8, "binary", mismatch=0.01, seed=9)
    second = make_circuits(8, "binary", mismatch=0.01, seed=9)
    assert torch.equal(first[0].dac.bit_weights, second[0].dac.bit_weights)
    assert torch.equal(first[1].bit_weights, second[1].bit_weights)
    assert not torch.equal(first[0].dac.bit_weights, first[1].bit_weights)


@pytest.mark.parametrize("offset_lsb", [0.25, -1.5])
def test_comparator_offset_shifts_every_transition(offset_lsb):
    lsb = 1 / 256
    ideal = adc_transition_levels(SARADC(8), points_per_lsb=16)
    shifted = adc_transition_levels(SARADC(8, comparator_offset=offset_lsb * lsb), points_per_lsb=16)
    # The offset adds to the input, so the input needs that much less to reach a threshold.
    assert torch.allclose(shifted - ideal, torch.full_like(ideal, -offset_lsb * lsb), rtol=0, atol=1e-12)
    offset_error, gain_error = adc_offset_gain_errors(SARADC(8, comparator_offset=offset_lsb * lsb))
    assert offset_error == pytest.approx(-offset_lsb) and gain_error == pytest.approx(0.0, abs=1e-9)


def test_reference_error_is_a_gain_error():
    adc = SARADC(8, dac=DAC(8, v_ref_error=0.02))
    _, gain_error = adc_offset_gain_errors(adc, points_per_lsb=32)
    assert gain_error == pytest.approx(0.02 * 254, abs=0.1)


# ------------------------------------------------------------------ ENOB


def test_ideal_adc_enob_is_close_to_its_bits():
    assert 7.8 <= enob(SARADC(8)) <= 8.1
    assert 3.8 <= enob(SARADC(4)) <= 4.1


def test_comparator_noise_lowers_enob():
    quiet = enob(SARADC(8))
    noisy = enob(SARADC(8, comparator_noise=4 / 256, seed=0))
    assert noisy < quiet - 1.5


# ------------------------------------------------------------------ sweeps


def test_sweep_records_and_plot(tmp_path):
    records = sweep("r2r", "mismatch", [0.0, 0.02], bits=6, seeds=(0, 1))
    assert [r["value"] for r in records] == [0.0, 0.02]
    ideal, mismatched = records
    for key in ("max_abs_dnl", "max_abs_inl", "missing_codes", "dac_max_abs_dnl", "dac_max_abs_inl"):
        assert ideal[key] == pytest.approx(0.0, abs=1e-9)
        assert mismatched[key] >= ideal[key]
    assert mismatched["max_abs_inl"] > 0.1
    assert 5.8 <= ideal["enob"] <= 6.1 and mismatched["enob"] < ideal["enob"]
    assert ideal["parameter"] == "mismatch" and ideal["kind"] == "r2r" and ideal["seeds"] == [0, 1]

    noise_records = sweep("binary", "comparator_noise", [0.0, 0.05], bits=6, seeds=(0,), mismatch=0.0)
    assert noise_records[1]["enob"] < noise_records[0]["enob"] - 1

    path = tmp_path / "sweep.png"
    plot_sweep(records + noise_records, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize("bits", [0, 17])
def test_bad_bits_are_refused(bits):
    with pytest.raises(ValueError, match="bits"):
        DAC(bits)
    with pytest.raises(ValueError, match="bits"):
        SARADC(bits)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown DAC kind 'weighted'"):
        DAC(8, "weighted")
    with pytest.raises(ValueError, match="mismatch must be a finite number >= 0"):
        DAC(8, mismatch=-0.01)
    with pytest.raises(ValueError, match="non-positive"):
        DAC(8, mismatch=5.0, seed=0)
    with pytest.raises(ValueError, match="v_ref must be"):
        DAC(8, v_ref=0.0)
    with pytest.raises(ValueError, match="v_ref_error"):
        DAC(8, v_ref_error=-1.0)
    with pytest.raises(ValueError, match="resistor_errors needs 16 values"):
        DAC(8, "r2r", resistor_errors=[0.0] * 8)
    with pytest.raises(ValueError, match="comparator_noise"):
        SARADC(8, comparator_noise=-1e-3)
    with pytest.raises(ValueError, match="the DAC has 6 bits but the ADC has 8"):
        SARADC(8, dac=DAC(6))
    with pytest.raises(ValueError, match="NaN"):
        SARADC(8).convert(torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match="unknown sweep parameter"):
        sweep("binary", "temperature", [0.0])
    with pytest.raises(ValueError, match="coprime"):
        enob(SARADC(8), samples=4096, cycles=64)


def test_spikes_with_the_wrong_leading_dimension_are_refused():
    dac = DAC(8)
    with pytest.raises(ValueError, match=r"time-first \[bits=8"):
        dac.voltage(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"time-first \[bits=8"):
        circuit_decode(torch.zeros(3, 8), dac)
    with pytest.raises(ValueError, match=r"time-first \[bits=8"):
        dac.voltage(torch.tensor(1.0))


def test_circuit_encode_refuses_what_uwe_encode_refuses():
    with pytest.raises(ValueError, match="above 255"):
        circuit_encode(torch.tensor([256]), SARADC(8))
    with pytest.raises(ValueError, match="fractional"):
        circuit_encode(torch.tensor([1.5]), SARADC(8))


# ------------------------------------------------------------------ end to end


def firing_tiny_denoiser(**overrides):
    """A tiny U-VTSNN whose output neurons fire (positive head weights).

    Freshly initialized, the tiny model's output never reaches threshold; an all-zero
    output decodes to 0 through any DAC and would hide the DAC's errors.
    """
    config = TrainConfig(**{"channels": (4, 8), "init": "spiking", **overrides})
    torch.manual_seed(0)
    model = build_model(config).eval()
    with torch.no_grad():
        model.head.weight.abs_().mul_(3.0)
    return model, config


def tiny_test_set(count=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 256, (count, 1, 8, 8), generator=generator).to(torch.uint8)
    noise = torch.randint(-40, 41, clean.shape, generator=generator)
    return clean, (clean.to(torch.int64) + noise).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("kind", DAC_KINDS)
def test_ideal_circuits_denoise_exactly_like_the_ideal_codec(kind):
    model, config = firing_tiny_denoiser()
    _, noisy = tiny_test_set()
    adc, dac = make_circuits(8, kind, seed=5)
    with_circuits = denoise_with_circuits(model, config, noisy, adc, dac, batch_size=4)
    assert torch.equal(with_circuits, denoise_images(model, noisy, config, batch_size=4))
    assert 0 < with_circuits.mean() < 1                      # the output really spikes


def test_end_to_end_sweep_records():
    model, config = firing_tiny_denoiser()
    clean, noisy = tiny_test_set()
    ideal_chip, mismatched = end_to_end_sweep(model, config, clean, noisy, "mismatch", [0.0, 0.2], kind="r2r",
                                              seeds=(0, 1), comparator_offset=0.0)
    assert ideal_chip["psnr_per_seed"] == [ideal_chip["psnr_ideal"]] * 2 and ideal_chip["psnr_std"] == 0.0
    assert ideal_chip["psnr_ideal"] == psnr(denoise_images(model, noisy, config), clean.float() / 255).item()
    assert mismatched["psnr_mean"] != mismatched["psnr_ideal"] and mismatched["psnr_std"] > 0
    assert mismatched["parameter"] == "mismatch" and mismatched["value"] == 0.2 and mismatched["kind"] == "r2r"
    assert mismatched["seeds"] == [0, 1] and mismatched["fixed"] == {"comparator_offset": 0.0}
    assert mismatched["noisy_psnr"] == pytest.approx(psnr(noisy.float() / 255, clean.float() / 255).item())
    assert mismatched["test_images"] == 6 and mismatched["bits"] == 8


def test_comparator_offset_of_one_lsb_adds_one_code_to_every_pixel():
    model, config = firing_tiny_denoiser()
    _, noisy = tiny_test_set()
    adc, dac = make_circuits(8, comparator_offset=1 / 256)
    shifted = denoise_with_circuits(model, config, noisy, adc, dac)
    expected = denoise_images(model, (noisy.to(torch.int64) + 1).clamp(max=255).to(torch.uint8), config)
    assert torch.equal(shifted, expected)


def test_a_shared_cache_simulates_each_distinct_chip_once(monkeypatch):
    model, config = firing_tiny_denoiser()
    clean, noisy = tiny_test_set()
    calls = []
    real = circuits_module.denoise_with_circuits

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(circuits_module, "denoise_with_circuits", counting)
    cache = {}
    binary = end_to_end_sweep(model, config, clean, noisy, "comparator_offset", [0.0, 0.004], kind="binary",
                              seeds=(0, 1, 2), cache=cache)
    assert len(calls) == 2                                  # without noise or mismatch the seed changes nothing
    r2r = end_to_end_sweep(model, config, clean, noisy, "comparator_offset", [0.0, 0.004], kind="r2r",
                           seeds=(0, 1, 2), cache=cache)
    assert len(calls) == 2                                  # ideal R-2R ladders equal ideal binary DACs
    assert [r["psnr_mean"] for r in r2r] == [r["psnr_mean"] for r in binary]
    end_to_end_sweep(model, config, clean, noisy, "comparator_noise", [0.004], seeds=(0, 1), cache=cache)
    assert len(calls) == 4                                  # noisy comparators: one simulation per seed


def test_end_to_end_plot(tmp_path):
    model, config = firing_tiny_denoiser()
    clean, noisy = tiny_test_set(count=2)
    records = []
    for parameter, values in (("mismatch", [0.0, 0.05]), ("comparator_noise", [0.0, 0.004]),
                              ("v_ref_error", [0.0, 0.02])):
        records += end_to_end_sweep(model, config, clean, noisy, parameter, values, seeds=(0,))
    path = tmp_path / "psnr.png"
    plot_end_to_end(records, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert parameter_axis_value(records[3]) == pytest.approx(1.024)       # 0.004 V in LSB of 1/256 V


def test_circuits_need_a_uwe_uwd_model_with_8_bit_parts():
    _, noisy = tiny_test_set(count=1)
    for overrides in ({"training": "ann", "init": "default"}, {"encoder": "ttfs"}, {"decoder": "mpd"}):
        config = TrainConfig(channels=(4, 8), **overrides)
        with pytest.raises(ValueError, match="replace the UWE encoder"):
            denoise_with_circuits(build_model(config), config, noisy, *make_circuits(8))
    model, config = firing_tiny_denoiser()
    with pytest.raises(ValueError, match="8-bit spike trains; got a 6-bit SARADC"):
        denoise_with_circuits(model, config, noisy, *make_circuits(6))
    with pytest.raises(ValueError, match="batch_size"):
        denoise_with_circuits(model, config, noisy, *make_circuits(8), batch_size=0)
    with pytest.raises(ValueError, match="unknown sweep parameter"):
        end_to_end_sweep(model, config, noisy, noisy, "temperature", [0.0])
