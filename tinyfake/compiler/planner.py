"""Static memory plan: tensor lifetimes -> offsets in one arena.

Storage is assigned per *buffer*: tensors that share memory (RESHAPE aliases,
outputs computed in place over an input that dies at that step) are merged
into one buffer first. The model input is read straight from the caller's
`input` pointer and the model output written straight to `output`, so neither
takes arena space. Remaining buffers (and per-step scratch) are packed by
several greedy heuristics (TFLite Micro's greedy-by-size among them); the
smallest peak wins.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyfake.compiler.graph import Lowered
from tinyfake.compiler.reader import Model
from tinyfake.errors import UserError

ALIGN = 16  # every buffer starts 16-byte aligned (word loads, cache lines)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    id: int
    size: int
    first: int          # step that writes it (-1: exists before step 0)
    last: int           # last step that reads it
    kind: str = "arena"  # arena | input | output
    offset: int = 0
    tensors: list[int] = field(default_factory=list)

    def overlaps(self, other: "Buffer") -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass
class Plan:
    tensor_buffer: dict[int, Buffer]    # activation tensor -> its buffer
    scratch: dict[int, Buffer]          # step index -> scratch buffer
    arena_bytes: int
    strategy: str


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int):
        self.parent[self.find(a)] = self.find(b)


def plan_memory(model: Model, lowered: Lowered, inplace: bool = True) -> Plan:
    steps = lowered.steps
    uf = _UnionFind()
    for dst, src in lowered.aliases.items():
        uf.union(dst, src)
    model_in, model_out = model.inputs[0], model.outputs[0]

    def group_uses() -> dict[int, tuple[int, int]]:
        """Root -> (first write, last read) over all tensors of the group."""
        span: dict[int, list[int]] = {}
        for si, st in enumerate(steps):
            for t in [st.output] + st.inputs:
                r = uf.find(t)
                lo_hi = span.setdefault(r, [si, si])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], si), max(lo_hi[1], si)
        for t in (model_in,):
            span.setdefault(uf.find(t), [-1, -1])[0] = -1
        span.setdefault(uf.find(model_out), [len(steps), len(steps)])[1] = len(steps)
        return {r: (v[0], v[1]) for r, v in span.items()}

    special = {uf.find(model_in), uf.find(model_out)}
    if inplace:
        # Merge a step's output into an input that dies at this step (element-wise
        # kernels read each element before writing it). Never into the caller's
        # const input, and not when output and input are the caller's buffers.
        for si, st in enumerate(steps):
            uses = group_uses()
            ro = uf.find(st.output)
            if ro in special:
                continue
            for cand in st.inplace:
                rc = uf.find(cand)
                if rc in special or rc == ro:
                    continue
                if uses[rc][1] == si and lowered.tensor_bytes(model, cand) >= lowered.tensor_bytes(model, st.output):
                    uf.union(st.output, cand)
                    break

    uses = group_uses()
    buffers: dict[int, Buffer] = {}
    for r, (first, last) in uses.items():
        members = [t for t in list(uf.parent) + [r] if uf.find(t) == r]
        size = max(lowered.tensor_bytes(model, t) for t in set(members))
        kind = "input" if r == uf.find(model_in) else "output" if r == uf.find(model_out) else "arena"
        buffers[r] = Buffer(len(buffers), size, first, last, kind, tensors=sorted(set(members)))
    if uf.find(model_in) == uf.find(model_out):
        raise UserError("the model only reshapes its input (no operator computes anything); "
                        "there is nothing to compile")

    scratch = {si: Buffer(-1 - si, st.scratch_bytes, si, si)
               for si, st in enumerate(steps) if st.scratch_bytes}
    arena = [b for b in buffers.values() if b.kind == "arena"] + list(scratch.values())
    # Outputs that may start before the end of their dying input (the kernel
    # never writes over input it still has to read): (out id, in id) -> the
    # largest allowed offset of the output's start relative to the input's.
    allowed: dict[tuple[int, int], int] = {}
    if inplace:
        for si, st in enumerate(steps):
            if st.overlap is None or len(st.inputs) != 1:
                continue
            bi, bo = buffers[uf.find(st.inputs[0])], buffers[uf.find(st.output)]
            if bi is bo or bi.kind != "arena" or bo.kind != "arena" or bi.last != si or bo.first != si:
                continue
            allowed[(bo.id, bi.id)] = overlap_delta(st.overlap)
    best = None
    for name, key in _STRATEGIES:
        peak, offsets = _greedy(arena, key, allowed)
        if best is None or peak < best[0]:
            best = (peak, offsets, name)
    peak, offsets, name = best
    for b in arena:
        b.offset = offsets[b.id]
    tensor_buffer = {t: b for b in buffers.values() for t in b.tensors}
    return Plan(tensor_buffer, scratch, peak, name)


_STRATEGIES = [
    ("greedy by size", lambda b: (-b.size, b.first)),
    ("greedy by lifetime start", lambda b: (b.first, -b.size)),
    ("greedy by size x lifetime", lambda b: (-b.size * (b.last - b.first + 1), b.first)),
    ("greedy by longest lifetime", lambda b: (-(b.last - b.first), -b.size)),
    # latest first: an output that may overlap its input is placed before it
    ("greedy by lifetime start, latest first", lambda b: (-b.first, -b.size)),
    ("greedy by lifetime end, latest first", lambda b: (-b.last, -b.size)),
]


def overlap_delta(spec: tuple) -> int:
    """Largest (output start - input start) in bytes such that a kernel that
    reads its input in pixel order never overwrites input it still needs.

    ("pw", ic, oc): pointwise kernel, blocks of 2 pixels; each block's
    outputs are written after its inputs are read, block by block.
    ("conv", ih, iw, ic, oh, ow, oc, sh, sw, pad_top, pad_left, k): an output
    pixel's bytes are written while its own taps are still being read, so
    they must stay below every input byte any output from it on reads."""
    if spec[0] == "pw":
        # input pixels from j on are needed while block j writes up to (j + 2) * oc
        _, ic, oc, pixels = spec
        j = np.arange(pixels)
        return int(np.min(j * ic - (j + 2) * oc))
    _, ih, iw, ic, oh, ow, oc, sh, sw, pt, pl, k = spec
    oy = np.arange(oh).repeat(ow)
    ox = np.tile(np.arange(ow), oh)
    minpix = np.maximum(0, oy * sh - pt) * iw + np.maximum(0, ox * sw - pl)
    need = np.minimum.accumulate(minpix[::-1])[::-1]   # min over this output and later ones
    j = np.arange(oh * ow)
    return int(np.min(need * ic - (j + 1) * oc))


def _fits(c: int, size: int, b: Buffer, placed, allowed) -> bool:
    for o, e, p in placed:
        if not p.overlaps(b) or c + size <= o or e <= c:
            continue
        d = allowed.get((b.id, p.id))
        if d is not None and c - o <= d:
            continue
        d = allowed.get((p.id, b.id))
        if d is not None and o - c <= d:
            continue
        return False
    return True


def _greedy(buffers: list[Buffer], key, allowed=None) -> tuple[int, dict[int, int]]:
    """Place each buffer (in `key` order) at the lowest offset free for its
    lifetime; `allowed` pairs may overlap in space (see overlap_delta)."""
    allowed = allowed or {}
    placed: list[tuple[int, int, Buffer]] = []  # (offset, end, buffer)
    offsets: dict[int, int] = {}
    peak = 0
    for b in sorted(buffers, key=key):
        size = _align(b.size)
        cands = {0}
        for o, e, p in placed:
            if p.overlaps(b):
                cands.add(e)
                d = allowed.get((b.id, p.id))
                if d is not None:
                    cands.add(o + d)       # output as far up as allowed
                    cands.add(_align_down(o + d))
                d = allowed.get((p.id, b.id))
                if d is not None:
                    cands.add(_align(o - d))  # input as far down as allowed
        off = min(c for c in cands if c >= 0 and c % ALIGN == 0 and _fits(c, size, b, placed, allowed))
        placed.append((off, off + size, b))
        offsets[b.id] = off
        peak = max(peak, off + b.size)
    return peak, offsets


def _align_down(n: int) -> int:
    return n // ALIGN * ALIGN
