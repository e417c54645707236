"""PyTorch -> ONNX: static batch 1, input "input" = float NCHW in [0, 1]
(3 channels, or 5 -- R, G, B, FFT, LBP -- for a ChannelInput model)."""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import onnxsim
import torch

from tinyfake.errors import UserError

INPUT_NAME = "input"
OUTPUT_NAME = "logit"
# Below 14, hard-swish is decomposed into an op (RELU_0_TO_1) that TFLite
# Micro rejects once converted.
MIN_OPSET = 14
DEFAULT_OPSET = 17


def check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise UserError(f"--opset {opset} is too old: hard-swish exports as an op "
                        f"TFLite Micro rejects; use {MIN_OPSET} or newer")


def export_onnx(model: torch.nn.Module, input_size: int, path: str | Path,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write `model` (one logit out) as ONNX with a (1, C, S, S) input; C = 3,
    or 5 for a ChannelInput model (exported as its five-channel form)."""
    check_opset(opset)
    path = Path(path)
    model = model.eval().cpu()
    if hasattr(model, "export_form"):
        # an equivalent module written with ops that convert cleanly (MicroNet)
        model = model.export_form()
    channels = int(getattr(model, "input_channels", 3))
    dummy = torch.zeros(1, channels, input_size, input_size)
    log = io.StringIO()
    # The TorchScript exporter (dynamo=False) needs no onnxscript and keeps
    # the graph as plain Conv/Relu/HardSwish nodes that onnx2tf maps well.
    with torch.no_grad(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation and constant-folding notices
        torch.onnx.export(model, (dummy,), str(path), dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, do_constant_folding=True)
    # Fold the exporter's shape arithmetic (e.g. ZeroPad2d becomes a chain of
    # Concat/Reshape/Slice feeding Pad, which onnx2tf mis-converts).
    simplified, ok = onnxsim.simplify(onnx.load(str(path)))
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified model")
    onnx.checker.check_model(simplified)
    onnx.save(simplified, str(path))
    # Run it once: catches a wrong head and an export that changed the maths.
    probe = torch.rand(1, channels, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(probe).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {INPUT_NAME: probe.numpy()})
    if len(outs) != 1 or outs[0].size != 1:
        raise UserError(f"the model must output one logit, got outputs of shape "
                        f"{[o.shape for o in outs]}; rebuild it with a single-logit head")
    if not np.allclose(outs[0].reshape(want.shape), want, atol=1e-4, rtol=1e-3):
        raise RuntimeError(f"ONNX export changed the output: {outs[0].ravel()} vs {want.ravel()}")
    return path
