"""Write small int8 .tflite models directly (flatbuffer object API).

Used to test kernels one operator at a time with any shapes and
quantization parameters, without going through a converter.
"""
from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np

from tinyfake.compiler.reader import _schema

_TYPES = {"float32": 0, "int32": 2, "int8": 9, "int64": 4, "int16": 7, "uint8": 3}


@dataclass
class T:
    """A tensor: shape, dtype, quantization, optional constant data."""
    shape: tuple
    dtype: str = "int8"
    scale: float | list | None = None
    zp: int | list = 0
    axis: int = 0
    data: np.ndarray | None = None


def build(ops: list[tuple[str, list[int], list[int], dict]], tensors: list[T],
          inputs: list[int], outputs: list[int]) -> bytes:
    """ops: (OPNAME, input tensor indices, output tensor indices, options dict).

    Options keys are the schema's option fields (e.g. strideW, padding,
    fusedActivationFunction); the options table type follows from OPNAME."""
    S = _schema()
    m = S.ModelT()
    m.version = 3
    m.description = "tinyfake test model"
    aligned_buffer = _aligned_buffer_class(S)
    m.buffers = [S.BufferT()]  # buffer 0: empty, by convention
    m.operatorCodes = []
    codes: dict[str, int] = {}
    sg = S.SubGraphT()
    sg.tensors = []
    for i, t in enumerate(tensors):
        tt = S.TensorT()
        tt.shape = list(t.shape)
        tt.type = _TYPES[t.dtype]
        tt.name = f"t{i}"
        tt.buffer = 0
        if t.data is not None:
            b = aligned_buffer()
            b.data = np.ascontiguousarray(np.asarray(t.data, dtype=t.dtype)).view(np.uint8).reshape(-1)
            m.buffers.append(b)
            tt.buffer = len(m.buffers) - 1
        if t.scale is not None:
            q = S.QuantizationParametersT()
            scales = np.atleast_1d(np.asarray(t.scale, dtype=np.float32))
            zps = np.atleast_1d(np.asarray(t.zp, dtype=np.int64))
            if zps.size == 1 and scales.size > 1:
                zps = np.repeat(zps, scales.size)
            q.scale = [float(s) for s in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = t.axis
            tt.quantization = q
        sg.tensors.append(tt)
    sg.operators = []
    for name, ins, outs, opts in ops:
        if name not in codes:
            oc = S.OperatorCodeT()
            code = getattr(S.BuiltinOperator, name)
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            codes[name] = len(m.operatorCodes)
            m.operatorCodes.append(oc)
        op = S.OperatorT()
        op.opcodeIndex = codes[name]
        op.inputs = list(ins)
        op.outputs = list(outs)
        opt_name = _OPTIONS.get(name)
        if opt_name:
            o = getattr(S, opt_name + "T")()
            for k, v in opts.items():
                if not hasattr(o, k):
                    raise KeyError(f"{opt_name} has no field {k}")
                setattr(o, k, v)
            op.builtinOptionsType = getattr(S.BuiltinOptions, opt_name)
            op.builtinOptions = o
        sg.operators.append(op)
    sg.inputs = list(inputs)
    sg.outputs = list(outputs)
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _aligned_buffer_class(S):
    """BufferT whose data vector is 16-byte aligned in the flatbuffer.

    TFLite Micro reads weights and biases in place and expects aligned data
    (the object API's default packing aligns only to the element size; the
    wheel crashes on misaligned buffers now and then)."""

    class AlignedBufferT(S.BufferT):
        def Pack(self, builder):
            raw = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            builder.vectorNumElems = len(raw)
            vec = builder.EndVector()
            S.BufferStart(builder)
            S.BufferAddData(builder, vec)
            return S.BufferEnd(builder)

    return AlignedBufferT


_OPTIONS = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "ADD": "AddOptions", "MUL": "MulOptions",
    "MEAN": "ReducerOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
    "PAD": "PadOptions", "PADV2": "PadV2Options", "RESHAPE": "ReshapeOptions",
    "CONCATENATION": "ConcatenationOptions", "SOFTMAX": "SoftmaxOptions",
    "HARD_SWISH": "HardSwishOptions", "QUANTIZE": "QuantizeOptions", "SQUEEZE": "SqueezeOptions",
    "GATHER": "GatherOptions", "TRANSPOSE": "TransposeOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
}
