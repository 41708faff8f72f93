"""Training and evaluation of denoisers: ITBP, STBP and the ANN twin.

A :class:`~vtsnn.config.TrainConfig` says everything that defines a run; :func:`train`
runs it with a progress bar, evaluates on the fixed noisy test set after every epoch,
appends to ``log.jsonl`` and writes an atomic checkpoint per epoch
(:mod:`vtsnn.run_folder`), so that ``resume=True`` continues an interrupted run to the
same final weights as an uninterrupted one. :func:`load_trained` loads a trained model;
:func:`denoise_images` and :func:`evaluate` run it.

The losses (``config.loss``): the paper's bit-plane loss and STBP's decoded MSE;
``"bitplane-squared"`` (ours) weighs each bit plane by its decoder weight squared, the
plane's share of the pixel MSE; ``"bitplane-residual"`` (ours) sets each plane's target
to the bit that best corrects the planes the network has already emitted
(``losses.residual_targets``); ``"bitplane-flip"`` (ours) sets it to the better bit with
the other planes as emitted (``losses.flip_targets``); ``"decoded-flip"`` (ours) is the
decoded MSE with each bit's gradient the change in error that flipping it makes
(``losses.flip_decoded_loss``).

With ``config.teacher`` (ours) the target image is not the clean image but a trained
denoiser's output for the same noisy batch, rounded to 8 bits (:func:`teacher_targets`):
the clean image's bits are partly unpredictable from the noisy input, the teacher's are
a function of it.

*Decision:* the bit-plane target is the clean image encoded with the *input*
encoder (UWE or TTFS), as the paper's "encoded label"; evaluation always decodes the
output with the configured decoder.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import machine
from .allocator import keep_freed_memory
from .averaging import WeightAverage
from .coding import decode, ttfs_encode, uwe_encode
from .config import BITS, MODEL_KEYS, RESUME_KEYS, TrainConfig
from .data import add_noise, fixed_test_noise, load_dataset, mirror_random_half, shift_randomly, to_uint8
from .energy import LayerCount, count_operations_on_images
from .jitter import jitter_factors, output_jittered
from .losses import flip_decoded_loss, flip_targets, itbp_loss, residual_targets, stbp_loss
from .metrics import psnr, standard_error
from .models import UNetANN, UVTSNN
from .probes import FiringRates
from .run_folder import (append_log, claim_run_dir, keep_if_best, latest_checkpoint, resolve_checkpoint,
                         save_checkpoint, start_or_resume, stored_raw_weights, unwrap_model)


# ----------------------------------------------------------------------------- models

def build_model(config: TrainConfig) -> torch.nn.Module:
    if config.training == "ann":
        return UNetANN(config.in_channels, config.in_channels, config.channels)
    model = UVTSNN(config.in_channels, config.in_channels, config.channels, neuron=config.neuron,
                   v_threshold=config.v_threshold, output_threshold=config.output_threshold,
                   tau=config.tau, temporal_grad=config.temporal_grad, detach_reset=config.detach_reset,
                   surrogate_alpha=config.surrogate_alpha)
    if config.init == "spiking":
        scale_for_spiking_inputs(model, config.init_gain)
    return model


@torch.no_grad()
def scale_for_spiking_inputs(model: torch.nn.Module, gain: float) -> None:
    """Kaiming-normal weights with a gain chosen for 0/1 inputs and a threshold of 1.

    PyTorch's default (uniform, std ``1/sqrt(3 fan_in)``) gives pre-activations far
    below the threshold when inputs are sparse spikes, so most layers stay silent at
    initialization and learn slowly. ``std = gain / sqrt(fan_in)`` restores firing.
    """
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weight = module.weight
            fan_in = weight[0].numel() if isinstance(module, torch.nn.Conv2d) else weight.shape[0] * weight[0, 0].numel()
            weight.normal_(0.0, gain / math.sqrt(fan_in))


# --------------------------------------------------------------------- encode / decode

def encode_input(noisy: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """8-bit images ``[B, C, H, W]`` -> input of the model (spikes, or [0, 1] floats for the ANN)."""
    if config.training == "ann":
        return noisy.float() / 255.0
    if config.encoder == "ttfs":
        return ttfs_encode(noisy, bits=BITS)
    if config.encoder == "uwe-lsb":
        return uwe_encode(noisy, bits=BITS).flip(0)
    return uwe_encode(noisy, bits=BITS)


def output_to_image(output: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Model output -> denoised image in ``[0, 1]``."""
    if config.training == "ann":
        return output.float().clamp(0.0, 1.0)
    return (decode(output.float(), config.decoder) / 255.0).clamp(0.0, 1.0)


