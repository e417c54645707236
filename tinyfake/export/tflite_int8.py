"""ONNX -> full-integer int8 TFLite (onnx2tf), and reading the result.

The model is quantized per channel with int8 input and int8 output,
calibrated on real training images. Everything here works offline.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyfake.errors import UserError
from tinyfake.files import write_atomic

# onnx2tf feeds this file through the ONNX model as a smoke test whenever the
# input looks like an RGB image, and downloads it when it is not in the
# working directory (offline that fails). We write our own images there.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_TIMEOUT_S = 1800

# Builtin operators the TFLite Micro interpreter registers (the `tflite-micro`
# wheel's op resolver). Anything else -- custom or Flex ops, RELU_0_TO_1 from
# old opsets -- cannot run on the device.
TFLM_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL
BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION
CONV_2D COS CUMSUM DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP
ELU EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER
GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D
LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC
LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK
PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_MAX REDUCE_MIN RELU RELU6
RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT
SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT
SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF
TANH TRANSPOSE TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE
WHILE ZEROS_LIKE
""".split())


@dataclass(frozen=True)
class TensorQuant:
    """Shape and affine quantization of a model input or output."""
    shape: tuple[int, ...]
    dtype: str          # "int8", "float32", ...
    scale: float
    zero_point: int


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


def read_model(tflite: str | Path | bytes):
    """The parsed flatbuffer (`ModelT`) of a .tflite file or its bytes."""
    data = tflite if isinstance(tflite, (bytes, bytearray)) else Path(tflite).read_bytes()
    fb = _schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def _name_of(enum_cls, value: int) -> str:
    for key, val in vars(enum_cls).items():
        if val == value and not key.startswith("_"):
            return key
    return str(value)


def op_names(tflite: str | Path | bytes) -> list[str]:
    """Operator names of the main subgraph in execution order ("CONV_2D", ...)."""
    fb = _schema()
    model = read_model(tflite)
    names = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == fb.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if code.customCode else "?"
            names.append(f"CUSTOM:{custom}")
        else:
            names.append(_name_of(fb.BuiltinOperator, builtin))
    return names


def _tensor_quant(model, tensor_index: int) -> TensorQuant:
    fb = _schema()
    t = model.subgraphs[0].tensors[tensor_index]
    q = t.quantization
    scales = [] if q is None or q.scale is None else list(q.scale)
    zeros = [] if q is None or q.zeroPoint is None else list(q.zeroPoint)
    if len(scales) > 1:
        raise UserError("model input/output is quantized per channel; "
                        "tinyfake expects one scale per input and output")
    return TensorQuant(shape=tuple(int(d) for d in t.shape),
                       dtype=_name_of(fb.TensorType, t.type).lower(),
                       scale=float(scales[0]) if scales else 0.0,
                       zero_point=int(zeros[0]) if zeros else 0)


def io_quant(tflite: str | Path | bytes) -> tuple[TensorQuant, TensorQuant]:
    """(input, output) shape and quantization of a single-input, single-output model."""
    model = read_model(tflite)
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UserError(f"expected a model with one input and one output, got "
                        f"{len(graph.inputs)} and {len(graph.outputs)}")
    return _tensor_quant(model, graph.inputs[0]), _tensor_quant(model, graph.outputs[0])


def check_int8_tflm(tflite: str | Path | bytes) -> None:
    """Raise UserError unless the model has int8 I/O and only TFLite Micro ops."""
    inp, out = io_quant(tflite)
    for what, q in (("input", inp), ("output", out)):
        if q.dtype != "int8" or q.scale <= 0:
            raise UserError(f"the converted model's {what} is {q.dtype}, not quantized int8")
    bad = sorted({name for name in op_names(tflite) if name not in TFLM_OPS})
    if bad:
        raise UserError(f"model uses operators TFLite Micro does not support: {', '.join(bad)}; "
                        "change the architecture (or export at --opset 14 or newer)")


