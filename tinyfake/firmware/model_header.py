"""Reads the MODEL_* macros of a generated `gen/model.h` (docs/INTERFACES.md)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tinyfake.errors import UserError

_DEFINE = re.compile(r"^\s*#\s*define\s+(MODEL_[A-Z0-9_]+)\s+(.+?)\s*(?:/\*.*)?$", re.M)
_NUMBER = re.compile(r"^\(?\s*([-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))[fFuUlL]*\s*\)?$")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    hash: str
    input_shape: tuple[int, int, int]  # H, W, C
    input_bytes: int
    output_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    weight_bytes: int
    macs: int
    num_ops: int


def _value(defs: dict[str, str], key: str, header: Path):
    if key not in defs:
        raise UserError(f"{header} does not define {key}; regenerate it with `tinyfake compile`")
    text = defs[key]
    if text.startswith('"'):
        return text.strip('"')
    m = _NUMBER.match(text)
    if m:
        v = m.group(1)
        return float(v) if any(c in v for c in ".eE") and not v.lower().startswith("0x") else int(v, 0)
    return text


def read_model_header(gen_dir: str | Path) -> ModelInfo:
    header = Path(gen_dir) / "model.h"
    if not header.exists():
        raise UserError(f"{header} not found; compile the model first (`tinyfake compile`)")
    defs = dict(_DEFINE.findall(header.read_text()))
    v = lambda k: _value(defs, k, header)  # noqa: E731
    h, w, c = int(v("MODEL_INPUT_H")), int(v("MODEL_INPUT_W")), int(v("MODEL_INPUT_C"))
    out_bytes = v("MODEL_OUTPUT_BYTES")
    return ModelInfo(
        name=str(v("MODEL_NAME")), hash=str(v("MODEL_HASH")), input_shape=(h, w, c),
        input_bytes=h * w * c, output_bytes=int(out_bytes),
        input_scale=float(v("MODEL_INPUT_SCALE")), input_zero_point=int(v("MODEL_INPUT_ZERO_POINT")),
        output_scale=float(v("MODEL_OUTPUT_SCALE")), output_zero_point=int(v("MODEL_OUTPUT_ZERO_POINT")),
        arena_bytes=int(v("MODEL_ARENA_BYTES")), weight_bytes=int(v("MODEL_WEIGHT_BYTES")),
        macs=int(v("MODEL_MACS")), num_ops=int(v("MODEL_NUM_OPS")))
