"""MicroNet M0-M3: published parameter/MAC counts, blocks, detector form."""
import pytest
import torch

from tinyfake.models import build_model, count_macs_params
from tinyfake.models.micronet import (CONFIGS, ChannelShuffle, DynamicShiftMax, MicroNet,
                                      shift_index)

# paper (Li et al., ICCV 2021, Table 5): params, MAdds at 224x224, 1000 classes
PAPER = {"m0": (1.0e6, 4e6), "m1": (1.8e6, 6e6), "m2": (2.4e6, 12e6), "m3": (2.6e6, 21e6)}


@pytest.mark.parametrize("variant", sorted(PAPER))
def test_counts_match_paper(variant):
    params_paper, macs_paper = PAPER[variant]
    macs, params = count_macs_params(MicroNet(224, variant, num_classes=1000), (3, 224, 224))
    assert abs(params / params_paper - 1) < 0.10, params
    assert abs(macs / macs_paper - 1) < 0.10, macs


def test_channel_shuffle_and_shift():
    x = torch.arange(12.).view(1, 12, 1, 1)
    want = x.view(1, 3, 4, 1, 1).transpose(1, 2).reshape(1, 12, 1, 1)
    assert torch.equal(ChannelShuffle(3)(x), want)
    # channel (group g, member c) reads ((g+1) % G, (c+1) % C/G)
    assert shift_index(6, 2).tolist() == [4, 5, 3, 1, 2, 0]


def test_dynamic_shift_max_is_shift_mixture():
    dsm = DynamicShiftMax(8, 4, 2, branches=2, init_a=(1.0, 1.0), init_b=(0.0, 0.0))
    with torch.no_grad():  # coefficients = init exactly: h-sigmoid(0) = 0.5
        dsm.fc2.weight.zero_()
        dsm.fc2.bias.zero_()
    x = torch.randn(2, 8, 3, 3)
    assert torch.allclose(dsm(x), x)
    with torch.no_grad():
        dsm.fc2.bias[8:16] = 1.5  # b1 = (h(1.5)-0.5)*4 = (0.75-0.5)*4 = 1.0
    assert torch.allclose(dsm(x), torch.maximum(x + x[:, dsm.index], x))
    assert dsm.macs(x, dsm(x)) == 4 * 8 * 9


@pytest.mark.parametrize("variant", sorted(PAPER))
def test_detector_form(variant):
    model = build_model(f"micronet-{variant}", 64)
    model.eval()
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1)
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == 1
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"DynamicShiftMax", "ChannelShuffle", "MicroBlock"} <= kinds
    block_a = model.blocks[0].layers
    convs = [m for m in block_a if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs[:2]] == [(CONFIGS[variant]["rows"][0].k, 1),
                                                  (1, CONFIGS[variant]["rows"][0].k)]
    assert convs[-1].groups == CONFIGS[variant]["rows"][0].g3  # grouped pointwise


def test_micronet_trains_a_step():
    torch.manual_seed(0)
    model = build_model("micronet-m0", 64)
    x, y = torch.rand(4, 3, 64, 64), torch.tensor([[0.], [1.], [0.], [1.]])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# ---- export form: same function, ops the int8 converter and compiler handle ----

def _settled(variant, seed=0):
    """A MicroNet with non-trivial BatchNorm statistics and DSM coefficients."""
    torch.manual_seed(seed)
    model = build_model(f"micronet-{variant}", 64)
    with torch.no_grad():
        for m in model.modules():   # spread the DSM coefficients over their whole range
            if isinstance(m, DynamicShiftMax):
                m.fc2.weight.normal_(0, 1.0)
                m.fc2.bias.normal_(0, 2.0)
        model.train()
        for _ in range(3):
            model(torch.rand(8, 3, 64, 64))
    return model.eval()


@pytest.mark.parametrize("variant", sorted(PAPER))
def test_export_form_equals_training_form(variant):
    from tinyfake.models.micronet import ExportGather, MicroNetExport
    model = _settled(variant)
    export = model.export_form()
    assert isinstance(export, MicroNetExport)
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats, feats_e = model.blocks(model.stem(x)), export.blocks(export.stem(x))
        assert (feats - feats_e).abs().max() <= 1e-5 * max(1.0, feats.abs().max())
        assert (model(x) - export(x)).abs().max() <= 1e-5
    convs = [m for m in export.modules() if isinstance(m, torch.nn.Conv2d)]
    # grouped convs stay grouped (no dense block-diagonal form): the training
    # form's convs, each with its own group count, or (where onnx2tf would take
    # it for a depthwise conv: group count == input width) a divisor of it
    def key(c):
        return c.in_channels, c.out_channels, c.kernel_size
    train = sorted((key(c), c.groups) for c in model.modules()
                   if isinstance(c, torch.nn.Conv2d) and c.groups > 1 and c.groups != c.in_channels)
    exp = sorted((key(c), c.groups) for c in convs if 1 < c.groups < c.in_channels)
    assert len(exp) >= len(train) // 2
    assert all(any(k == k2 and g % g2 == 0 for k, g in train) for k2, g2 in exp)
    conv_w = sum(c.weight.numel() for c in convs)
    train_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert train_w <= conv_w <= 1.05 * train_w
    # shuffles are composed/folded, gathers are int32
    gathers = [m for m in export.modules() if isinstance(m, ExportGather)]
    assert gathers and all(g.index.dtype == torch.int32 for g in gathers)
    # the training form (and the paper counts) are untouched
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in build_model(f"micronet-{variant}", 64).parameters())


