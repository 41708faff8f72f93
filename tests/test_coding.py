import pytest
import torch
from hypothesis import given, settings, strategies as st

from vtsnn.coding import (decode, decoder_weights, full_scale, mpd_decode, quantize, ttfs_decode,
                          ttfs_encode, uwd_decode, uwe_encode)


@pytest.mark.parametrize("bits", range(1, 17))
def test_uwe_uwd_round_trip_is_exact_for_every_value(bits):
    values = torch.arange(0, 2 ** bits, dtype=torch.int64)
    spikes = uwe_encode(values, bits=bits)
    assert spikes.shape == (bits, 2 ** bits)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    # float64 holds every 16-bit integer exactly, so equality must be exact.
    assert torch.equal(uwd_decode(spikes.double()).to(torch.int64), values)


def test_bit_order_msb_first_hand_computed():
    assert uwe_encode(torch.tensor(217)).tolist() == [1, 1, 0, 1, 1, 0, 0, 1]
    assert uwe_encode(torch.tensor(1)).tolist() == [0, 0, 0, 0, 0, 0, 0, 1]
    assert uwe_encode(torch.tensor(128)).tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert uwe_encode(torch.tensor(5), bits=3).tolist() == [1, 0, 1]
    assert uwe_encode(torch.tensor(40000), bits=16).tolist() == [int(b) for b in format(40000, "016b")]


def test_uwe_accepts_uint8_and_integral_floats():
    image = torch.tensor([[0, 255], [217, 3]], dtype=torch.uint8)
    assert torch.equal(uwe_encode(image), uwe_encode(image.float()))
    assert uwe_encode(image).dtype == torch.float32


def test_uint8_above_a_small_bit_depth_is_still_refused():
    # uint8 skips the range check only where every uint8 fits (bits >= 8).
    with pytest.raises(ValueError, match="above 15"):
        uwe_encode(torch.tensor([16], dtype=torch.uint8), bits=4)
    assert torch.equal(uwd_decode(uwe_encode(torch.tensor([15], dtype=torch.uint8), bits=4)), torch.tensor([15.0]))


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([1.5]), "fractional"),
    (torch.tensor([-1]), "negative"),
    (torch.tensor([float("nan")]), "NaN"),
    (torch.tensor([float("inf")]), "NaN or infinite"),
    (torch.tensor([256]), "above 255"),
])
def test_uwe_rejects_invalid_input(bad, message):
    with pytest.raises(ValueError, match=message):
        uwe_encode(bad, bits=8)


@pytest.mark.parametrize("bits", [0, 17, -3, 2.5, True])
def test_uwe_rejects_bad_bit_depths(bits):
    with pytest.raises(ValueError, match="bits"):
        uwe_encode(torch.tensor([0]), bits=bits)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 16), shape=st.lists(st.integers(1, 5), min_size=0, max_size=4), seed=st.integers(0, 2**31))
def test_round_trip_on_random_shapes(bits, shape, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2 ** bits, tuple(shape), generator=generator)
    spikes = uwe_encode(x, bits=bits)
    assert spikes.shape == (bits, *shape)
    assert torch.equal(uwd_decode(spikes.double()).round().to(torch.int64), x)


def test_uwd_is_differentiable_with_the_bit_weights():
    spikes = torch.zeros(8, 3, requires_grad=True)
    uwd_decode(spikes).sum().backward()
    assert spikes.grad[:, 0].tolist() == [128, 64, 32, 16, 8, 4, 2, 1]


def test_ttfs_spike_times_and_round_trip():
    x = torch.tensor([255, 0, 128, 32])
    spikes = ttfs_encode(x, bits=8)
    assert spikes.shape == (8, 4)
    assert spikes.sum(0).tolist() == [1, 0, 1, 1]          # black never fires
    assert spikes[:, 0].argmax().item() == 0                 # full scale fires first
    # t = floor((255 - 128) / 255 * 8) = 3 ; t = floor((255 - 32) / 255 * 8) = 6
    assert spikes[:, 2].argmax().item() == 3 and spikes[:, 3].argmax().item() == 6
    decoded = ttfs_decode(spikes, max_value=255)
    assert decoded[0].item() == 255 and decoded[1].item() == 0
    # decoding loses at most one time bin of 255/8
    assert (decoded - x.float()).abs().max() <= 255 / 8 + 1e-6


def test_ttfs_per_image_max_uses_each_images_maximum():
    images = torch.tensor([[10, 5], [200, 100]])
    spikes = ttfs_encode(images, bits=8, per_image=True)
    assert spikes[0, 0, 0] == 1 and spikes[0, 1, 0] == 1     # each image's max fires at t=0


def test_ttfs_decode_uses_only_the_first_spike():
    spikes = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    assert ttfs_decode(spikes, max_value=100).item() == pytest.approx(100 * (1 - 1 / 4))


def test_mpd_weights_and_range():
    spikes = torch.zeros(8, 1)
    spikes[-1] = 1
    assert mpd_decode(spikes).item() == pytest.approx(torch.tanh(torch.tensor(1.0)).item() * 255)
    spikes[0] = 1
    assert mpd_decode(spikes).item() == pytest.approx(torch.tanh(torch.tensor(1 + 0.8 ** 7)).item() * 255, rel=1e-6)
    assert mpd_decode(torch.ones(8, 1)).item() <= 255
    w = decoder_weights("mpd", 4)
    assert torch.allclose(w, torch.tensor([0.8 ** 3, 0.8 ** 2, 0.8, 1.0]))


def test_mpd_early_reverses_the_weights_and_decodes_ttfs_in_brightness_order():
    assert torch.allclose(decoder_weights("mpd-early", 4), torch.tensor([1.0, 0.8, 0.8 ** 2, 0.8 ** 3]))
    assert torch.allclose(decoder_weights("mpd-early", 8), decoder_weights("mpd", 8).flip(0))
    levels = torch.arange(0, 256, 15, dtype=torch.int32)
    spikes = ttfs_encode(levels, bits=8)
    early, late = decode(spikes, "mpd-early"), decode(spikes, "mpd")
    # With the first step weighing most, brighter pixels (earlier spikes) decode brighter;
    # DESIGN.md's MPD inverts them (black, no spike, is 0 in both).
    assert torch.all(early[1:].diff() >= 0) and torch.all(late[1:].diff() <= 0)
    assert early[-1] > early[1] and late[-1] < late[1]


def test_decode_dispatch_and_errors():
    spikes = uwe_encode(torch.tensor([77]))
    assert decode(spikes, "uwd").item() == 77
    with pytest.raises(ValueError, match="unknown decoder"):
        decode(spikes, "xyz")


def test_lsb_first_decoder_reads_the_planes_in_reverse():
    values = torch.arange(256)
    lsb_first = uwe_encode(values).flip(0)
    assert lsb_first[0].tolist() == (values & 1).tolist()          # step 0 carries the LSB
    assert torch.equal(decode(lsb_first, "uwd-lsb"), values.float())
    assert decoder_weights("uwd-lsb", 8).tolist() == [1, 2, 4, 8, 16, 32, 64, 128]


def test_quantize_maps_unit_interval_to_codes():
    assert quantize(torch.tensor([0.0, 1.0, 0.5, 2.0, -1.0])).tolist() == [0, 255, 128, 255, 0]
    assert full_scale(16) == 65535


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_round_trip_on_cuda():
    x = torch.randint(0, 256, (4, 5), device="cuda")
    spikes = uwe_encode(x)
    assert spikes.is_cuda and torch.equal(uwd_decode(spikes).long(), x)
