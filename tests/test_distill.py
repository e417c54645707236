"""Knowledge distillation: the loss formula on known numbers, teacher checks,
and a tiny teacher -> student run."""
import json
import math

import pytest
import torch
from torch import nn

from tinyfake.cli import main
from tinyfake.errors import UserError
from tinyfake.runs import RunDir
from tinyfake.train import load_trained, make_config, train
from tinyfake.train.distill import distill_loss


class ConstantLogit(nn.Module):
    """A real module whose logit is a fixed number (a stand-in teacher of known output)."""

    def __init__(self, logit):
        super().__init__()
        self.logit = logit

    def forward(self, x):
        return torch.full((x.shape[0], 1), self.logit)


def _bce(p, target):
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_distill_loss_is_alpha_teacher_plus_one_minus_alpha_label():
    teacher = ConstantLogit(math.log(0.8 / 0.2))  # P(fake) = 0.8
    student = ConstantLogit(0.0)                   # P(fake) = 0.5
    x = torch.zeros(2, 3, 32, 32)
    y = torch.tensor([1.0, 0.0])
    alpha = 0.3
    loss = distill_loss(teacher, 32, alpha, nn.BCEWithLogitsLoss())(student, x, y).item()
    soft = _bce(0.5, 0.8)
    hard = (_bce(0.5, 1.0) + _bce(0.5, 0.0)) / 2
    assert loss == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-6)
    # teacher at another input size: the batch is resized for it
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    distill_loss(teacher, 48, alpha, nn.BCEWithLogitsLoss())(student, x, y)
    assert seen[-1] == (2, 3, 48, 48)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = make_config(None, 32, epochs=1, batch_size=32, seed=1, model_kwargs=dict(alpha=0.5))
    train(config, root / "teacher", progress=False)
    return root


def test_distilled_student_is_smaller_and_records_its_teacher(teacher):
    config = make_config(None, 32, epochs=1, batch_size=32, seed=1, method="distill",
                         distill=dict(teacher=str(teacher / "teacher"), alpha=0.7))
    m = train(config, teacher / "student", progress=False)
    saved = RunDir(teacher / "student").read_config()
    assert saved["train"]["method"] == "distill" and saved["train"]["distill"]["alpha"] == 0.7
    t = json.loads((teacher / "teacher" / "metrics.json").read_text())
    assert m["params"] < t["params"] and m["method"] == "distill"
    assert set(m["teacher_test"]) >= {"auc", "accuracy"}
    model, _ = load_trained(teacher / "student")
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1)


def test_teacher_on_another_split_is_refused(teacher):
    config = make_config(None, 32, epochs=1, seed=2, method="distill",
                         distill=dict(teacher=str(teacher / "teacher")))
    with pytest.raises(UserError, match="seed"):
        train(config, teacher / "other", progress=False)


def test_cli_distill_without_teacher_is_one_line(capsys):
    assert main(["train", "--method", "distill"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --teacher" in err[0]
