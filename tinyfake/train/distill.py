"""Knowledge distillation: a larger trained run (the teacher) guides a board-sized student.

loss = alpha * BCE(student, teacher probability) + (1 - alpha) * BCE(student, label)

The teacher sees the same augmented batch as the student (resized when its
input size differs) and never trains. It must have been trained on the same
split (same data source, seed and fractions), or its knowledge of the
student's test faces would leak into the student.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from tinyfake.errors import UserError
from tinyfake.train.loop import balanced_bce, fit, save_run

DISTILL_DEFAULTS = dict(teacher="", alpha=0.5)


def load_teacher(path: str, config: dict) -> tuple[nn.Module, int]:
    """(teacher model in eval mode, its input size); checks it shares the student's split."""
    from tinyfake.runs import RunDir
    from tinyfake.train.supervised import load_trained

    if not path:
        raise UserError("--method distill needs --teacher RUN_DIR (a run trained by tinyfake)")
    teacher, tconf = load_trained(RunDir.existing(path))
    mine, theirs = config["data"], tconf["data"]
    for key in ("source", "seed", "fractions"):
        if mine.get(key) != theirs.get(key):
            raise UserError(f"teacher {path} was trained with data {key} {theirs.get(key)!r}, the student "
                            f"with {mine.get(key)!r}; distil on the teacher's split (same --data and --seed)")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval(), int(theirs["size"])


def distill_loss(teacher: nn.Module, teacher_size: int, alpha: float, label_loss: nn.Module):
    def loss(student, x, y):
        teacher.to(x.device)  # where the student trains (a no-op after the first step)
        with torch.no_grad():
            xt = x if x.shape[-1] == teacher_size else F.interpolate(
                x, size=(teacher_size, teacher_size), mode="bilinear", align_corners=False)
            soft = torch.sigmoid(teacher(xt)).squeeze(1)
        logits = student(x).squeeze(1)
        return alpha * F.binary_cross_entropy_with_logits(logits, soft) + (1 - alpha) * label_loss(logits, y)
    return loss


def train_distill(config: dict, run, splits, model: nn.Module, rng, progress=None) -> dict:
    t = config["train"]
    d = t["distill"]
    alpha = float(d["alpha"])
    if not 0 <= alpha <= 1:
        raise UserError(f"--distill-alpha must be in [0, 1], got {alpha}")
    teacher, tsize = load_teacher(d["teacher"], config)
    start = time.time()
    out = fit(model, splits, t, distill_loss(teacher, tsize, alpha, balanced_bce(splits.train.y)),
              epochs=int(t["epochs"]), lr=t["lr"], rng=rng, progress=progress, checkpoint=run.checkpoint)
    from tinyfake.metrics import binary_metrics
    teacher_test = binary_metrics(splits.test.y, _teacher_scores(teacher, tsize, splits.test.x)) \
        if len(splits.test) else None
    return save_run(run, config, model, splits, out["history"], out["best_epoch"], start,
                    teacher_test=teacher_test)


def _teacher_scores(teacher, size, x_uint8):
    import cv2
    import numpy as np
    from tinyfake.train.supervised import predict

    if x_uint8.shape[1] != size:
        x_uint8 = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in x_uint8])
    return predict(teacher, x_uint8)
