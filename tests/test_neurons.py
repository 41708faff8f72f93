import logging
import math

import pytest
import torch

from vtsnn.neurons import IF, LIF, HeavisideATan, atan_surrogate, charged_membranes, make_neuron, use_compiled_kernels


@pytest.fixture(params=[True, False], ids=["compiled", "eager"])
def kernels(request):
    """Run a test with the torch.compile-d kernels and with the same functions eager."""
    use_compiled_kernels(request.param)
    yield request.param
    use_compiled_kernels(True)


@pytest.mark.parametrize("u", [-1.0, -0.3, 0.0, 0.1, 0.5, 2.0])
def test_surrogate_gradient_matches_the_formula(u):
    x = torch.tensor(u, requires_grad=True)
    HeavisideATan.apply(x).backward()
    assert x.grad.item() == pytest.approx(1.0 / (1.0 + (math.pi * u) ** 2), rel=1e-6)


@pytest.mark.parametrize("temporal_grad", [False, True])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_neuron_surrogate_gradient_through_the_module(temporal_grad, backend):
    # A single step: d s / d x = surrogate(x - V_th) whatever the temporal mode.
    x = torch.tensor([[0.2, 0.9, 1.0, 1.7]], requires_grad=True)
    IF(v_threshold=1.0, temporal_grad=temporal_grad, backend=backend)(x).sum().backward()
    expected = 1.0 / (1.0 + (math.pi * (x.detach() - 1.0)) ** 2)
    assert torch.allclose(x.grad, expected)


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_soft_and_hard_reset_hand_worked(backend, kernels):
    x = torch.tensor([0.6, 0.6, 0.6, 1.5, 0.2]).view(5, 1)
    # soft: v = .6, 1.2 -> fire, .2 ; .8 ; 2.3 -> fire, 1.3 ; 1.5 -> fire, .5
    soft = IF(v_threshold=1.0, backend=backend)(x).view(-1).tolist()
    assert soft == [0, 1, 0, 1, 1]
    # hard (to 0): v = .6, 1.2 -> fire, 0 ; .6 ; 2.1 -> fire, 0 ; .2
    hard = IF(v_threshold=1.0, v_reset=0.0, backend=backend)(x).view(-1).tolist()
    assert hard == [0, 1, 0, 1, 0]


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_lif_leaks(backend):
    # v <- v + (x - v) / tau with tau = 2: constant input 1.5 charges .75, 1.125 -> fire
    x = torch.full((3, 1), 1.5)
    assert LIF(tau=2.0, backend=backend)(x).view(-1).tolist() == [0, 1, 0]
    # the same input on an IF neuron fires at once
    assert IF(backend=backend)(x).view(-1).tolist() == [1, 1, 1]


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_detached_membrane_blocks_gradient_through_time(backend):
    x = torch.full((4, 3), 0.4, requires_grad=True)
    out = IF(v_threshold=1.0, temporal_grad=False, backend=backend)(x)
    (grad_first,) = torch.autograd.grad(out[-1].sum(), x)
    assert torch.count_nonzero(grad_first[0]) == 0          # exactly zero, not small
    assert torch.count_nonzero(grad_first[-1]) == 3

    x2 = x.detach().clone().requires_grad_(True)
    out2 = IF(v_threshold=1.0, temporal_grad=True, backend=backend)(x2)
    (grad_through_time,) = torch.autograd.grad(out2[-1].sum(), x2)
    assert grad_through_time[0].abs().min() > 0