def _onnx2tf_gist(log: str) -> str:
    """The most telling line of onnx2tf's output, without colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in log.splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in reversed(lines):
        if re.search(r"error|exception|not supported|unsupported", ln, re.I):
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def convert_int8(onnx_path: str | Path, calib_nhwc: np.ndarray, out_path: str | Path) -> Path:
    """Quantize an ONNX model to full-integer int8 TFLite with onnx2tf.

    `calib_nhwc`: float32 (N, H, W, C) calibration images exactly as the model
    sees them (values in [0, 1]; C = 3, or 5 for R, G, B, FFT, LBP); they are
    passed with mean 0 / std 1, so onnx2tf adds no normalization of its own.
    """
    calib = np.ascontiguousarray(calib_nhwc, dtype=np.float32)
    if calib.ndim != 4 or calib.shape[-1] not in (3, 5) or len(calib) == 0:
        raise UserError(f"calibration data must be (N, H, W, 3 or 5) images, got shape {calib.shape}")
    c = calib.shape[-1]
    import cv2

    onnx_path = Path(onnx_path).resolve()
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="tinyfake-onnx2tf-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "calib.npy", calib)
        if c == 3:  # the smoke test is for RGB-looking inputs only
            sample = np.stack([cv2.resize(calib[i % len(calib)], (128, 128), interpolation=cv2.INTER_AREA)
                               for i in range(20)]).astype(np.float32)
            np.save(tmp / ONNX2TF_SAMPLE_FILE, sample)
        mean, std = "[[[[" + ",".join(["0.0"] * c) + "]]]]", "[[[[" + ",".join(["1.0"] * c) + "]]]]"
        # A subprocess: onnx2tf and TensorFlow print a lot (from C++ too),
        # call sys.exit on errors, and keep global state.
        cmd = [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", "out",
               "-oiqt", "-qt", "per-channel", "-iqd", "int8", "-oqd", "int8",
               "-cind", "input", "calib.npy", mean, std,
               "-v", "error"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=ONNX2TF_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise UserError(f"onnx2tf did not finish in {ONNX2TF_TIMEOUT_S} s; "
                            "is the model far larger than a microcontroller can hold?") from None
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise UserError(f"onnx2tf failed (exit {proc.returncode}): {_onnx2tf_gist(log)}")
        produced = tmp / "out" / f"{onnx_path.stem}_full_integer_quant.tflite"
        if not produced.exists():
            raise UserError(f"onnx2tf produced no int8 model: {_onnx2tf_gist(log)}")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out_path, produced.read_bytes())
    check_int8_tflm(out_path)
    return out_path


def quantized_inputs(tflite: str | Path | bytes, x: np.ndarray) -> np.ndarray:
    """Model input tensors for `x`: uint8 NHWC images are quantized with the
    model's input scale/zero point; int8 arrays are taken as already quantized.
    A five-channel model takes R, G, B, FFT, LBP images: turn RGB faces into
    them with tinyfake.data.channels.model_images first."""
    inp, _ = io_quant(tflite)
    if x.dtype == np.int8:
        q = x
    elif x.dtype == np.uint8:
        from tinyfake.data.tensors import quantize_input
        q = quantize_input(x, inp.scale, inp.zero_point)
    else:
        raise TypeError(f"expected uint8 images or int8 model inputs, got {x.dtype}")
    if q.shape[1:] != inp.shape[1:] and q.shape[1:3] == inp.shape[1:3] and inp.shape[3:] == (5,):
        raise UserError(f"the model takes R, G, B, FFT, LBP inputs {inp.shape[1:]}, got {q.shape[1:]}; "
                        "feed it tinyfake.data.channels.model_images(config, faces)")
    if q.shape[1:] != inp.shape[1:]:
        raise UserError(f"images are {q.shape[1:]} but the model expects {inp.shape[1:]}; "
                        "evaluate on data at the model's input size")
    return q


def reference_interpreter(tflite_path: str | Path, preserve_all_tensors: bool = False):
    """TFLite's interpreter with its reference kernels (not XNNPACK/optimized).

    LiteRT's `ai_edge_litert` is the same interpreter as `tf.lite.Interpreter`
    (which TensorFlow deprecates in its favour) without importing TensorFlow.
    """
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(model_path=str(tflite_path),
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
                                experimental_preserve_all_tensors=preserve_all_tensors)
    interp.allocate_tensors()
    return interp


def tflite_int8_outputs(tflite_path: str | Path, x: np.ndarray) -> np.ndarray:
    """Raw int8 outputs (N, *output_shape[1:]) of TFLite's reference kernels.

    `x`: uint8 NHWC images or int8 model inputs (see `quantized_inputs`).
    """
    q = quantized_inputs(tflite_path, x)
    interp = reference_interpreter(tflite_path)
    i_idx = interp.get_input_details()[0]["index"]
    o_idx = interp.get_output_details()[0]["index"]
    outs = []
    for sample in q:
        interp.set_tensor(i_idx, sample[None])
        interp.invoke()
        outs.append(interp.get_tensor(o_idx)[0].copy())
    return np.stack(outs).astype(np.int8)


def dequantize(q: np.ndarray, quant: TensorQuant) -> np.ndarray:
    return (q.astype(np.float32) - quant.zero_point) * np.float32(quant.scale)
