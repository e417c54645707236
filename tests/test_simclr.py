"""SimCLR: NT-Xent against a hand computation, the view augmentation, the
frozen linear probe, and a tiny `tinyfake train --method simclr` run."""
import math

import numpy as np
import pytest
import torch

from tinyfake.cli import main
from tinyfake.data import load_dataset
from tinyfake.models import build_model
from tinyfake.runs import RunDir
from tinyfake.train import load_trained
from tinyfake.train.simclr import SIMCLR_DEFAULTS, nt_xent, pretrain, simclr_views


def test_nt_xent_matches_hand_computation():
    # Two pairs in 2-D. Cosine similarities by hand:
    # a1=(1,0) a2=(0,1) | b1=(1,1)/sqrt2 b2=(-1,1)/sqrt2   (z1 = [a1, a2], z2 = [b1, b2])
    z1 = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # norms differ on purpose: cosine ignores them
    z2 = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    t = 0.5
    r = 1 / math.sqrt(2)
    # cos between all four (order a1, a2, b1, b2)
    cos = {("a1", "a2"): 0.0, ("a1", "b1"): r, ("a1", "b2"): -r,
           ("a2", "b1"): r, ("a2", "b2"): r, ("b1", "b2"): 0.0}
    cos.update({(k[1], k[0]): v for k, v in list(cos.items())})
    names = ["a1", "a2", "b1", "b2"]
    positive = {"a1": "b1", "a2": "b2", "b1": "a1", "b2": "a2"}
    total = 0.0
    for i in names:
        denom = sum(math.exp(cos[(i, k)] / t) for k in names if k != i)
        total += -math.log(math.exp(cos[(i, positive[i])] / t) / denom)
    want = total / 4
    assert nt_xent(z1, z2, t).item() == pytest.approx(want, rel=1e-6)
    # a different temperature gives a different value (the temperature is used)
    assert nt_xent(z1, z2, 0.07).item() != pytest.approx(want, rel=1e-3)


def test_nt_xent_is_low_for_matching_views_and_rejects_bad_shapes():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    assert nt_xent(z, z + 0.01).item() < nt_xent(z, torch.randn(8, 16)).item()
    with pytest.raises(ValueError):
        nt_xent(z, z[:4])


def test_views_are_random_uint8_images_of_the_same_shape():
    x = load_dataset(None, 32).x[:8]
    a = simclr_views(x, np.random.default_rng(0))
    b = simclr_views(x, np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == np.uint8
    assert not np.array_equal(a, x) and not np.array_equal(a, b)
    assert np.array_equal(a, simclr_views(x, np.random.default_rng(0)))  # seeded


def test_pretraining_moves_the_backbone_and_the_probe_does_not():
    from tinyfake.data import split_dataset
    from tinyfake.train.loop import fit, supervised_loss
    from tinyfake.train.simclr import _frozen_backbone

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    splits = split_dataset(load_dataset(None, 32), seed=0)
    model = build_model("phinet", 32)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    hist = pretrain(model, splits.train.x[:48], {**SIMCLR_DEFAULTS, "pretrain_epochs": 1,
                                                 "pretrain_batch_size": 16}, rng, progress=False)
    assert len(hist) == 1 and np.isfinite(hist[0]["train_loss"])
    after = model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    frozen = {k: v.clone() for k, v in after.items()}
    fc = model.fc.weight.detach().clone()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    t = dict(weight_decay=0.0, batch_size=32, augment=True, patience=5)
    fit(model, splits, t, supervised_loss(splits.train.y), epochs=1, lr=1e-2, rng=rng,
        params=model.fc.parameters(), set_train_mode=_frozen_backbone, progress=False)
    # weights and BatchNorm statistics of the backbone unchanged; the head trained
    assert all(torch.equal(frozen[k], v) for k, v in model.backbone.state_dict().items())
    assert not torch.equal(fc, model.fc.weight)


def test_cli_simclr_run_records_method_and_loads_as_a_classifier(tmp_path, capsys):
    rc = main(["train", "--size", "32", "--method", "simclr", "--pretrain-epochs", "1",
               "--pretrain-batch-size", "32", "--probe-epochs", "1", "--temperature", "0.1",
               "--batch-size", "32", "--runs-dir", str(tmp_path), "--name", "s"])
    assert rc == 0
    run = RunDir(tmp_path / "s")
    config = run.read_config()
    assert config["train"]["method"] == "simclr"
    assert config["train"]["simclr"]["temperature"] == 0.1
    assert config["train"]["simclr"]["proj_dim"] == 128
    model, _ = load_trained(run)
    assert type(model).__name__ == "PhiNetClassifier"
    assert not any("head" in k for k in model.state_dict())  # projection head discarded
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1)


def test_cli_simclr_option_on_other_method_is_one_line(capsys):
    assert main(["train", "--temperature", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--temperature applies to --method simclr" in err[0]
