"""How closely a denoiser trained with ``--teacher`` follows its teacher, on the test set.

    python scripts/imitation.py runs/distill/fashion_mnist-if-0.2-residual-lr0.01-ema0.999-taught/best

Prints three PSNRs (data range 1, per image then averaged) on the fixed noisy test set:
the student against the clean images (its score), the teacher against the clean images,
and the student against the teacher's output rounded to 8 bits, the target it was
trained on. A student that followed its teacher closely would score near the teacher;
the third number says how far its own output is from what it was asked for. Give
``--teacher`` to compare with another denoiser than the one the student names.
"""

from __future__ import annotations

import argparse
import sys

import torch

from vtsnn.checkpoint import CheckpointError
from vtsnn.metrics import psnr
from vtsnn.pretrained import resolve_model
from vtsnn.train import denoise_images, load_test_set, load_trained, teacher_targets


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("student", help="a run or checkpoint folder, or a pretrained model's name")
    parser.add_argument("--teacher", default=None, help="default: the teacher the student was trained with")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--test-limit", type=int, default=None, help="score on the first N test images")
    args = parser.parse_args(argv)
    try:
        student, config = load_trained(resolve_model(args.student))
        teacher_path = args.teacher or config.teacher
        if teacher_path is None:
            raise CheckpointError(f"{args.student} was trained without a teacher; give --teacher")
        teacher, teacher_config = load_trained(resolve_model(teacher_path))
    except (CheckpointError, FileNotFoundError) as error:
        sys.exit(f"imitation.py: error: {error}")
    config.test_limit = args.test_limit
    clean, noisy = load_test_set(config, args.data_dir)
    clean01 = clean.float() / 255.0
    student_out = denoise_images(student, noisy, config)
    # The very targets the student was trained on, computed as training computes them.
    teacher_out = teacher_targets((teacher, teacher_config), noisy, batch_size=500).float() / 255.0
    rows = (("student against the clean images", psnr(student_out, clean01)),
            ("teacher against the clean images", psnr(teacher_out, clean01)),
            ("student against the teacher's output", psnr(student_out, teacher_out)))
    print(f"student {args.student}\nteacher {teacher_path}\n{len(clean)} test images, noise {config.noise:g}")
    for label, value in rows:
        print(f"{label:40s} {value.item():6.2f} dB")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
