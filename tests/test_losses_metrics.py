import math

import pytest
import torch

from vtsnn.coding import uwd_decode, uwe_encode
from vtsnn.losses import flip_decoded_loss, flip_targets, itbp_loss, residual_targets, stbp_loss
from vtsnn.metrics import psnr, standard_error


def test_itbp_loss_weights_planes_by_the_decoder():
    target = torch.zeros(8, 1, 4)
    msb_wrong = target.clone()
    msb_wrong[0] = 1
    lsb_wrong = target.clone()
    lsb_wrong[7] = 1
    assert itbp_loss(msb_wrong, target).item() == pytest.approx(128 / 255)
    assert itbp_loss(lsb_wrong, target).item() == pytest.approx(1 / 255)
    mpd = itbp_loss(lsb_wrong, target, decoder="mpd").item()
    weights = [0.8 ** k for k in range(8)]
    assert mpd == pytest.approx(1.0 / sum(weights))
    assert itbp_loss(target, target).item() == 0


def test_squared_plane_weights_equal_the_decoded_mse_when_one_plane_is_wrong():
    clean = torch.tensor([[0.0, 200 / 255, 1.0]])
    target = uwe_encode(torch.round(clean * 255))
    squares = sum(4 ** k for k in range(8))
    for plane in range(8):
        wrong = target.clone()
        wrong[plane] = 1 - wrong[plane]
        squared = itbp_loss(wrong, target, squared_weights=True).item()
        assert squared == pytest.approx(4 ** (7 - plane) / squares)
        # A flipped bit in plane t moves every pixel by 2^(7-t): the decoded MSE, rescaled.
        assert squared * squares / 255 ** 2 == pytest.approx(stbp_loss(wrong, clean).item())
    assert itbp_loss(target, target, squared_weights=True).item() == 0


def test_stbp_loss_decodes_before_comparing():
    clean = torch.tensor([[0.5, 1.0]])
    exact = uwe_encode(torch.round(clean * 255))
    assert stbp_loss(exact, clean).item() == pytest.approx(((128 / 255 - 0.5) ** 2) / 2, abs=1e-9)
    assert stbp_loss(torch.zeros_like(exact), clean).item() == pytest.approx((0.25 + 1) / 2)
    mpd = stbp_loss(torch.zeros_like(exact), clean, decoder="mpd").item()
    assert mpd == pytest.approx((0.25 + 1) / 2)  # tanh(0) = 0