def test_fold_permutation_into_grouped_conv():
    from tinyfake.models.micronet import _fold_permutation
    torch.manual_seed(0)
    x = torch.randn(2, 12, 3, 3)
    for groups, perm, foldable in [
            (1, torch.randperm(12), True),
            (3, torch.cat([torch.randperm(4) + 4 * g for g in range(3)]), True),   # within groups
            (3, torch.arange(12).view(3, 4).t().reshape(-1), False),             # a shuffle
            (3, torch.cat([torch.arange(4, 8), torch.arange(4), torch.arange(8, 12)]), False),
            (12, torch.randperm(12), False)]:                                     # depthwise
        conv = torch.nn.Conv2d(12, 6 if groups < 12 else 12, 1, groups=groups)
        want = conv(x[:, perm])
        before = conv.weight.detach().clone()
        assert _fold_permutation(conv, perm) == foldable
        if foldable:
            assert torch.allclose(conv(x), want, atol=1e-6)
        else:
            assert torch.equal(conv.weight, before)


def _faces(size):
    import numpy as np
    from skimage import data, transform
    faces = [data.astronaut()[0:220, 140:340]]
    faces += [np.repeat((f * 255).astype(np.uint8)[..., None], 3, axis=2) for f in data.lfw_subset()[:7]]
    return np.stack([transform.resize(f, (size, size), anti_aliasing=True, preserve_range=True)
                     .round().clip(0, 255).astype(np.uint8) for f in faces])


def _truncated(tflite: bytes, tensor: int) -> bytes:
    """The same model with `tensor` as its output (ops after its producer dropped)."""
    import flatbuffers
    from tinyfake.compiler.modelbuilder import _aligned_buffer_class
    from tinyfake.compiler.reader import _schema
    from tinyfake.export import read_model
    S = _schema()
    m = read_model(tflite)
    sg = m.subgraphs[0]
    last = max(i for i, op in enumerate(sg.operators) if tensor in list(op.outputs))
    sg.operators = sg.operators[:last + 1]
    sg.outputs = [tensor]
    m.signatureDefs = None
    aligned = _aligned_buffer_class(S)
    bufs = []
    for b in m.buffers:
        if b.data is not None and len(b.data):
            nb = aligned()
            nb.data = b.data
            bufs.append(nb)
        else:
            bufs.append(S.BufferT())
    m.buffers = bufs
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.slow
def test_micronet_m0_int8_compiles_bit_exact(tmp_path):
    """1 epoch on the default data -> export_run (int8 I/O) -> compile_model ->
    host build == TFLite Micro on real faces, at the output and at intermediate
    tensors along the network (portable and DSP kernels)."""
    import numpy as np
    pytest.importorskip("onnx2tf")
    pytest.importorskip("tflite_micro")
    from tinyfake.compiler import compile_model
    from tinyfake.compiler.hostbuild import HostModel, build_host
    from tinyfake.compiler.oracle import Oracle
    from tinyfake.export import io_quant, op_names, quantized_inputs, tflm_outputs
    from tinyfake.export.pipeline import export_run
    from tinyfake.runs import RunDir
    from tinyfake.train import load_trained, make_config, train

    run = RunDir(tmp_path / "run")
    train(make_config(None, 64, "micronet-m0", epochs=1), run, threads=2, progress=False)
    model, _ = load_trained(run)
    faces = _faces(64)
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert (model(x) - model.export_form()(x)).abs().max() <= 1e-5
    export_run(run, calib_images=32)
    inp, out = io_quant(run.tflite)
    assert inp.dtype == out.dtype == "int8"
    names = set(op_names(run.tflite))
    assert names <= {"CONV_2D", "DEPTHWISE_CONV_2D", "GATHER", "TRANSPOSE", "MAXIMUM", "MINIMUM",
                     "MUL", "ADD", "MEAN", "PAD", "HARD_SWISH", "RESHAPE"}, names
    cm = compile_model(run.tflite, tmp_path / "gen")
    want = tflm_outputs(run.tflite, faces)
    q = quantized_inputs(run.tflite, faces)
    for dsp in (False, True):
        host = HostModel(build_host(tmp_path / "gen", dsp=dsp), cm.input_bytes, cm.output_bytes)
        got = np.stack([host.run(s) for s in q]).reshape(want.shape)
        assert np.array_equal(got, want), (dsp, got.ravel(), want.ravel())
    # intermediate tensors: block outputs and DSM maxima along the network
    data = run.tflite.read_bytes()
    from tinyfake.compiler.reader import read_tflite
    graph = read_tflite(run.tflite)
    cuts = [op.outputs[0] for op in graph.operators if op.opcode in ("ADD", "MAXIMUM")
            and len(graph.tensors[op.outputs[0]].shape) == 4
            and graph.tensors[op.outputs[0]].shape[1] > 1]
    cuts = [cuts[i] for i in np.linspace(0, len(cuts) - 1, 6).round().astype(int)]
    for k, t in enumerate(cuts):
        sub = tmp_path / f"cut{k}.tflite"
        sub.write_bytes(_truncated(data, t))
        scm = compile_model(sub, tmp_path / f"cut{k}")
        host = HostModel(build_host(tmp_path / f"cut{k}"), scm.input_bytes, scm.output_bytes)
        oracle = Oracle(sub)
        vals = set()
        for s in q[:4]:
            w = oracle.run(s)
            assert np.array_equal(host.run(s), w), f"tensor {t} ({graph.tensors[t].name})"
            vals |= set(np.unique(w).tolist())
        assert len(vals) > 8   # not a saturated tensor
