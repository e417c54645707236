"""Quantization-aware training: weight fake-quant on the int8 grid, BatchNorm
folding that keeps the maths, a tiny QAT run, and (slow) its export through the
PTQ path into a tflite the compiler accepts."""
import pytest
import torch

from tinyfake.models import build_model
from tinyfake.runs import RunDir
from tinyfake.train import load_trained, make_config, train
from tinyfake.train.qat import QATModel, WeightFakeQuant, fold_batchnorm


def test_weight_fake_quant_is_per_channel_symmetric_int8():
    w = torch.tensor([[0.5, -1.0, 0.25], [0.01, 0.02, -0.03]])
    q = WeightFakeQuant()(w)
    for row, qrow in zip(w, q):
        scale = row.abs().max() / 127
        ints = qrow / scale
        assert torch.allclose(ints, ints.round(), atol=1e-4)
        assert ints.abs().max() == pytest.approx(127, abs=1e-3)
    assert torch.allclose(q, w, atol=float(w.abs().max()) / 254 + 1e-6)


def test_fold_batchnorm_keeps_the_outputs():
    torch.manual_seed(0)
    model = build_model("phinet", 32).train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for _ in range(3):
            model(torch.rand(8, 3, 32, 32))
    model.eval()
    x = torch.rand(4, 3, 32, 32)
    before = model(x)
    assert fold_batchnorm(model, 32) > 10
    assert torch.allclose(model(x), before, atol=1e-4, rtol=1e-3)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.all(bn.running_mean == 0) and torch.all(bn.weight == 1)


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train(make_config(None, 32, epochs=1, batch_size=32, seed=1), root / "float", progress=False)
    config = make_config(None, 32, batch_size=32, seed=1, method="qat",
                         qat=dict(init=str(root / "float"), epochs=1))
    return root, train(config, root / "qat", progress=False)


def test_qat_run_leaves_weights_on_the_int8_grid(qat_run):
    root, m = qat_run
    model, config = load_trained(root / "qat")
    assert config["train"]["method"] == "qat" and "qat_fake_quant_val" in m
    convs = [mod for mod in model.modules() if isinstance(mod, torch.nn.Conv2d)]
    for conv in convs:
        w = conv.weight.detach()
        scale = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8) / 127
        assert torch.allclose(w / scale, (w / scale).round(), atol=1e-3)
    # QAT does not touch the float run it started from
    base, _ = load_trained(root / "float")
    assert type(base) is type(model)


def test_qat_hooks_are_removed():
    model = build_model("phinet", 32)
    qat = QATModel(model, 32)
    model.eval()
    model(torch.rand(2, 3, 32, 32))
    plain = qat.remove()
    assert not any(m._forward_hooks for m in plain.modules())
    assert not any("parametrizations" in k for k in plain.state_dict())


@pytest.mark.slow
def test_qat_export_is_accepted_by_the_compiler(qat_run):
    from tinyfake.compiler import compile_model
    from tinyfake.export.pipeline import export_run

    root, _ = qat_run
    run = RunDir(root / "qat")
    export_run(run, calib_images=32)
    compiled = compile_model(run.tflite, run.gen)
    assert compiled.weight_bytes > 0 and (run.gen / "model.c").exists()
