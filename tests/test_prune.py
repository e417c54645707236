"""Structured pruning: fewer MACs, reloadable, and (slow) still exports to int8
TFLite and compiles."""
import pytest
import torch

from tinyfake.cli import main
from tinyfake.models import build_model, count_macs_params
from tinyfake.runs import RunDir
from tinyfake.train import load_trained, make_config, predict, splits_from_config, train
from tinyfake.train.prune import fit_to_state_dict


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    base = make_config(None, 32, epochs=1, batch_size=32, seed=1)
    train(base, root / "base", progress=False)
    config = make_config(None, 32, batch_size=32, seed=1, method="prune",
                         prune=dict(init=str(root / "base"), ratio=0.5, steps=2, finetune_epochs=1))
    return root, train(config, root / "pruned", progress=False)


def test_pruned_run_has_half_the_macs_and_reloads(pruned):
    root, m = pruned
    base_model, _ = load_trained(root / "base")
    base_macs, base_params = count_macs_params(base_model, (3, 32, 32))
    assert m["macs"] <= 0.5 * base_macs * 1.001 and m["params"] < base_params
    assert [s["step"] for s in m["prune_steps"]] == [0, 1, 2]
    assert m["prune_steps"][1]["macs"] > m["prune_steps"][2]["macs"]
    model, config = load_trained(root / "pruned")
    assert config["train"]["method"] == "prune"
    assert config["data"] == RunDir(root / "base").read_config()["data"]  # the init run's split
    assert count_macs_params(model, (3, 32, 32)) == (m["macs"], m["params"])
    test = splits_from_config(config).test
    from tinyfake.metrics import binary_metrics
    assert binary_metrics(test.y, predict(model, test.x))["auc"] == pytest.approx(m["test"]["auc"], abs=1e-6)


def test_fit_to_state_dict_narrows_a_fresh_model():
    small = build_model("phinet", 32, alpha=0.25)
    # narrow by hand: pretend pruning dropped output channels of one 1x1 conv chain
    state = {k: v.clone() for k, v in small.state_dict().items()}
    fresh = build_model("phinet", 32, alpha=0.25)
    fit_to_state_dict(fresh, state)  # same shapes: a plain load
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(small.eval()(x), fresh.eval()(x))


def test_cli_prune_without_init_is_one_line(capsys):
    assert main(["train", "--method", "prune", "--prune-ratio", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --init" in err[0]


def test_bad_ratio_is_a_user_error(pruned, tmp_path):
    from tinyfake.errors import UserError
    root, _ = pruned
    config = make_config(None, 32, seed=1, method="prune", prune=dict(init=str(root / "base"), ratio=1.5))
    with pytest.raises(UserError, match="prune-ratio"):
        train(config, tmp_path / "bad", progress=False)


@pytest.mark.slow
def test_pruned_model_exports_to_int8_and_compiles(pruned):
    from tinyfake.compiler import compile_model
    from tinyfake.export.pipeline import export_run

    root, m = pruned
    run = RunDir(root / "pruned")
    export_run(run, calib_images=32)
    compiled = compile_model(run.tflite, run.gen)
    assert compiled.macs > 0 and compiled.weight_bytes > 0
    assert (run.gen / "model.c").exists()
    # the compiled graph does the pruned model's work (within the ops the
    # counter skips: pooling and elementwise ops are not MACs)
    assert compiled.macs <= 1.2 * m["macs"]