@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("temporal_grad", [False, True])
@pytest.mark.parametrize("v_reset", [None, 0.0, -0.2])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_fused_kernel_matches_reference_spikes_and_gradients(kind, temporal_grad, v_reset, detach_reset, kernels):
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 4, 3, 5, 5, generator=generator, dtype=torch.float64) * 0.8 + 0.4)
    grad_out = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    results = []
    for backend in ("fused", "reference"):
        xi = x.clone().requires_grad_(True)
        neuron = make_neuron(kind, v_threshold=1.0, v_reset=v_reset, temporal_grad=temporal_grad,
                             detach_reset=detach_reset, backend=backend)
        spikes = neuron(xi)
        (spikes * grad_out).sum().backward()
        results.append((spikes.detach(), xi.grad))
    (fused_spikes, fused_grad), (ref_spikes, ref_grad) = results
    assert torch.equal(fused_spikes, ref_spikes)
    assert fused_spikes.sum() > 0 and fused_spikes.sum() < fused_spikes.numel()
    torch.testing.assert_close(fused_grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_itbp_gradient_is_bit_identical_in_float32(kernels):
    x = torch.randn(8, 2, 16, 7, 7, generator=torch.Generator().manual_seed(1)) + 0.5
    grads = []
    for backend in ("fused", "reference"):
        xi = x.clone().requires_grad_(True)
        IF(backend=backend)(xi).sum().backward()
        grads.append(xi.grad)
    assert torch.equal(grads[0], grads[1])


def test_state_does_not_leak_between_calls():
    neuron = IF()
    x = torch.full((3, 2), 0.7)
    first = neuron(x)
    assert torch.equal(neuron(x), first)


def test_input_validation():
    with pytest.raises(ValueError, match="time-first"):
        IF()(torch.zeros(3))
    with pytest.raises(ValueError, match="tau"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match="v_threshold"):
        IF(v_threshold=0)
    with pytest.raises(ValueError, match="unknown neuron"):
        make_neuron("izhikevich")


def test_surrogate_function_values():
    assert atan_surrogate(torch.tensor(0.0)).item() == 1.0
    assert atan_surrogate(torch.tensor(1.0)).item() == pytest.approx(1 / (1 + math.pi ** 2))


def test_default_surrogate_alpha_is_the_old_formula_bit_for_bit():
    # alpha = 2 must not move a single trained model: same bits as 1 / (1 + (pi u)^2).
    u = torch.randn(10_000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(atan_surrogate(u), 1.0 / (1.0 + (math.pi * u) ** 2))


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_surrogate_alpha_sets_peak_and_width(alpha):
    # spikingjelly's ATan(alpha): peak alpha / 2, half the peak at |u| = 2 / (pi alpha).
    assert atan_surrogate(torch.tensor(0.0), alpha).item() == pytest.approx(alpha / 2)
    half_width = 2 / (math.pi * alpha)
    assert atan_surrogate(torch.tensor(half_width), alpha).item() == pytest.approx(alpha / 4)
    x = torch.tensor(0.3, requires_grad=True)
    HeavisideATan.apply(x, alpha).backward()
    assert x.grad.item() == pytest.approx((alpha / 2) / (1 + (math.pi / 2 * alpha * 0.3) ** 2))


@pytest.mark.parametrize("temporal_grad", [False, True])
def test_surrogate_alpha_changes_gradients_not_spikes(temporal_grad, kernels):
    x = torch.randn(8, 3, 20, generator=torch.Generator().manual_seed(4)) * 0.8 + 0.4
    spikes, grads = [], []
    for alpha in (2.0, 4.0):
        xi = x.clone().requires_grad_(True)
        out = IF(temporal_grad=temporal_grad, surrogate_alpha=alpha)(xi)
        out.sum().backward()
        spikes.append(out.detach())
        grads.append(xi.grad)
    assert torch.equal(spikes[0], spikes[1])
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("temporal_grad", [False, True])
def test_fused_kernel_matches_reference_with_another_surrogate_alpha(kind, temporal_grad, kernels):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(8, 4, 30, generator=generator, dtype=torch.float64) * 0.8 + 0.4
    grad_out = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    grads = []
    for backend in ("fused", "reference"):
        xi = x.clone().requires_grad_(True)
        neuron = make_neuron(kind, temporal_grad=temporal_grad, surrogate_alpha=5.0, backend=backend)
        (neuron(xi) * grad_out).sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_surrogate_alpha_must_be_positive():
    with pytest.raises(ValueError, match="surrogate_alpha"):
        IF(surrogate_alpha=0.0)


def test_bf16_input_keeps_float32_state_and_exact_spikes(kernels):
    # Inputs exactly representable in bf16: the spikes must equal the float32 run's.
    x = (torch.randint(-4, 12, (8, 2, 3, 4, 4), generator=torch.Generator().manual_seed(2)) / 8.0)
    spikes32 = IF()(x)
    spikes16 = IF()(x.bfloat16())
    assert spikes16.dtype == torch.bfloat16
    assert torch.equal(spikes16.float(), spikes32)


def test_channels_last_layout_is_kept_and_gives_the_same_spikes(kernels):
    x = torch.randn(16, 3, 5, 6).to(memory_format=torch.channels_last) + 0.5
    time_first = x.unflatten(0, (4, 4))
    out = IF()(time_first)
    assert out.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, IF()(time_first.contiguous()))


def test_a_failing_compiler_falls_back_to_eager_kernels(monkeypatch):
    from vtsnn import neurons

    def broken_compile(function, **options):
        def fail(*args):
            raise RuntimeError("no C++ compiler")
        return fail

    kernels = neurons._Kernels()
    kernels.compiled = True
    monkeypatch.setattr(neurons.torch, "compile", broken_compile)
    monkeypatch.setattr(neurons, "KERNELS", kernels)
    x = torch.full((3, 2), 0.7)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        spikes = IF()(x)
    assert spikes.view(-1).tolist() == [0, 0, 1, 1, 1, 1]
    assert kernels.compiled is False


def test_many_kernel_variants_stay_compiled(caplog):
    """Dtypes x modes x layer shapes exceed Dynamo's default of 8 compiled variants."""
    caplog.set_level(logging.WARNING, logger="torch._dynamo")
    for dtype in (torch.float32, torch.bfloat16):
        for channels in (1, 3):          # a size-1 dimension is a variant of its own
            for mode in ("inference", "itbp", "bptt"):
                x = torch.randn(4, 2, channels, 4, 4, dtype=dtype, requires_grad=mode != "inference")
                spikes = IF(temporal_grad=mode == "bptt")(x)
                if mode != "inference":
                    spikes.sum().backward()
    assert not [r for r in caplog.records if "recompile" in r.getMessage()]


@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("v_reset", [None, 0.0])
def test_bf16_through_time_gradients_are_the_same_with_recomputed_membranes(kind, v_reset, kernels, monkeypatch):
    from vtsnn import neurons
    generator = torch.Generator().manual_seed(3)
    x = (torch.randn(8, 4, 6, 5, 5, generator=generator) * 0.8 + 0.4).bfloat16()
    grad_out = torch.randn(x.shape, generator=generator).bfloat16()
    results = []
    for recompute in (True, False):
        monkeypatch.setattr(neurons, "RECOMPUTE_MEMBRANES", recompute)
        xi = x.clone().requires_grad_(True)
        spikes = make_neuron(kind, v_reset=v_reset, temporal_grad=True)(xi)
        (spikes * grad_out).float().sum().backward()
        results.append((spikes.detach(), xi.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][1].abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("temporal_grad", [False, True])
def test_fused_kernels_on_cuda_match_the_reference(kind, temporal_grad):
    # On a GPU the compiled kernels are Triton code, not the C++ of the CPU tests above.
    generator = torch.Generator().manual_seed(3)
    x = (torch.randn(8, 4, 16, 7, 7, generator=generator) * 0.8 + 0.4).cuda()
    grad_out = torch.randn(x.shape, generator=generator).cuda()
    results = []
    for backend in ("fused", "reference"):
        xi = x.clone().requires_grad_(True)
        spikes = make_neuron(kind, temporal_grad=temporal_grad, backend=backend)(xi)
        (spikes * grad_out).sum().backward()
        results.append((spikes.detach(), xi.grad))
    (fused_spikes, fused_grad), (ref_spikes, ref_grad) = results
    assert fused_spikes.is_cuda and torch.equal(fused_spikes, ref_spikes)
    torch.testing.assert_close(fused_grad, ref_grad, rtol=1e-5, atol=1e-6)


def test_charged_membranes_are_what_the_threshold_is_compared_with():
    # IF, soft reset: 0.6, then 1.2 (fires, keeps 0.2), then 0.8.
    h = charged_membranes(IF(v_threshold=1.0), torch.full((3, 1), 0.6))
    assert h.flatten().tolist() == pytest.approx([0.6, 1.2, 0.8])
    torch.manual_seed(0)
    x = torch.rand(6, 2, 3, 4, 4)
    for neuron in (IF(v_threshold=0.5), LIF(tau=2.0, v_threshold=0.5), IF(v_threshold=0.5, v_reset=0.0)):
        membranes = charged_membranes(neuron, x)
        assert membranes.shape == x.shape and membranes.dtype == torch.float32
        assert torch.equal((membranes >= 0.5).float(), neuron(x))
    bf16 = x.to(torch.bfloat16).to(memory_format=torch.channels_last_3d)    # kept in float32, in x's layout
    assert torch.equal((charged_membranes(IF(v_threshold=0.5), bf16) >= 0.5).float(), IF(v_threshold=0.5)(bf16).float())