def test_losses_give_gradients_and_check_shapes():
    out = torch.rand(8, 2, 1, 4, 4, requires_grad=True)
    itbp_loss(out, torch.zeros(8, 2, 1, 4, 4)).backward()
    assert out.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shapes differ"):
        itbp_loss(out, torch.zeros(4, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="shapes differ"):
        stbp_loss(out, torch.zeros(2, 1, 5, 4))


def test_residual_targets_are_the_clean_bits_while_the_output_is_right():
    clean = torch.arange(256).view(1, 16, 16)
    planes = uwe_encode(clean)
    assert torch.equal(residual_targets(planes, clean), planes)
    # A wrong last plane changes no target: nothing comes after it.
    wrong_lsb = planes.clone()
    wrong_lsb[7] = 1 - wrong_lsb[7]
    assert torch.equal(residual_targets(wrong_lsb, clean), planes)


def test_residual_targets_correct_a_wrong_plane_with_the_later_ones():
    msb_on = torch.zeros(8, 2)
    msb_on[0] = 1
    targets = residual_targets(msb_on, torch.tensor([100, 200]))
    # 100 with the MSB on (128 already): every later plane off. 200 needs the MSB, and
    # with nothing emitted after it, 72 to go: the next plane (64) on.
    assert targets[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    assert targets[:2, 1].tolist() == [1, 1]
    # 200 with the MSB off: every later plane on, the closest to 200 (127) left.
    assert residual_targets(torch.zeros(8, 1), torch.tensor([200]))[1:, 0].tolist() == [1] * 7


def test_following_the_residual_targets_reaches_the_closest_value():
    # For every clean value and every choice of the first t planes of a 5-bit code,
    # emitting the targets from plane t on decodes as close to the clean value as any
    # completion of those planes can.
    bits = 5
    clean = torch.arange(1 << bits).repeat_interleave(1 << bits)
    for t in range(bits + 1):
        prefixes = uwe_encode(torch.arange(1 << bits).repeat(1 << bits), bits)
        output = prefixes.clone()
        output[t:] = 0
        for plane in range(t, bits):
            output[plane] = residual_targets(output, clean)[plane]
        prefix_value = uwd_decode(torch.cat([output[:t], torch.zeros(bits - t, clean.numel())]))
        best = (clean - prefix_value).clamp(0, (1 << (bits - t)) - 1) + prefix_value
        assert torch.equal(uwd_decode(output), best)


def test_residual_targets_check_shapes():
    with pytest.raises(ValueError, match="does not hold T planes"):
        residual_targets(torch.zeros(8, 2, 3), torch.zeros(2, 4))


def test_flip_decoded_loss_is_the_decoded_mse_with_exact_flip_gradients():
    generator = torch.Generator().manual_seed(0)
    spikes = torch.randint(0, 2, (8, 2, 3), generator=generator).float().requires_grad_()
    clean = torch.rand(2, 3, generator=generator)
    loss = flip_decoded_loss(spikes, clean)
    assert loss.item() == pytest.approx(stbp_loss(spikes, clean).item())
    loss.backward()
    for t in range(8):
        on, off = spikes.detach().clone(), spikes.detach().clone()
        on[t], off[t] = 1, 0
        # Per pixel: the error with bit t on minus the error with it off, over the pixel count.
        change = ((uwd_decode(on) / 255 - clean) ** 2 - (uwd_decode(off) / 255 - clean) ** 2) / clean.numel()
        assert torch.allclose(spikes.grad[t], change, atol=1e-7)


def test_flip_gradients_leave_the_msb_alone_for_a_small_shortfall():
    clean = torch.tensor([100 / 255])
    spikes = uwe_encode(torch.tensor([90])).requires_grad_()        # 0b01011010: 10 levels short, MSB off
    flip_decoded_loss(spikes, clean).backward()
    assert spikes.grad[0].item() > 0                                 # descent keeps the MSB off,
    assert spikes.grad[2].item() > 0                                 # and plane 2 (32: 122 overshoots),
    assert spikes.grad[5].item() < 0                                 # but turns plane 5 (4) on: 94
    slope = spikes.detach().clone().requires_grad_()
    stbp_loss(slope, clean).backward()
    assert slope.grad[0].item() < 0                                  # STBP's slope pushes the MSB on


def test_flip_targets_are_the_better_bit_with_the_other_planes_as_emitted():
    clean = torch.arange(256)
    planes = uwe_encode(clean)
    assert torch.equal(flip_targets(planes, clean), planes)              # a right output keeps its bits
    generator = torch.Generator().manual_seed(1)
    spikes = torch.randint(0, 2, (8, 256), generator=generator).float()
    targets = flip_targets(spikes, clean)
    for t in range(8):
        on, off = spikes.clone(), spikes.clone()
        on[t], off[t] = 1, 0
        closer_on = (uwd_decode(on) - clean).abs() < (uwd_decode(off) - clean).abs()
        assert torch.equal(targets[t], closer_on.float())
    with pytest.raises(ValueError, match="does not hold T planes"):
        flip_targets(torch.zeros(8, 2, 3), torch.zeros(2, 4))


def test_psnr_per_image_and_mean():
    target = torch.zeros(2, 1, 4, 4)
    pred = target.clone()
    pred[0] += 0.1          # MSE 0.01 -> 20 dB
    pred[1] += 0.01         # MSE 1e-4 -> 40 dB
    per_image = psnr(pred, target, reduction="none")
    assert per_image.tolist() == pytest.approx([20.0, 40.0])
    assert psnr(pred, target).item() == pytest.approx(30.0)      # mean of per-image values
    assert psnr(pred * 255, target, data_range=255).item() == pytest.approx(30.0)
    assert math.isinf(psnr(target, target).item())
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(pred, target[:1])


def test_standard_error_of_psnr_is_the_per_image_spread_over_the_root_of_the_count():
    def psnr_standard_error(pred, target):
        return standard_error(psnr(pred, target, reduction="none"))

    target = torch.zeros(4, 1, 2, 2)
    pred = torch.tensor([0.1, 0.01, 0.1, 0.01]).view(4, 1, 1, 1).expand(4, 1, 2, 2)   # 20, 40, 20, 40 dB
    assert psnr(pred, target).item() == pytest.approx(30.0)
    sd = math.sqrt(4 * 10.0 ** 2 / 3)                                  # sample standard deviation of the four
    assert psnr_standard_error(pred, target) == pytest.approx(sd / 2)
    assert psnr_standard_error(pred[:2].clone().fill_(0.1), target[:2]) == pytest.approx(0.0)
    assert math.isnan(psnr_standard_error(pred[:1], target[:1]))         # one image: no spread to measure
    assert math.isnan(psnr_standard_error(torch.cat([pred[:1], target[:1]]), target[:2]))   # a perfect image