def compute_loss(output: torch.Tensor, clean: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The configured loss; a loss of several terms (``"a+b"``) is their sum."""
    return sum(loss_term(term, output, clean, config) for term in config.loss_terms)


def loss_term(term: str, output: torch.Tensor, clean: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if term == "mse":
        return torch.nn.functional.mse_loss(output.float(), clean.float() / 255.0)
    if term == "decoded":
        return stbp_loss(output, clean.float() / 255.0, config.decoder)
    if term == "decoded-flip":
        return flip_decoded_loss(output, clean.float() / 255.0)
    if term == "bitplane-residual":
        return itbp_loss(output, residual_targets(output, clean), config.decoder)
    if term == "bitplane-flip":
        return itbp_loss(output, flip_targets(output, clean), config.decoder)
    return itbp_loss(output, encode_input(clean, config), config.decoder,
                     squared_weights=term == "bitplane-squared")


def autocast_for(config: TrainConfig, device: torch.device):
    if config.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


SLOW_BF16_WARNING = (
    "vtsnn: this CPU has no native bf16 arithmetic (neither AMX nor AVX-512 BF16), so bf16 runs "
    "emulated, several times slower than fp32 (training 8x and inference 6x slower on an AVX2 AMD "
    "EPYC: results/benchmarks/throughput-avx2.json). fp32 is faster here: --precision fp32 "
    "(vtsnn train, evaluate, denoise, energy, circuit) or --override precision=fp32 (vtsnn "
    "reproduce); a model may score slightly differently in it (results/precision-inference).")


def prepare_model(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if config.precision == "bf16" and device.type == "cpu" and machine.cpu_has_native_bf16() is False:
        # Python shows this once per process: it comes from this one line.
        warnings.warn(SLOW_BF16_WARNING)
    if uses_channels_last(config.precision, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def uses_channels_last(precision: str, device: torch.device) -> bool:
    """Whether a model runs with channels-last weights (and so activations) in ``precision`` on ``device``.

    bf16 everywhere: channels-last lets oneDNN use AMX tiles on CPU and tensor cores on a
    GPU. fp32 on CPU: oneDNN's channels-last convolutions ran a training step 1.17x and
    inference 1.26x faster than the default layout on an AVX2 EPYC
    (results/benchmarks/fp32-channels-last-avx2.json). fp32 on a GPU keeps the default.
    """
    return precision == "bf16" or device.type == "cpu"


@torch.inference_mode()
def model_outputs(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                  batch_size: int = 500, device: torch.device | None = None):
    """Yield the model's raw output for each batch of 8-bit images ``[N, C, H, W]``, in order.

    A spiking model's output is its spikes ``[T, B, C, H, W]``; the ANN's, ``[B, C, H, W]``.
    """
    device = device or next(model.parameters()).device
    model.eval()
    for start in range(0, noisy.shape[0], batch_size):
        batch = noisy[start:start + batch_size].to(device)
        with autocast_for(config, device):
            yield model(encode_input(batch, config))


def spiking_output_bits(model: torch.nn.Module, config: TrainConfig, noisy: torch.Tensor,
                        device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """A spiking model's output spikes ``[T, N, C, H, W]`` (as 0.0/1.0) for 8-bit noisy images ``[N, C, H, W]``."""
    model = prepare_model(model, config, device)
    return torch.cat([output.float() for output in model_outputs(model, noisy, config)], dim=1)


def denoise_images(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                   batch_size: int = 500, device: torch.device | None = None) -> torch.Tensor:
    """Denoise 8-bit images ``[N, C, H, W]``; returns floats in ``[0, 1]`` on the CPU."""
    return torch.cat([output_to_image(output, config).cpu()
                      for output in model_outputs(model, noisy, config, batch_size, device)])


def evaluate(model: torch.nn.Module, clean: torch.Tensor, noisy: torch.Tensor, config: TrainConfig,
             batch_size: int = 500) -> dict:
    """:func:`denoising_scores` of the model's output for 8-bit ``noisy`` images."""
    return denoising_scores(denoise_images(model, noisy, config, batch_size), clean, noisy)


def denoising_scores(denoised: torch.Tensor, clean: torch.Tensor, noisy: torch.Tensor) -> dict:
    """PSNR (data range 1, per image then averaged) of ``denoised`` (floats in [0, 1]) and of
    the 8-bit ``noisy`` input against 8-bit ``clean``; ``psnr_sem`` is the output PSNR's
    standard error over the images.
    """
    clean01 = clean.float() / 255.0
    per_image = psnr(denoised, clean01, reduction="none")      # once, for the mean and its standard error
    return {"psnr": per_image.mean().item(), "psnr_sem": standard_error(per_image),
            "noisy_psnr": psnr(noisy.float() / 255.0, clean01).item(), "test_images": int(clean.shape[0])}


# Test images on which the per-layer firing rates are measured after each epoch: enough
# for stable rates, few enough to add about a second to the epoch.
RATE_IMAGES = 1000


def layer_firing_rates(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig) -> dict[str, float]:
    """``{layer: firing rate}`` of a spiking model's neurons while it denoises ``noisy``."""
    with FiringRates(model) as probe:
        denoise_images(model, noisy, config)
    return probe.rates()


def operation_counts(model: torch.nn.Module, noisy: torch.Tensor, config: TrainConfig,
                     batch_size: int = 100) -> list[LayerCount]:
    """Per-layer operation counts (:mod:`vtsnn.energy`) of a model denoising 8-bit images ``noisy``.

    The model runs in its own arithmetic, so the spikes counted are the ones it emits
    there: a few % of them differ between bf16 and fp32.
    """
    device = next(model.parameters()).device
    return count_operations_on_images(model, noisy, lambda batch: encode_input(batch.to(device), config),
                                      batch_size, arithmetic=lambda: autocast_for(config, device))


def load_test_set(config: TrainConfig, data_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean test images and their noisy versions, fixed by ``config.test_seed``."""
    clean, _ = load_dataset(config.dataset, "test", data_dir, color=config.color)
    if config.test_limit:
        clean = clean[:config.test_limit]
    return clean, fixed_test_noise(clean, config.noise, seed=config.test_seed)


# ------------------------------------------------------------------------ loading

def load_trained(path, expect: dict | None = None) -> tuple[torch.nn.Module, TrainConfig]:
    """Load a trained model and its config; ``expect`` lists settings it must have been trained with."""
    folder = resolve_checkpoint(path)
    try:
        config = TrainConfig.from_dict(ckpt.read_json(folder / "config.json"))
    except (ValueError, TypeError) as error:
        raise ckpt.CheckpointError(f"{folder / 'config.json'}: {error}") from None
    if expect:
        ckpt.check_config_matches(config.to_dict(), {**config.to_dict(), **expect}, list(expect), str(folder))
    model = build_model(config)
    ckpt.load_weights(folder, model)
    model.eval()
    return model, config


# --------------------------------------------------------------------------- training

def load_teacher(config: TrainConfig, device: torch.device):
    """``(model, its config)`` of ``config.teacher``, ready on ``device``; ``None`` without one.

    The teacher must denoise the student's images (same dataset and colour); its noise
    level and method may differ.
    """
    if config.teacher is None:
        return None
    try:
        model, teacher_config = load_trained(config.teacher, expect={"dataset": config.dataset, "color": config.color})
    except ckpt.CheckpointError as error:
        raise ckpt.CheckpointError(f"teacher: {error}") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return prepare_model(model, teacher_config, device), teacher_config


def teacher_targets(teacher, noisy: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """The teacher's denoised 8-bit images for the 8-bit ``noisy`` images, on their device.

    ``batch_size``: images per forward pass (default: all of ``noisy`` in one).
    """
    model, config = teacher
    denoised = denoise_images(model, noisy, config, batch_size=batch_size or noisy.shape[0], device=noisy.device)
    # clone(): outside inference mode, so the targets may be saved for the backward pass.
    return to_uint8(denoised).to(noisy.device).clone()


def starting_checkpoint(config: TrainConfig) -> Path | None:
    """The checkpoint ``config.init_from`` names, checked to hold the same network and
    method; ``None`` without one.

    Used to start a noisier denoiser from a trained one (the features carry over and
    training converges in a fraction of the epochs), or a run again from the weights it kept.
    """
    if config.init_from is None:
        return None
    try:
        source = resolve_checkpoint(config.init_from)
        stored = TrainConfig.from_dict(ckpt.read_json(source / "config.json"))
        ckpt.check_config_matches(stored.to_dict(), config.to_dict(), MODEL_KEYS, str(source))
    except ckpt.CheckpointError as error:
        raise ckpt.CheckpointError(f"init_from: {error}") from None
    return source


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    if config.lr_schedule == "cosine":
        return 0.5 * config.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return config.lr


def _distributed():
    """(rank, world size) under ``torchrun``; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def pick_device(name: str | None = None) -> torch.device:
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", rank)
    return torch.device("cpu")


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam at ``config.lr``; its weight decay an L2 term in the gradient, or with
    ``decoupled_decay`` a shrink of every weight by ``lr x weight_decay`` each step (AdamW)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            decoupled_weight_decay=config.decoupled_decay)


def train(config: TrainConfig, run_dir, resume: bool = False, progress: bool = True, data_dir=None,
          device: str | None = None) -> dict:
    """Train (or resume) a denoiser in ``run_dir``; returns the last evaluation record."""
    run_dir = Path(run_dir)
    rank, world = _distributed()
    device = pick_device(device)
    # First: a wrong teacher or starting checkpoint leaves no run folder behind.
    teacher = load_teacher(config, device)
    # A resumed run goes on from its own weights: only a new one needs its starting checkpoint.
    start_from = None if latest_checkpoint(run_dir) else starting_checkpoint(config)
    latest = claim_run_dir(run_dir, resume)

    torch.manual_seed(config.seed)
    model = build_model(config)
    if start_from is not None:
        ckpt.load_weights(start_from, model)
    optimizer = make_optimizer(model, config)
    generator, start = start_or_resume(run_dir, latest, config, RESUME_KEYS, model, optimizer)

    model = prepare_model(model, config, device)
    move_optimizer_state(optimizer, device)
    average = start_weight_average(model, config, latest, start)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    all_train_images, _ = load_dataset(config.dataset, "train", data_dir, color=config.color)
    train_images, val_clean = split_training_set(all_train_images, config)
    val_noisy = None if val_clean is None else validation_noise(val_clean, config)
    test_clean, test_noisy = load_test_set(config, data_dir)

    def batch_loss(indices):
        clean = train_images[indices]
        if config.shift:    # draws nothing when off, so runs without it keep their streams
            clean = shift_randomly(clean, config.shift, generator)
        if config.flip:
            clean = mirror_random_half(clean, generator)    # same draw on every rank
        noisy = add_noise(clean, config.noise, generator)   # same draw on every rank
        clean, noisy = clean[rank::world].to(device), noisy[rank::world].to(device)
        target = clean if teacher is None else teacher_targets(teacher, noisy)
        spikes = encode_input(noisy, config)
        factors = None    # drawn only when on, so runs without it keep their streams
        if config.output_jitter:
            factors = jitter_factors(config.output_jitter, spikes.shape[0], len(indices), generator)[:, rank::world]
        with autocast_for(config, device), output_jittered(unwrap_model(model), factors):
            output = model(spikes)
        return compute_loss(output, target, config)

    def validate():
        return evaluate(unwrap_model(model), val_clean, val_noisy, config)["psnr"]

    def evaluate_epoch():
        scores = evaluate(unwrap_model(model), test_clean, test_noisy, config)
        if config.training != "ann":
            scores["firing_rates"] = layer_firing_rates(unwrap_model(model), test_noisy[:RATE_IMAGES], config)
        if val_clean is not None:
            scores["val_psnr"] = validate()
        return scores

    def describe(record):
        validation = f"validation PSNR {record['val_psnr']:.2f} dB, " if "val_psnr" in record else ""
        return (f"{validation}test PSNR {record['psnr']:.2f} dB (noisy input {record['noisy_psnr']:.2f} dB), "
                f"{record['train_img_s']:.0f} img/s")

    return run_epochs(run_dir, config, model, optimizer, generator, start,
                      train_images.shape[0], batch_loss, evaluate_epoch, describe, progress, rank,
                      select_key="val_psnr" if val_clean is not None else None, average=average,
                      validate=validate if val_clean is not None else None, checks_per_epoch=config.checks_per_epoch,
                      clip_grad=config.clip_grad, score_raw=config.score_raw)


def start_weight_average(model, config: TrainConfig, latest: Path | None, start) -> WeightAverage | None:
    """The run's weight average (``None`` without ``ema_decay``), resumed from ``latest``.

    A resumed averaged run has just loaded its checkpoint's model, the average; the
    optimizer's own weights come from the checkpoint's state.
    """
    if not config.ema_decay:
        return None
    average = WeightAverage(model, config.ema_decay, updates=start[2])
    if latest is not None:
        average.load_raw(stored_raw_weights(latest))
    return average


# The validation images get their own fixed noise, not the test set's draw.
VALIDATION_SEED_OFFSET = 1


def validation_noise(val_clean: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The validation images' fixed noisy versions, the same in every run of ``config``'s
    noise and test seed."""
    return fixed_test_noise(val_clean, config.noise, config.test_seed + VALIDATION_SEED_OFFSET)


def split_training_set(images: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images to train on, clean validation images or ``None`` without ``val_size``).

    The validation images are the *last* ``val_size`` of the training split, so they are
    the same for every seed and ``train_limit`` (which takes the first N of the rest)
    never reaches them. The test set is never used to pick anything.
    """
    if not config.val_size:
        train_images, val_images = images, None
    elif config.val_size >= images.shape[0]:
        raise ValueError(f"val_size {config.val_size} leaves no training images "
                         f"({config.dataset} has {images.shape[0]})")
    else:
        train_images, val_images = images[:-config.val_size], images[-config.val_size:]
    if config.train_limit:
        train_images = train_images[:config.train_limit]
    return train_images, val_images


def run_epochs(run_dir: Path, config, model, optimizer, generator, start: tuple[int, int, int],
               dataset_size: int, batch_loss, evaluate_epoch, describe, progress: bool = True,
               rank: int = 0, select_key: str | None = None, average: WeightAverage | None = None,
               validate=None, checks_per_epoch: int = 1, clip_grad: float = 0.0, score_raw: bool = False) -> dict:
    """The epoch loop shared by denoisers and classifiers; returns the last evaluation record.

    Each epoch shuffles with ``generator``, sets the scheduled learning rate, takes one
    Adam step per ``batch_loss(indices)``, logs the running loss every
    ``config.log_every`` steps, then (on rank 0) scores ``evaluate_epoch()``, logs it and
    writes the checkpoint. ``start`` is (epoch, images seen, step) of a resumed run.
    With ``select_key`` (a validation score, higher is better) the best epoch so far is
    also kept in ``run_dir/best`` (:func:`keep_if_best`). With ``average`` (a
    :class:`WeightAverage`, updated after every step) the averaged weights are the ones
    scored, kept and saved as the model. With ``validate`` (returns the ``select_key``
    score) and ``checks_per_epoch`` above 1, the validation set is also scored at evenly
    spaced steps inside each epoch (:func:`mid_epoch_check`), so ``best`` may keep weights
    from between two epochs. With ``clip_grad`` above 0, each step's gradient is scaled
    down to at most that norm (over all weights together) before Adam's step. Each log
    record of the loss also holds the gradient's norm before any clipping, the mean and
    the largest over its steps (``grad_norm``, ``grad_norm_max``), so a run shows how
    large its steps' gradients were and how often a limit would cut them. With
    ``score_raw`` (and ``average``, ``validate``, ``select_key``) every check also scores
    the raw weights, logged as ``raw_`` + ``select_key``, and ``best`` keeps whichever of
    the two validates higher (:func:`keep_raw_if_best`).
    Sets the process's allocator to reuse freed memory (:mod:`vtsnn.allocator`), which
    makes CPU training steps about 1.3x faster.
    """
    keep_freed_memory()
    start_epoch, images_seen, step = start
    steps_per_epoch = math.ceil(dataset_size / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    record = {}
    checks = mid_epoch_steps(steps_per_epoch, checks_per_epoch) if validate is not None and select_key else set()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        order = torch.randperm(dataset_size, generator=generator)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not progress or rank != 0, dynamic_ncols=True)
        started, running = time.perf_counter(), RunningStepStats()
        # CPU time of this process (all threads): unlike wall time, a paused run adds none.
        cpu_started = time.process_time()
        for batch_index in bar:
            indices = order[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, total_steps)
            loss = batch_loss(indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = gradient_norm_clipped(model, clip_grad)
            optimizer.step()
            if average is not None:
                average.update()
            step += 1
            images_seen += indices.shape[0]
            running.add(loss, grad_norm)
            if step % config.log_every == 0:
                logged = running.take()
                elapsed = time.perf_counter() - started
                bar.set_postfix(loss=f"{logged['loss']:.4f}",
                                img_s=f"{(batch_index + 1) * config.batch_size / elapsed:.0f}")
                if rank == 0:
                    append_log(run_dir, {"kind": "train", "epoch": epoch + 1, "step": step, "images": images_seen,
                                         **logged})
            if batch_index + 1 in checks and rank == 0:
                progress_record = {"epoch": round(epoch + (batch_index + 1) / steps_per_epoch, 3),
                                   "images": images_seen, "step": step}
                mid_epoch_check(run_dir, config, model, validate, select_key, average, progress_record,
                                score_raw)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if rank == 0:
            position = {"epoch": epoch + 1, "images": images_seen, "step": step}
            # Like every keep below, before the epoch's checkpoint: a run killed in between
            # redoes this epoch, gets the same weights and finds them already kept.
            raw_score = keep_raw_if_best(run_dir, config, model, validate, select_key, position) if score_raw else {}
            # With a weight average, the average is scored, kept and saved as the model.
            with scored_weights(average) as raw_weights:
                metrics = {**evaluate_epoch(), **raw_score}
                record = {"kind": "eval", **position, **metrics,
                          "epoch_seconds": round(seconds, 2), "epoch_cpu_seconds": round(cpu_seconds, 2),
                          "train_img_s": round(steps_per_epoch * config.batch_size / seconds, 1)}
                append_log(run_dir, record)
                progress_record = {**position, **metrics}
                if select_key is not None:
                    keep_if_best(run_dir, model, config, select_key, {**progress_record, **averaged(score_raw)})
                save_checkpoint(run_dir, model, optimizer, generator, config, progress_record, raw_weights)
            if progress:
                tqdm.write(f"epoch {epoch + 1}: {describe(record)}")
    if not record and (run_dir / "latest.json").is_file():
        record = {"kind": "eval", **ckpt.read_json(run_dir / "latest.json")}
    return record


class RunningStepStats:
    """The steps' losses and gradient norms since the last log record.

    Summed on the loss's device: reading them (.item()) makes the host wait for a GPU, so
    that happens once per log record, not once per step.
    """

    def __init__(self):
        self.start_over()

    def start_over(self) -> None:
        self.loss, self.grad_norm, self.largest_grad_norm, self.steps = 0.0, 0.0, None, 0

    def add(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.loss = self.loss + loss.detach().double()
        self.grad_norm = self.grad_norm + grad_norm.double()
        self.largest_grad_norm = grad_norm.double() if self.largest_grad_norm is None else \
            torch.maximum(self.largest_grad_norm, grad_norm.double())
        self.steps += 1

    def take(self) -> dict:
        """The mean loss, the mean and the largest gradient norm since the last call; starts
        over."""
        record = {"loss": (self.loss / self.steps).item(), "grad_norm": (self.grad_norm / self.steps).item(),
                  "grad_norm_max": self.largest_grad_norm.item()}
        self.start_over()
        return record


def gradient_norm_clipped(model: torch.nn.Module, clip_grad: float) -> torch.Tensor:
    """The norm of the step's gradient over all weights together, before clipping; with
    ``clip_grad`` above 0 the gradient is then scaled down to at most that norm."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if clip_grad:
        torch.nn.utils.clip_grads_with_norm_(model.parameters(), clip_grad, norm)
    return norm.detach()


def scored_weights(average: WeightAverage | None):
    """A block in which the model holds the weights a run scores and keeps: the average's
    when there is one (yielding the raw weights), else its own (yielding ``None``)."""
    return average.applied() if average is not None else nullcontext()


def mid_epoch_steps(steps_per_epoch: int, checks_per_epoch: int) -> set[int]:
    """The steps of an epoch (counted from 1) after which a mid-epoch check scores the
    validation set: ``checks_per_epoch - 1`` evenly spaced ones, the epoch's end excluded
    (the end-of-epoch evaluation is the last check)."""
    steps = {round(steps_per_epoch * k / checks_per_epoch) for k in range(1, checks_per_epoch)}
    return {s for s in steps if 0 < s < steps_per_epoch}


def mid_epoch_check(run_dir: Path, config, model, validate, select_key: str, average: WeightAverage | None,
                    progress_record: dict, score_raw: bool = False) -> None:
    """Score the validation set now, log it (kind "check") and keep the weights if best;
    with ``score_raw``, the raw weights too (:func:`keep_raw_if_best`).

    ``progress_record["epoch"]`` is fractional (2.5: half of the third epoch done). The
    test set is not scored here: the run is scored on it once, at the kept weights.
    """
    raw_score = keep_raw_if_best(run_dir, config, model, validate, select_key, progress_record) if score_raw else {}
    with scored_weights(average):
        record = {**progress_record, select_key: validate()}
        append_log(run_dir, {"kind": "check", **record, **raw_score})
        keep_if_best(run_dir, model, config, select_key, {**record, **averaged(score_raw)})
    model.train()     # validate() left the model in eval mode


def keep_raw_if_best(run_dir: Path, config, model, validate, select_key: str, position: dict) -> dict:
    """Score the raw weights (the optimizer's, which the model holds outside
    :func:`scored_weights`) on the validation set and keep them in ``best`` if they beat
    the kept weights; returns ``{"raw_" + select_key: score}`` for the log.

    Neither kind is better everywhere: of ten averaged F-MNIST runs scored both ways at
    their end (results/*/raw_vs_average.txt), the raw weights validated higher in seven,
    by up to 0.75 dB (6.2 where the average silenced a bit plane), and lower in three, by
    up to 0.28. Scored first, so a tie keeps the raw weights.
    """
    score = validate()
    keep_if_best(run_dir, model, config, select_key, {**position, select_key: score, "weights": "raw"})
    return {f"raw_{select_key}": score}


def averaged(score_raw: bool) -> dict:
    """What a kept average adds to ``best.json``: which weights it holds, where a run
    keeps both kinds."""
    return {"weights": "average"} if score_raw else {}


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(device)
