"""Read a `.tflite` flatbuffer into plain typed dataclasses.

Uses the schema module shipped with the `tflite-micro` wheel, so the reader
and the oracle agree on the format. Only what the compiler needs is kept:
tensors (shape, dtype, quantization, constant data), operators (name,
inputs, outputs, builtin options as a dict) and the graph's inputs/outputs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyfake.errors import UserError


def _schema():
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError("the tflite-micro wheel is not installed (it provides the "
                        ".tflite schema); run scripts/setup.sh") from exc
    return schema_py_generated


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


# TensorType value -> numpy dtype name
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
           6: "bool", 7: "int16", 9: "int8", 10: "float64", 12: "uint64", 15: "uint32",
           16: "uint16", 17: "int4"}


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point)."""
    scale: np.ndarray        # float32, one per channel or a single value
    zero_point: np.ndarray   # int64, same length as scale
    axis: int = 0            # quantized_dimension for per-channel

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (float32 value as a Python float)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None   # constant contents, already shaped
    is_variable: bool = False

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Operator:
    index: int
    opcode: str                      # builtin name, e.g. "CONV_2D"
    inputs: list[int]                # tensor indices, -1 = optional input absent
    outputs: list[int]
    options: dict = field(default_factory=dict)
    version: int = 1


@dataclass
class Model:
    path: Path
    sha256: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]


def read_tflite(path: str | Path) -> Model:
    """Parse the first subgraph of a `.tflite` file."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read model {path}: {exc.strerror}") from exc
    S = _schema()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); "
                        "export an int8 model with `tinyfake export`")
    try:
        m = S.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:
        raise UserError(f"{path} is a corrupt TFLite file ({exc})") from exc
    if not m.subgraphs:
        raise UserError(f"{path} has no subgraph")
    if len(m.subgraphs) > 1:
        raise UserError(f"{path} has {len(m.subgraphs)} subgraphs; only single-subgraph "
                        "models (no control flow) are supported")
    op_names = _enum_names(S.BuiltinOperator)
    sg = m.subgraphs[0]

    tensors = []
    for i, t in enumerate(sg.tensors or []):
        dtype = _DTYPES.get(t.type, f"type{t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            zp = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
            quant = Quant(np.asarray(q.scale, dtype=np.float32),
                          np.asarray(zp, dtype=np.int64), int(q.quantizedDimension))
        data = None
        b = m.buffers[t.buffer] if m.buffers and t.buffer < len(m.buffers) else None
        if b is not None:
            raw = None
            if b.data is not None and len(b.data) > 0:
                raw = np.asarray(b.data, dtype=np.uint8).tobytes()
            elif b.offset > 1:  # large models keep buffers after the flatbuffer
                raw = buf[b.offset:b.offset + b.size]
            if raw is not None and dtype in ("float32", "int32", "int8", "uint8", "int16",
                                              "int64", "float16", "bool", "uint16", "uint32"):
                arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
                data = arr.astype(np.dtype(dtype)).reshape(shape) if shape else arr.copy()
        name = t.name.decode() if isinstance(t.name, bytes) else (t.name or f"t{i}")
        tensors.append(Tensor(i, name, shape, dtype, quant, data, bool(t.isVariable)))

    operators = []
    for i, op in enumerate(sg.operators or []):
        oc = m.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            cc = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
            name = f"CUSTOM({cc})"
        opts = {}
        if op.builtinOptions is not None:
            opts = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                    for k, v in vars(op.builtinOptions).items()}
        operators.append(Operator(i, name, [int(x) for x in (op.inputs if op.inputs is not None else [])],
                                  [int(x) for x in (op.outputs if op.outputs is not None else [])],
                                  opts, int(oc.version)))

    return Model(path, hashlib.sha256(buf).hexdigest(), tensors, operators,
                 [int(x) for x in sg.inputs], [int(x) for x in sg.outputs])
