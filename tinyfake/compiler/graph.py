"""Lower a TFLite graph into kernel calls ("steps") for the C runtime.

Each supported operator becomes one `Step`: the runtime function to call,
its constant parameters (already computed the way TFLite Micro's Prepare
computes them), the activation tensors it reads and writes, scratch needs
and MACs. RESHAPE-like ops become storage aliases, and a PAD feeding a
convolution is folded into that convolution's padding (bit-exact, because
out-of-bounds taps are skipped exactly like taps that read the zero point).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tinyfake.compiler import quant as Q
from tinyfake.compiler.binary import pack_weights, popcount32
from tinyfake.compiler.reader import Model, Operator, Tensor
from tinyfake.errors import UserError

SUPPORTED = ("ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
             "EXPAND_DIMS", "FULLY_CONNECTED", "GATHER", "HARD_SWISH", "LOGISTIC", "MAXIMUM",
             "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PAD", "PADV2", "PRELU", "QUANTIZE", "RESHAPE",
             "SOFTMAX", "SQUEEZE", "TRANSPOSE")

# Runtime source files per kernel family (paths relative to the repo root).
RUNTIME_SOURCES = {
    "conv": ["firmware/runtime/tfk_conv.c", "firmware/runtime/cortex_m/tfk_conv_dsp.c"],
    "pw": ["firmware/runtime/tfk_pw.c"],
    "dw3": ["firmware/runtime/tfk_dw.c"],
    "dwk": ["firmware/runtime/tfk_dwk.c"],
    "convrow": ["firmware/runtime/tfk_convrow.c"],
    "fc": ["firmware/runtime/tfk_fc.c", "firmware/runtime/cortex_m/tfk_fc_dsp.c"],
    "elementwise": ["firmware/runtime/tfk_elementwise.c"],
    "pool": ["firmware/runtime/tfk_pool.c"],
    "data": ["firmware/runtime/tfk_data.c"],
    "softmax": ["firmware/runtime/tfk_softmax.c"],
    "minmax": ["firmware/runtime/tfk_minmax.c"],
    "gather": ["firmware/runtime/tfk_gather.c"],
    "gconv": ["firmware/runtime/tfk_gconv.c"],
    "binary": ["firmware/runtime/tfk_binary.c", "firmware/runtime/cortex_m/tfk_binary_m7.c"],
    "prelu": ["firmware/runtime/tfk_prelu.c"],
}

# binary convolutions: largest kernel and k*k*words the runtime takes
# (TFKB_MAX_K, TFKB_MAX_TAP_WORDS in tfk_binary.h)
BINARY_MAX_K = 8
BINARY_MAX_TAP_WORDS = 576


# tfk_pw16 (int16 weights) for pointwise layers with at least this many
# pixels; smaller ones keep int8 weights (tfk_conv1x1) to save flash.
PW16_MIN_PIXELS = 36
PW16_MAX_C4 = 256  # TFK_PW16_MAX_C4
# tfk_dwk (doubled int16 weights, per-group constants) for depthwise layers
# with at least this many output pixels; smaller ones keep the generic kernel
# (the flash it costs per channel buys little there).
DWK_MIN_PIXELS = 64


def _pairs(w: np.ndarray) -> np.ndarray:
    """Rows of int16 values, 4 per group in order c0 c1 c2 c3 -> int32 words
    {c0 | c2 << 16}, {c1 | c3 << 16} (SXTB16 lane order)."""
    g = np.asarray(w, np.int64).reshape(-1, 4)
    lo = g[:, [0, 1]] & 0xFFFF
    hi = g[:, [2, 3]] & 0xFFFF
    words = (lo | (hi << 16)).astype(np.uint32).view(np.int32)
    return words.reshape(-1).astype(np.int64)


@dataclass
class Const:
    """A constant array emitted into flash."""
    name: str
    ctype: str                 # int8_t / int32_t
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2}.get(self.ctype, 4)


@dataclass
class Step:
    op: Operator
    family: str                          # key of RUNTIME_SOURCES
    ptype: str | None                    # params struct type, None if no struct
    params: list                         # struct initializer values (ints / const names / None)
    call: str                            # C call with {p} {in0} {in1}... {out} {scratch}
    inputs: list[int]                    # activation tensors read, in {inN} order
    output: int
    consts: list[Const] = field(default_factory=list)
    macs: int = 0
    scratch_bytes: int = 0
    inplace: list[int] = field(default_factory=list)  # inputs the output may overwrite
    note: str = ""
    bcast: list | None = None            # tfk_bcast initializer [dims, a_stride, b_stride]
    overlap: tuple | None = None         # how far the output may overlap its input (planner)


@dataclass
class Lowered:
    steps: list[Step]
    aliases: dict[int, int]              # tensor -> tensor whose storage it shares
    folded: dict[int, str]               # op index -> why no code (alias / fused)
    const_bytes: int
    packed_bytes: dict[int, int] = field(default_factory=dict)  # tensor -> bytes when bit-packed

    def tensor_bytes(self, model: Model, t: int) -> int:
        """Storage of an activation tensor (bit-packed ones are smaller)."""
        return self.packed_bytes.get(t, model.tensors[t].nbytes)


def _err(op: Operator, msg: str) -> UserError:
    return UserError(f"op {op.index} ({op.opcode}): {msg}")


def _shape4(shape: tuple[int, ...], op: Operator, what: str) -> list[int]:
    if len(shape) > 4:
        raise _err(op, f"{what} has rank {len(shape)}; at most 4 dimensions are supported")
    return [1] * (4 - len(shape)) + list(shape)


def _out_size(padding: int, in_size: int, k: int, stride: int, dil: int) -> int:
    eff = (k - 1) * dil + 1
    return (in_size + stride - 1) // stride if padding == 0 else (in_size - eff + stride) // stride


def _pad_before(in_size: int, k: int, stride: int, dil: int, out_size: int) -> int:
    """ComputePaddingWithOffset: total padding split, the extra one at the end."""
    eff = (k - 1) * dil + 1
    total = max(0, (out_size - 1) * stride + eff - in_size)
    return total // 2


OPTIMIZE = ("speed", "size")


class _Lowering:
    def __init__(self, model: Model, binary_kernels: bool = True, optimize: str = "speed"):
        self.m = model
        self.binary_kernels = binary_kernels
        # "size": int8 weights everywhere (tfk_conv1x1, the generic depthwise),
        # none of the doubled int16 layouts the fastest kernels read
        self.fast_layouts = optimize == "speed"
        self.binary_signs: dict[int, np.ndarray] = {}  # sign op -> int16 thresholds
        self.binary_convs: set[int] = set()              # CONV_2Ds on packed bits
        self.packed_bytes: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for op in model.operators:
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op.index)
        self.steps: list[Step] = []
        self.aliases: dict[int, int] = {}
        self.folded: dict[int, str] = {}
        self.fused_pad: dict[int, tuple[int, list[int]]] = {}  # conv op -> (pad input, before[4])
        self.fused_gather: dict[int, tuple[int, int, int]] = {}  # gather op -> (input, axis, output)

    # -- helpers --------------------------------------------------------------
    def t(self, i: int) -> Tensor:
        return self.m.tensors[i]

    def act(self, op: Operator, i: int, what: str) -> Tensor:
        """An int8 activation tensor with per-tensor quantization."""
        t = self.t(i)
        if t.dtype != "int8":
            raise _err(op, f"{what} tensor '{t.name}' is {t.dtype}; only int8 activations "
                           "are supported (export a full-integer int8 model)")
        if t.quant is None:
            raise _err(op, f"{what} tensor '{t.name}' has no quantization parameters")
        if t.quant.per_channel:
            raise _err(op, f"{what} tensor '{t.name}' is per-channel quantized; "
                           "activations must be per-tensor")
        return t

    def const(self, op: Operator, i: int, what: str, dtype: str | None = None) -> Tensor:
        t = self.t(i)
        if not t.is_const:
            raise _err(op, f"{what} tensor '{t.name}' must be a constant")
        if dtype and t.dtype != dtype:
            raise _err(op, f"{what} tensor '{t.name}' is {t.dtype}; expected {dtype}")
        return t

    def _slut(self, op: Operator, lut) -> list:
        """The activation table indexed by the signed value (entry v + 128)."""
        if lut is None:
            return []
        return [Const(self.cname(op, "slut"), "int8_t", np.roll(np.asarray(lut), 128))]

    def cname(self, op: Operator, what: str) -> str:
        return f"op{op.index}_{what}"

    def activation(self, op: Operator, out: Tensor) -> tuple[int, int]:
        act = int(op.options.get("fusedActivationFunction", 0) or 0)
        if act not in (0, 1, 2, 3):
            raise _err(op, f"fused activation {act} is not supported "
                           "(NONE, RELU, RELU_N1_TO_1, RELU6 are)")
        return Q.activation_range(act, out.quant.s, out.quant.zp)

    # -- pass 1: decide which PADs fold into the convolution that reads them --
    def plan_pad_fusion(self):
        for op in self.m.operators:
            if op.opcode not in ("PAD", "PADV2") or len(op.outputs) != 1:
                continue
            out = op.outputs[0]
            users = self.consumers.get(out, [])
            if len(users) != 1 or out in self.m.outputs:
                continue
            conv = self.m.operators[users[0]]
            if conv.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D") or conv.inputs[0] != out:
                continue
            src, dst = self.t(op.inputs[0]), self.t(out)
            if src.dtype != "int8" or dst.dtype != "int8" or src.quant is None or dst.quant is None:
                continue
            if src.quant.zp != dst.quant.zp or src.quant.s != dst.quant.s or len(src.shape) != 4:
                continue
            if not self.t(op.inputs[1]).is_const:
                continue
            pads = self.t(op.inputs[1]).data.reshape(-1, 2).astype(np.int64)
            if pads.shape[0] != 4 or (pads < 0).any() or pads[0].any() or pads[3].any():
                continue
            if self._pad_value(op) != dst.quant.zp:
                continue  # only padding with the zero point equals skipping taps
            self.fused_pad[conv.index] = (op.inputs[0], [int(pads[1, 0]), int(pads[2, 0])])
            self.folded[op.index] = f"fused into op {conv.index} ({conv.opcode}) as padding"

    def _pad_value(self, op: Operator) -> int:
        out = self.t(op.outputs[0])
        if op.opcode == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            c = self.const(op, op.inputs[2], "constant_values")
            return int(np.asarray(c.data).reshape(-1)[0])
        return out.quant.zp

    # -- pass 2: one step per operator ----------------------------------------
    def plan_transpose_gather(self):
        """TRANSPOSE(p) -> GATHER(axis k) -> TRANSPOSE(p^-1) (what onnx2tf makes of
        some channel gathers) is one GATHER on axis p[k] of the first input."""
        for op in self.m.operators:
            if op.opcode != "TRANSPOSE" or len(op.outputs) != 1 or op.index in self.folded:
                continue
            mid = op.outputs[0]
            users = self.consumers.get(mid, [])
            if len(users) != 1 or mid in self.m.outputs:
                continue
            g = self.m.operators[users[0]]
            if g.opcode != "GATHER" or g.inputs[0] != mid or not self.t(g.inputs[1]).is_const:
                continue
            if int(g.options.get("batchDims", 0) or 0) != 0 or len(self.t(g.inputs[1]).shape) != 1:
                continue
            g_users = self.consumers.get(g.outputs[0], [])
            if len(g_users) != 1 or g.outputs[0] in self.m.outputs:
                continue
            t2 = self.m.operators[g_users[0]]
            if t2.opcode != "TRANSPOSE" or not self.t(op.inputs[1]).is_const \
                    or not self.t(t2.inputs[1]).is_const:
                continue
            p = [int(v) for v in self.t(op.inputs[1]).data.reshape(-1)]
            q = [int(v) for v in self.t(t2.inputs[1]).data.reshape(-1)]
            if len(p) != len(q) or any(p[q[i]] != i for i in range(len(p))):
                continue
            rank = len(p)
            k = int(g.options.get("axis", 0) or 0)
            k = k + rank if k < 0 else k
            self.fused_gather[g.index] = (op.inputs[0], p[k], t2.outputs[0])
            for t_op in (op, t2):
                self.folded[t_op.index] = (f"fused into op {g.index} (GATHER on axis {p[k]} "
                                           "of the untransposed tensor)")

    # -- pass 1c: sign -> +-1 CONV_2D pairs become bit-packed binary convs --
    def plan_binary(self):
        """A 1x1 DEPTHWISE_CONV_2D whose output can only be -1 or +1 (a sign
        with per-channel thresholds), read only by CONV_2Ds with all weights
        -1 or +1, becomes a bit-packing step and those convs XNOR-popcount
        kernels on the packed bits: the same results, 1 bit per weight."""
        if not self.binary_kernels:
            return
        for op in self.m.operators:
            if op.opcode != "DEPTHWISE_CONV_2D" or op.outputs[0] in self.m.outputs:
                continue
            th = self._sign_thresholds(op)
            if th is None:
                continue
            convs = []
            for u in self.consumers.get(op.outputs[0], []):
                user = self.m.operators[u]
                if user.opcode in ("PAD", "PADV2") and user.index in self.folded:
                    nxt = self.consumers.get(user.outputs[0], [])
                    user = self.m.operators[nxt[0]] if len(nxt) == 1 else user
                convs.append(user)
            if convs and all(self._binary_conv_ok(c, op.outputs[0]) for c in convs):
                self.binary_signs[op.index] = th
                self.binary_convs.update(c.index for c in convs)

    def _sign_thresholds(self, op: Operator) -> np.ndarray | None:
        """Per-channel t with output = (x >= t ? +1 : -1) for every int8 x, or
        None when the op is not such a sign (evaluated exactly, all 256 inputs)."""
        x, y, w = self.t(op.inputs[0]), self.t(op.outputs[0]), self.t(op.inputs[1])
        if (x.dtype != "int8" or y.dtype != "int8" or x.quant is None or y.quant is None
                or x.quant.per_channel or y.quant.zp != 0 or not w.is_const or w.quant is None
                or len(w.shape) != 4 or w.shape[1:3] != (1, 1) or len(x.shape) != 4
                or x.shape != y.shape or int(op.options.get("strideH", 1)) != 1
                or int(op.options.get("strideW", 1)) != 1):
            return None
        c = x.shape[-1]
        wq = w.quant
        scales = wq.scale if wq.per_channel else np.repeat(wq.scale[:1], c)
        if scales.size != c or np.any(wq.zero_point != 0):
            return None
        bias = np.zeros(c, np.int64)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = self.t(op.inputs[2]).data.reshape(-1).astype(np.int64)
        mult, shift = zip(*(Q.quantize_multiplier(float(x.quant.s) * float(s) / float(y.quant.s))
                            for s in scales))
        act_min, act_max = self.activation(op, y)
        v = np.arange(-128, 128, dtype=np.int64)[:, None]
        acc = w.data.reshape(-1).astype(np.int64)[None, :] * (v - x.quant.zp) + bias[None, :]
        out = np.clip(Q.mbqm_array(acc, np.array(mult), np.array(shift)) + y.quant.zp, act_min, act_max)
        if not np.all(np.abs(out) == 1):
            return None
        th = 128 - (out == 1).sum(axis=0)  # number of +1 outputs -> first +1 input
        if not np.array_equal(out, np.where(v >= th[None, :], 1, -1)):
            return None  # not a step from -1 to +1
        return th.astype(np.int16)

    def _binary_conv_ok(self, op: Operator, packed: int) -> bool:
        if op.opcode != "CONV_2D" or op.index in self.binary_convs:
            return False
        src = self.fused_pad.get(op.index, (op.inputs[0],))[0]
        w, y = self.t(op.inputs[1]), self.t(op.outputs[0])
        if (src != packed or not w.is_const or w.dtype != "int8" or len(w.shape) != 4
                or w.quant is None or np.any(w.quant.zero_point != 0)):
            return False
        o = op.options
        k = w.shape[1]
        if (w.shape[2] != k or k > BINARY_MAX_K or int(o.get("strideH", 1)) != int(o.get("strideW", 1))
                or int(o.get("dilationHFactor", 1) or 1) != 1 or int(o.get("dilationWFactor", 1) or 1) != 1
                or y.dtype != "int8" or self.t(packed).shape[0] != 1 or w.shape[3] != self.t(packed).shape[3]):
            return False
        return (k * k * ((w.shape[3] + 31) // 32) <= BINARY_MAX_TAP_WORDS
                and bool(np.all(np.abs(w.data.astype(np.int64)) == 1)))

    def run(self) -> Lowered:
        self.plan_pad_fusion()
        self.plan_transpose_gather()
        self.plan_binary()
        for op in self.m.operators:
            if op.index in self.folded:
                continue
            if op.opcode not in SUPPORTED:
                raise _err(op, f"operator {op.opcode} is not supported; supported: "
                               + ", ".join(SUPPORTED))
            if op.index in self.binary_signs:
                self._binary_pack(op)
            elif op.index in self.binary_convs:
                self._binary_conv(op)
            else:
                getattr(self, "op_" + op.opcode.lower())(op)
        const_bytes = sum(c.nbytes for s in self.steps for c in s.consts)
        return Lowered(self.steps, self.aliases, self.folded, const_bytes, self.packed_bytes)

    def _binary_pack(self, op: Operator):
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        n, h, w, c = x.shape
        thresholds = self.binary_signs[op.index]
        if c % 4 == 0 and thresholds.max() <= 127:  # int8: 4 lanes per compare on Cortex-M7
            th = Const(self.cname(op, "th8"), "int8_t", thresholds)
            params = [n * h * w, c, None, th.name]
        else:
            th = Const(self.cname(op, "th"), "int16_t", thresholds)
            params = [n * h * w, c, th.name, None]
        self.packed_bytes[y.index] = n * h * w * ((c + 31) // 32) * 4
        self.steps.append(Step(op, "binary", "tfkb_pack_params", params,
                               "tfkb_pack({p}, {in0}, (uint32_t *){out})", [x.index], y.index, [th],
                               note=f"sign (x >= threshold) of {c} channels, packed 32 per word"))

    def _binary_conv(self, op: Operator):
        """CONV_2D on a packed +-1 input: d = sum of w*x over the taps inside the
        input (TFLite pads with the zero point 0, which adds nothing), then the
        op's own per-channel requantization of d + bias."""
        x_idx, extra = self.fused_pad.get(op.index, (op.inputs[0], [0, 0]))
        x, w, y = self.t(x_idx), self.t(op.inputs[1]), self.act(op, op.outputs[0], "output")
        _, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        k = w.shape[1]
        stride = int(op.options.get("strideH", 1))
        padding = int(op.options.get("padding", 0))
        ph_in, pw_in = self.t(op.inputs[0]).shape[1:3]
        if _out_size(padding, ph_in, k, stride, 1) != oh or _out_size(padding, pw_in, k, stride, 1) != ow:
            raise _err(op, f"output shape {y.shape} does not match the convolution geometry")
        pad_top = (_pad_before(ph_in, k, stride, 1, oh) if padding == 0 else 0) + extra[0]
        pad_left = (_pad_before(pw_in, k, stride, 1, ow) if padding == 0 else 0) + extra[1]
        scales = w.quant.scale if w.quant.per_channel else np.repeat(w.quant.scale[:1], oc)
        mult, shift = zip(*(Q.quantize_multiplier(float(x.quant.s) * float(s) / float(y.quant.s))
                            for s in scales))
        bias = np.zeros(oc, np.int64)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = self.const(op, op.inputs[2], "bias", "int32").data.reshape(-1).astype(np.int64)
        act_min, act_max = self.activation(op, y)
        wbits = pack_weights(w.data)                        # (O, K, K, words)
        consts = [Const(self.cname(op, "w"), "uint32_t", wbits.reshape(-1)),
                  Const(self.cname(op, "bias"), "int32_t", bias)]
        rq = Q.shifted_requant(list(mult), list(shift), y.quant.zp, k * k * ic + int(np.abs(bias).max()))
        if rq is not None:
            consts.append(Const(self.cname(op, "rq"), "int32_t", rq.reshape(-1)))
            requant = [None, None, consts[-1].name]
        else:
            consts += [Const(self.cname(op, "mult"), "int32_t", np.array(mult)),
                       Const(self.cname(op, "shift"), "int32_t", np.array(shift))]
            requant = [consts[-2].name, consts[-1].name, None]
        wpop = [None, None]  # [uint8, uint16] popcount of each tap's weight words
        if k > 1:
            counts = popcount32(wbits).sum(-1).reshape(oc, k * k)
            wide = int(counts.max()) > 255
            consts.append(Const(self.cname(op, "wpop"), "uint16_t" if wide else "uint8_t", counts))
            wpop[wide] = consts[-1].name
        params = [ih, iw, ic, oh, ow, oc, k, stride, pad_top, pad_left, y.quant.zp, act_min, act_max,
                  consts[0].name, consts[1].name, *requant, *wpop]
        note = f"{k}x{k} stride {stride}, pad {pad_top}/{pad_left}; binary XNOR-popcount, 1-bit weights"
        if op.index in self.fused_pad:
            note += " (includes the preceding PAD)"
        self.steps.append(Step(op, "binary", "tfkb_conv_params", params,
                               "tfkb_conv({p}, (const uint32_t *){in0}, {out})", [x.index], y.index,
                               consts, oh * ow * oc * k * k * ic, note=note))

    def _alias(self, op: Operator):
        src, dst = self.t(op.inputs[0]), self.t(op.outputs[0])
        if src.size != dst.size or src.dtype != dst.dtype:
            raise _err(op, f"reshape from {src.shape} to {dst.shape} changes the element count")
        if src.quant is not None and dst.quant is not None and (
                src.quant.s != dst.quant.s or src.quant.zp != dst.quant.zp):
            raise _err(op, "reshape changes quantization parameters")
        self.aliases[dst.index] = src.index
        self.folded[op.index] = f"alias of tensor {src.index} (no data movement)"

    op_reshape = op_squeeze = op_expand_dims = _alias

    def _conv(self, op: Operator, depthwise: bool):
        x_idx = op.inputs[0]
        extra = [0, 0]
        if op.index in self.fused_pad:
            x_idx, extra = self.fused_pad[op.index]
        x = self.act(op, x_idx, "input")
        w = self.const(op, op.inputs[1], "filter", "int8")
        y = self.act(op, op.outputs[0], "output")
        if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
            raise _err(op, "expects 4D NHWC input, filter and output")
        n, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        groups = 1  # > 1: grouped CONV_2D with several input channels per group
        o = op.options
        sh, sw = int(o.get("strideH", 1)), int(o.get("strideW", 1))
        dh, dw = int(o.get("dilationHFactor", 1) or 1), int(o.get("dilationWFactor", 1) or 1)
        padding = int(o.get("padding", 0))
        if depthwise:
            _, kh, kw, wc = w.shape
            if wc != oc or oc % ic:
                raise _err(op, f"filter {w.shape} does not match input {x.shape} / output {y.shape}")
            dm = oc // ic
        else:
            wo, kh, kw, wc = w.shape
            if wo != oc:
                raise _err(op, f"filter {w.shape} does not match output {y.shape}")
            dm = 1
            if wc != ic and wc > 1:
                groups = ic // wc if wc and ic % wc == 0 else 0
                if not groups or oc % groups:
                    raise _err(op, f"grouped convolution: filter depth {wc} does not divide "
                                   f"input depth {ic} into groups that divide {oc} output channels")
            elif wc != ic:
                if oc % ic:
                    raise _err(op, f"grouped convolution: {ic} groups do not divide "
                                   f"{oc} output channels")
                # groups == input depth: each output channel reads one input
                # channel, output o from input o // (oc / ic) -- a depthwise
                # convolution with depth multiplier oc / ic (same arithmetic)
                w = replace(w, shape=(1, kh, kw, oc), data=np.ascontiguousarray(
                    w.data.transpose(3, 1, 2, 0)))
                depthwise, dm = True, oc // ic
        # padding of the tensor the TFLite op sees (the PAD output when fused)
        ph_in, pw_in = ih, iw
        if op.index in self.fused_pad:
            pad_t = self.t(op.inputs[0]).shape
            ph_in, pw_in = pad_t[1], pad_t[2]
        if _out_size(padding, ph_in, kh, sh, dh) != oh or _out_size(padding, pw_in, kw, sw, dw) != ow:
            raise _err(op, f"output shape {y.shape} does not match the convolution geometry")
        pad_top = (_pad_before(ph_in, kh, sh, dh, oh) if padding == 0 else 0) + extra[0]
        pad_left = (_pad_before(pw_in, kw, sw, dw, ow) if padding == 0 else 0) + extra[1]
        wq = w.quant
        if wq is None:
            raise _err(op, f"filter '{w.name}' has no quantization parameters")
        if np.any(wq.zero_point != 0):
            raise _err(op, f"filter '{w.name}' has a non-zero zero point; int8 filters must be symmetric")
        scales = wq.scale if wq.per_channel else np.repeat(wq.scale[:1], oc)
        if scales.size != oc:
            raise _err(op, f"filter has {scales.size} scales for {oc} output channels")
        mult, shift = [], []
        for s in scales:  # PopulateConvolutionQuantizationParams, in double
            m_, s_ = Q.quantize_multiplier(float(x.quant.s) * float(s) / float(y.quant.s))
            mult.append(m_)
            shift.append(s_)
        act_min, act_max = self.activation(op, y)
        consts = [Const(self.cname(op, "w"), "int8_t", w.data.reshape(-1)),
                  Const(self.cname(op, "mult"), "int32_t", np.array(mult)),
                  Const(self.cname(op, "shift"), "int32_t", np.array(shift))]
        bias = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = self.const(op, op.inputs[2], "bias", "int32")
            consts.append(Const(self.cname(op, "bias"), "int32_t", b.data.reshape(-1)))
            bias = consts[-1].name
        params = [n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pad_top, pad_left, dm, groups,
                  -x.quant.zp, y.quant.zp, act_min, act_max,
                  consts[0].name, bias, consts[1].name, consts[2].name]
        macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic // groups)
        note = f"{kh}x{kw} stride {sh}x{sw}, pad {pad_top}/{pad_left}"
        if op.opcode == "CONV_2D" and depthwise:
            note += f" (grouped CONV_2D, {ic} groups: depthwise x{dm})"
        if op.index in self.fused_pad:
            note += " (includes the preceding PAD)"
        wdata = w.data.astype(np.int64)
        bias_v = (self.t(op.inputs[2]).data.reshape(-1).astype(np.int64) if bias is not None
                  else np.zeros(oc, np.int64))
        if groups > 1:
            self._grouped_conv(op, x, y, wdata, bias_v, params, consts, groups, mult, shift, macs, note)
            return
        lut = Q.clamp_lut(act_min, act_max)
        lut_c = [Const(self.cname(op, "act"), "int8_t", lut)] if lut is not None else []
        if (not depthwise and kh == kw == 1 and sh == sw == 1 and pad_top == pad_left == 0
                and (ih, iw) == (oh, ow)):
            folded = bias_v + (-x.quant.zp) * wdata.reshape(oc, ic).sum(axis=1)
            bound = np.abs(folded) + np.abs(wdata.reshape(oc, ic)).sum(axis=1) * 128
            rq = Q.fast_requant(mult, shift, y.quant.zp, int(bound.max()))
            ic4 = (ic + 3) // 4 * 4
            if rq is not None and self.fast_layouts and n * oh * ow >= PW16_MIN_PIXELS and ic4 <= PW16_MAX_C4:
                # int16 weights: where many pixels share them, the extra flash buys the most
                oc2 = (oc + 1) // 2 * 2   # an odd last channel is paired with a zero one
                wp = np.zeros((oc2, ic4), np.int64)
                wp[:oc, :ic] = 2 * wdata.reshape(oc, ic)
                # [pair][group][o0: {k0 k2} {k1 k3}, o1: {k0 k2} {k1 k3}]
                words = _pairs(wp).reshape(oc2 // 2, 2, ic4 // 4, 2).transpose(0, 2, 1, 3)
                r = np.zeros((oc2, 3), np.int64)
                r[:oc] = rq.reshape(oc, 3)
                b2 = np.zeros(oc2, np.int64)
                b2[:oc] = 2 * folded
                r, b2 = r.reshape(-1, 2, 3), b2.reshape(-1, 2)
                # per pair {b0, b1, m0, K0, e0, e1, m1, K1}
                q8 = np.stack([b2[:, 0], b2[:, 1], r[:, 0, 0], r[:, 0, 1], r[:, 0, 2], r[:, 1, 2],
                               r[:, 1, 0], r[:, 1, 1]], axis=1)
                pc = [Const(self.cname(op, "w"), "int32_t", words.reshape(-1)),
                      Const(self.cname(op, "q"), "int32_t", q8.reshape(-1))] + self._slut(op, lut)
                params = [n * oh * ow, ic, oc, ic4, pc[0].name, pc[1].name,
                          pc[2].name if len(pc) > 2 else None]
                self.steps.append(Step(op, "pw", "tfk_pw16_params", params, "tfk_pw16({p}, {in0}, {out})",
                                       [x.index], y.index, pc, macs, 0,
                                       note=note + "; pointwise kernel, int16 weights",
                                       overlap=("pw", ic, oc, n * oh * ow)))
                return
            if rq is not None:
                wp = np.zeros((oc, ic4), np.int64)
                wp[:, :ic] = wdata.reshape(oc, ic)
                pc = [Const(self.cname(op, "w"), "int8_t", wp.reshape(-1)),
                      Const(self.cname(op, "bias"), "int32_t", folded),
                      Const(self.cname(op, "rq"), "int32_t", rq.reshape(-1))] + lut_c
                params = [n * oh * ow, ic, oc, ic4, pc[0].name, pc[1].name, pc[2].name,
                          pc[3].name if lut_c else None]
                self.steps.append(Step(op, "pw", "tfk_pw_params", params, "tfk_conv1x1({p}, {in0}, {out})",
                                       [x.index], y.index, pc, macs, 0, note=note + "; pointwise kernel",
                                       overlap=("pw", ic, oc, n * oh * ow)))
                return
        if depthwise and dm == 1 and kh == kw == 3 and dh == dw == 1 and n == 1 and self.fast_layouts:
            wr = wdata.reshape(9, oc)
            bound = np.abs(bias_v) + np.abs(wr).sum(axis=0) * 255
            rq = Q.fast_requant(mult, shift, y.quant.zp, int(bound.max()))
            if rq is not None:
                groups = (oc + 3) // 4
                wpad = np.zeros((9, groups * 4), np.int64)
                wpad[:, :oc] = 2 * wr
                # [group][tap][{c0 c2} {c1 c3}]
                warr = wpad.reshape(9, groups, 4).transpose(1, 0, 2).reshape(-1, 4)
                # per group of 4 channels {2b0, 2b1, 2b2, 2b3, m0, K0, e0, ..., m3, K3, e3}
                b4 = np.zeros(groups * 4, np.int64)
                b4[:oc] = 2 * bias_v
                r4 = np.zeros((groups * 4, 3), np.int64)
                r4[:oc] = rq.reshape(oc, 3)
                q4 = np.concatenate([b4.reshape(groups, 4), r4.reshape(groups, 12)], axis=1)
                pc = [Const(self.cname(op, "w"), "int32_t", _pairs(warr)),
                      Const(self.cname(op, "q"), "int32_t", q4.reshape(-1))] + self._slut(op, lut)
                params = [ih, iw, oc, oh, ow, sh, sw, pad_top, pad_left, -x.quant.zp, pc[0].name,
                          pc[1].name, pc[2].name if len(pc) > 2 else None]
                self.steps.append(Step(op, "dw3", "tfk_dw3_params", params, "tfk_dw3x3({p}, {in0}, {out})",
                                       [x.index], y.index, pc, macs, 0, note=note + "; 3x3 depthwise kernel",
                                       overlap=("conv", ih, iw, ic, oh, ow, oc, sh, sw, pad_top, pad_left, 3)))
                return
        if depthwise and n == 1 and dh == dw == 1 and oh * ow >= DWK_MIN_PIXELS and self.fast_layouts:
            wr = wdata.reshape(kh * kw, oc)
            bound = np.abs(bias_v) + np.abs(wr).sum(axis=0) * 255
            rq = Q.fast_requant(mult, shift, y.quant.zp, int(bound.max()))
            if rq is not None:
                self._dwk(op, x, y, wr, bias_v, rq, params, dm, act_min, act_max, macs, note)
                return
        if not depthwise and n == 1 and dh == dw == 1:
            wr = wdata.reshape(oc, kh, kw * ic)
            folded = bias_v + (-x.quant.zp) * wr.reshape(oc, -1).sum(axis=1)
            bound = np.maximum(np.abs(folded) + np.abs(wr).reshape(oc, -1).sum(axis=1) * 128,
                               np.abs(bias_v) + np.abs(wr).reshape(oc, -1).sum(axis=1) * 255)
            rq = Q.fast_requant(mult, shift, y.quant.zp, int(bound.max()))
            if rq is not None:
                row4 = (kw * ic + 3) // 4 * 4
                wp = np.zeros((oc, kh, row4), np.int64)
                wp[:, :, :kw * ic] = wr
                pc = [Const(self.cname(op, "w"), "int8_t", wp.reshape(-1)),
                      Const(self.cname(op, "bias"), "int32_t", folded),
                      Const(self.cname(op, "bias0"), "int32_t", bias_v),
                      Const(self.cname(op, "rq"), "int32_t", rq.reshape(-1))] + lut_c
                params = [ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pad_top, pad_left, row4, -x.quant.zp,
                          pc[0].name, pc[1].name, pc[2].name, pc[3].name, pc[4].name if lut_c else None]
                self.steps.append(Step(op, "convrow", "tfk_convrow_params", params,
                                       "tfk_conv_rows({p}, {in0}, {out})", [x.index], y.index, pc, macs, 0,
                                       note=note + "; row-contiguous kernel",
                                       overlap=("conv", ih, iw, ic, oh, ow, oc, sh, sw, pad_top, pad_left, kh)))
                return
        if depthwise:
            call, scratch = "tfk_depthwise_conv2d({p}, {in0}, {out})", 0
        else:
            call = "tfk_conv2d({p}, {in0}, {out}, (int16_t *){scratch})"
            scratch = 2 * (kh * kw * ic + 4)  # TFK_CONV_SCRATCH, int16 elements
        self.steps.append(Step(op, "conv", "tfk_conv_params", params, call, [x.index], y.index,
                               consts, macs, scratch, note=note))

    def _dwk(self, op, x, y, wr, bias_v, rq, params, dm, act_min, act_max, macs, note):
        """Depthwise, any kernel / stride / padding / depth multiplier
        (tfk_dwk.c): output channels in groups of 4 lanes, doubled int16
        weight pairs per tap, per group {in_off, out_off, lanes, 2b x 4,
        m K e x 4}. Lanes read input channels in_off + (j, j // 2, 0) for
        mode 1 / 2 / 4 and write output out_off + j * out_stride."""
        _, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, _, _, pad_top, pad_left = params[:15]
        taps = kh * kw
        groups = []  # (in_off, out_off, [output channel per lane])
        if dm == 2:
            mode, ostride = 2, 1
            groups = [(2 * g, 4 * g, list(range(4 * g, min(4 * g + 4, oc)))) for g in range((oc + 3) // 4)]
        elif dm % 4 == 0:
            mode, ostride = 4, 1
            groups = [(4 * g // dm, 4 * g, list(range(4 * g, 4 * g + 4))) for g in range(oc // 4)]
        else:  # depth multiplier 1, or one pass of 4 input channels per multiplier
            mode, ostride = 1, dm
            groups = [(4 * c, 4 * c * dm + m, [(4 * c + j) * dm + m for j in range(min(4, ic - 4 * c))])
                      for m in range(dm) for c in range((ic + 3) // 4)]
        G = len(groups)
        w4 = np.zeros((G, taps, 4), np.int64)
        q = np.zeros((G, 19), np.int64)  # TFK_DWK_Q
        rq = rq.reshape(oc, 3)
        for g, (in_off, out_off, lanes) in enumerate(groups):
            q[g, :3] = in_off, out_off, len(lanes)
            for j, o in enumerate(lanes):
                w4[g, :, j] = 2 * wr[:, o]
                q[g, 3 + j] = 2 * bias_v[o]
                q[g, 7 + 3 * j:10 + 3 * j] = rq[o]
        pc = [Const(self.cname(op, "w"), "int32_t", _pairs(w4.reshape(-1, 4))),
              Const(self.cname(op, "q"), "int32_t", q.reshape(-1))]
        p = [ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pad_top, pad_left, mode, G, ostride, taps,
             -x.quant.zp, act_min, act_max, pc[0].name, pc[1].name]
        self.steps.append(Step(op, "dwk", "tfk_dwk_params", p, "tfk_dwk({p}, {in0}, {out})",
                               [x.index], y.index, pc, macs, 0,
                               note=note + f"; depthwise kernel (mode {mode})"))

    def _grouped_conv(self, op, x, y, wdata, bias_v, params, consts, groups, mult, shift, macs, note):
        """Grouped CONV_2D, more than one input channel per group: 1x1 / stride
        1 / unpadded -> tfk_grouped_conv1x1 (tfk_gconv.c: folded bias, fast
        requantization), anything else -> tfk_conv2d with `groups`."""
        n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pad_top, pad_left = params[:15]
        act_min, act_max = params[19], params[20]
        gi = ic // groups
        note += f" (grouped CONV_2D, {groups} groups of {gi} -> {oc // groups} channels)"
        gi4 = (gi + 3) // 4 * 4
        if (kh == kw == 1 and sh == sw == 1 and pad_top == pad_left == 0 and (ih, iw) == (oh, ow)
                and gi4 <= 256):  # TFK_GPW_MAX_GI4
            wr = wdata.reshape(oc, gi)
            folded = bias_v + (-x.quant.zp) * wr.sum(axis=1)
            bound = np.abs(folded) + np.abs(wr).sum(axis=1) * 128
            rq = Q.fast_requant(mult, shift, y.quant.zp, int(bound.max()))
            if rq is not None:
                wp = np.zeros((oc, gi4), np.int64)
                wp[:, :gi] = wr
                pc = [Const(self.cname(op, "w"), "int8_t", wp.reshape(-1)),
                      Const(self.cname(op, "bias"), "int32_t", folded),
                      Const(self.cname(op, "rq"), "int32_t", rq.reshape(-1))]
                gp = [n * oh * ow, ic, oc, groups, gi, gi4, act_min, act_max] + [c.name for c in pc]
                self.steps.append(Step(op, "gconv", "tfk_gpw_params", gp,
                                       "tfk_grouped_conv1x1({p}, {in0}, {out})", [x.index], y.index, pc,
                                       macs, 0, note=note + "; grouped pointwise kernel",
                                       overlap=("pw", ic, oc, n * oh * ow)))
                return
        self.steps.append(Step(op, "conv", "tfk_conv_params", params,
                               "tfk_conv2d({p}, {in0}, {out}, 0)", [x.index], y.index, consts, macs,
                               note=note + "; reference loop, no staging scratch"))

    def op_conv_2d(self, op):
        self._conv(op, depthwise=False)

    def op_depthwise_conv_2d(self, op):
        self._conv(op, depthwise=True)

    def op_fully_connected(self, op):
        x = self.act(op, op.inputs[0], "input")
        w = self.const(op, op.inputs[1], "weights", "int8")
        y = self.act(op, op.outputs[0], "output")
        if int(op.options.get("weightsFormat", 0) or 0) != 0:
            raise _err(op, "shuffled weights format is not supported")
        if len(w.shape) != 2:
            raise _err(op, f"weights must be 2D, got {w.shape}")
        od, depth = w.shape
        if x.size % depth:
            raise _err(op, f"input {x.shape} is not a multiple of the weights depth {depth}")
        batches = x.size // depth
        wq = w.quant
        if wq is None:
            raise _err(op, f"weights '{w.name}' have no quantization parameters")
        per_channel = wq.per_channel
        if per_channel:
            if np.any(wq.zero_point != 0):
                raise _err(op, "per-channel weights must have zero points of 0")
            pairs = [Q.quantize_multiplier(float(x.quant.s) * float(s) / float(y.quant.s))
                     for s in wq.scale]
        else:
            # GetQuantizedConvolutionMultipler: the product is taken in float32
            prod = float(np.float32(x.quant.s) * np.float32(wq.s))
            pairs = [Q.quantize_multiplier(prod / float(y.quant.s))]
        act_min, act_max = self.activation(op, y)
        consts = [Const(self.cname(op, "w"), "int8_t", w.data.reshape(-1)),
                  Const(self.cname(op, "mult"), "int32_t", np.array([p[0] for p in pairs])),
                  Const(self.cname(op, "shift"), "int32_t", np.array([p[1] for p in pairs]))]
        bias = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = self.const(op, op.inputs[2], "bias", "int32")
            consts.append(Const(self.cname(op, "bias"), "int32_t", b.data.reshape(-1)))
            bias = consts[-1].name
        params = [batches, depth, od, int(per_channel), -x.quant.zp, -wq.zp, y.quant.zp,
                  act_min, act_max, consts[0].name, bias, consts[1].name, consts[2].name]
        self.steps.append(Step(op, "fc", "tfk_fc_params", params,
                               "tfk_fully_connected({p}, {in0}, {out})", [x.index], y.index,
                               consts, batches * depth * od))

    def _broadcast(self, op, a: Tensor, b: Tensor, y: Tensor):
        """None when shapes match, else a tfk_bcast initializer; inputs that may be
        overwritten in place (same shape as the output)."""
        if a.shape == b.shape == y.shape or (a.size == b.size == y.size):
            return None, [a.index, b.index]
        ys = _shape4(y.shape, op, "output")
        strides = []
        for t in (a, b):
            s4 = _shape4(t.shape, op, "input")
            st, acc = [0] * 4, 1
            for d in range(3, -1, -1):
                if s4[d] == ys[d]:
                    st[d] = acc if s4[d] > 1 else 0
                elif s4[d] == 1:
                    st[d] = 0
                else:
                    raise _err(op, f"shapes {a.shape} and {b.shape} do not broadcast to {y.shape}")
                acc *= s4[d]
            strides.append(st)
        inplace = [t.index for t in (a, b) if t.size == y.size]
        return [ys, strides[0], strides[1]], inplace

    def _binary(self, op, kind: str):
        a = self.act(op, op.inputs[0], "input 1")
        b = self.act(op, op.inputs[1], "input 2")
        y = self.act(op, op.outputs[0], "output")
        for t, what in ((a, "input 1"), (b, "input 2")):
            if t.is_const:
                raise _err(op, f"constant {what} is not supported")
        bc, inplace = self._broadcast(op, a, b, y)
        act_min, act_max = self.activation(op, y)
        if kind == "add":
            left_shift = 20
            twice_max = 2 * max(float(a.quant.s), float(b.quant.s))
            am, ash = Q.quantize_multiplier(float(a.quant.s) / twice_max)
            bm, bsh = Q.quantize_multiplier(float(b.quant.s) / twice_max)
            om, osh = Q.quantize_multiplier(twice_max / ((1 << left_shift) * float(y.quant.s)))
            params = [-a.quant.zp, -b.quant.zp, y.quant.zp, left_shift, am, ash, bm, bsh,
                      om, osh, act_min, act_max]
            ptype, fn = "tfk_add_params", "tfk_add"
            # |(q + offset) << 20| <= 255 * 2^20 and the rescaled sum stay < 2^30
            # an input at the larger scale has multiplier exactly 1/2 (m = 2^30, no
            # shift): its rescale is exactly (q + offset) << 19; {0, 0, 0} marks it
            def in_rq(m_, s_):
                if m_ == 1 << 30 and s_ == 0:
                    return np.zeros((1, 3), np.int64)
                return Q.fast_requant([m_], [s_], 0, 255 << 20)
            parts = [in_rq(am, ash), in_rq(bm, bsh), Q.fast_requant([om], [osh], y.quant.zp, 1 << 29)]
            rq = None if any(r is None for r in parts) else np.concatenate(parts)
        else:
            om, osh = Q.quantize_multiplier(float(a.quant.s) * float(b.quant.s) / float(y.quant.s))
            params = [-a.quant.zp, -b.quant.zp, y.quant.zp, om, osh, act_min, act_max]
            ptype, fn = "tfk_mul_params", "tfk_mul"
            rq = Q.fast_requant([om], [osh], y.quant.zp, 255 * 255)
        consts = []
        if rq is not None:
            consts.append(Const(self.cname(op, "rq"), "int32_t", rq.reshape(-1)))
        params.append(consts[0].name if consts else None)
        if bc is None:
            call = f"{fn}({{p}}, 0, {y.size}, {{in0}}, {{in1}}, {{out}})"
        else:
            call = f"{fn}({{p}}, &{self.cname(op, 'bc')}, {y.size}, {{in0}}, {{in1}}, {{out}})"
        self.steps.append(Step(op, "elementwise", ptype, params, call, [a.index, b.index], y.index,
                               consts, inplace=inplace, bcast=bc))

    def op_add(self, op):
        self._binary(op, "add")

    def _minmax(self, op, fn: str):
        """MAXIMUM / MINIMUM: raw int8 comparison (TFLite rescales nothing);
        an input may be a constant (e.g. the bound of a clip)."""
        y = self.act(op, op.outputs[0], "output")
        ts, names, consts = [], [], []
        for k, i in enumerate(op.inputs[:2]):
            t = self.t(i)
            if t.is_const:
                if t.dtype != "int8":
                    raise _err(op, f"constant input {k + 1} is {t.dtype}; expected int8")
                consts.append(Const(self.cname(op, f"c{k}"), "int8_t", t.data.reshape(-1)))
                names.append(consts[-1].name)
            else:
                t = self.act(op, i, f"input {k + 1}")
                names.append(None)
            ts.append(t)
        a, b = ts
        bc, inplace = self._broadcast(op, a, b, y)
        acts = [t.index for t, nm in zip(ts, names) if nm is None]
        slot = iter(range(len(acts)))
        args = [nm if nm is not None else "{in%d}" % next(slot) for nm in names]
        bcp = "0" if bc is None else f"&{self.cname(op, 'bc')}"
        call = f"{fn}({bcp}, {y.size}, {args[0]}, {args[1]}, {{out}})"
        self.steps.append(Step(op, "minmax", None, [], call, acts, y.index, consts,
                               inplace=[i for i in inplace if i in acts], bcast=bc))

    def op_maximum(self, op):
        self._minmax(op, "tfk_maximum")

    def op_minimum(self, op):
        self._minmax(op, "tfk_minimum")

    def op_gather(self, op):
        x_idx, axis, y_idx = op.inputs[0], None, op.outputs[0]
        if op.index in self.fused_gather:
            x_idx, axis, y_idx = self.fused_gather[op.index]
        x, y = self.act(op, x_idx, "input"), self.act(op, y_idx, "output")
        pos = self.const(op, op.inputs[1], "positions")
        if pos.dtype not in ("int32", "int64"):
            raise _err(op, f"positions are {pos.dtype}; expected int32")
        if int(op.options.get("batchDims", 0) or 0) != 0:
            raise _err(op, "batch_dims != 0 is not supported")
        rank = len(x.shape)
        if axis is None:
            axis = int(op.options.get("axis", 0) or 0)
            axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise _err(op, f"axis {axis} is out of range for input {x.shape}")
        idx = np.asarray(pos.data).reshape(-1).astype(np.int64)
        if (idx < 0).any() or (idx >= x.shape[axis]).any():
            raise _err(op, f"positions out of range [0, {x.shape[axis]})")
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
        if outer * idx.size * inner != y.size:
            raise _err(op, f"output {y.shape} does not match gathering {idx.size} of {x.shape}")
        c = Const(self.cname(op, "idx"), "int32_t", idx)
        note = f"{idx.size} of {x.shape[axis]} along axis {axis}"
        if op.index in self.fused_gather:
            note += " (includes the surrounding TRANSPOSEs)"
        self.steps.append(Step(op, "gather", None, [],
                               f"tfk_gather({outer}, {x.shape[axis]}, {inner}, {idx.size}, "
                               f"{c.name}, {{in0}}, {{out}})", [x.index], y.index, [c], note=note))

    def op_transpose(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        perm = [int(v) for v in self.const(op, op.inputs[1], "perm").data.reshape(-1)]
        rank = len(x.shape)
        if rank > 4 or sorted(perm) != list(range(rank)):
            raise _err(op, f"permutation {perm} of a rank-{rank} tensor is not supported")
        pad = 4 - rank
        perm4 = list(range(pad)) + [p + pad for p in perm]
        in4 = _shape4(x.shape, op, "input")
        strides, acc = [0] * 4, 1
        for d in range(3, -1, -1):
            strides[d] = acc
            acc *= in4[d]
        out4 = [in4[p] for p in perm4]
        if out4 != _shape4(y.shape, op, "output"):
            raise _err(op, f"output {y.shape} is not {x.shape} permuted by {perm}")
        params = [out4, [strides[p] for p in perm4]]
        self.steps.append(Step(op, "gather", "tfk_transpose_params", params,
                               "tfk_transpose({p}, {in0}, {out})", [x.index], y.index,
                               note=f"perm {perm}"))

    def op_prelu(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        a = self.const(op, op.inputs[1], "alpha", "int8")
        if a.quant is None or a.quant.per_channel:
            raise _err(op, "alpha must be int8 with one scale and zero point")
        c = x.shape[-1] if x.shape else 1
        if a.size not in (1, c) or any(d != 1 for d in a.shape[:-1]) or x.shape != y.shape:
            raise _err(op, f"alpha {a.shape} must be one value or one per channel of {x.shape}")
        m1, s1 = Q.quantize_multiplier(float(x.quant.s) / float(y.quant.s))
        m2, s2 = Q.quantize_multiplier(float(x.quant.s) * float(a.quant.s) / float(y.quant.s))
        pos = Q.int8_table(lambda q: min(127, max(-128, Q.mbqm(max(q - x.quant.zp, 0), m1, s1) + y.quant.zp)))
        rq2 = Q.fast_requant([m2], [s2], y.quant.zp, 255 * 255)
        consts = [Const(self.cname(op, "alpha"), "int8_t", a.data.reshape(-1)),
                  Const(self.cname(op, "pos"), "int8_t", pos)]
        if rq2 is not None:
            consts.append(Const(self.cname(op, "rq2"), "int32_t", rq2.reshape(-1)))
        params = [x.size // c, c, int(a.size == c and c > 1), -x.quant.zp, -a.quant.zp, y.quant.zp,
                  m2, s2, consts[0].name, consts[1].name, consts[2].name if rq2 is not None else None]
        self.steps.append(Step(op, "prelu", "tfk_prelu_params", params, "tfk_prelu({p}, {in0}, {out})",
                               [x.index], y.index, consts, inplace=[x.index],
                               note="alpha per channel" if params[2] else "one alpha"))

    def op_mul(self, op):
        self._binary(op, "mul")

    def _lut(self, op, table: np.ndarray, x: Tensor, y: Tensor, what: str):
        c = Const(self.cname(op, "lut"), "int8_t", table)
        self.steps.append(Step(op, "elementwise", None, [], f"tfk_lut({c.name}, {y.size}, {{in0}}, {{out}})",
                               [x.index], y.index, [c], inplace=[x.index], note=what))

    def op_hard_swish(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        self._lut(op, Q.hard_swish_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp), x, y,
                  "256-entry table of the reference int8 hard-swish")

    def op_logistic(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        if y.quant.zp != -128 or abs(y.quant.s - 1.0 / 256) > 1e-9:
            raise _err(op, f"int8 LOGISTIC needs output scale 1/256 and zero point -128, got "
                           f"{y.quant.s} / {y.quant.zp}")
        self._lut(op, Q.logistic_lut(x.quant.s, x.quant.zp), x, y,
                  "256-entry table of the reference int8 logistic")

    def op_quantize(self, op):
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.dtype != "int8" or y.dtype != "int8":
            raise _err(op, f"QUANTIZE from {x.dtype} to {y.dtype} is not supported; only int8 -> "
                           "int8 requantization (export with int8 input and output)")
        x, y = self.act(op, x.index, "input"), self.act(op, y.index, "output")
        self._lut(op, Q.requantize_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp), x, y,
                  "requantization table")

    def op_softmax(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        if y.quant.zp != -128 or abs(y.quant.s - 1.0 / 256) > 0.001 / 256:
            raise _err(op, f"int8 SOFTMAX needs output scale 1/256 and zero point -128, got "
                           f"{y.quant.s} / {y.quant.zp}")
        depth = x.shape[-1] if x.shape else 1
        if depth > 256:
            raise _err(op, f"SOFTMAX over {depth} values; at most 256 are supported")
        table = Q.softmax_exp_table(float(op.options.get("beta", 1.0)), x.quant.s)
        c = Const(self.cname(op, "exp"), "int32_t", table)
        self.steps.append(Step(op, "softmax", None, [],
                               f"tfk_softmax({c.name}, {x.size // depth}, {depth}, {{in0}}, {{out}})",
                               [x.index], y.index, [c], note=f"rows of {depth}"))

    def op_mean(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        axes_t = self.const(op, op.inputs[1], "axis")
        rank = len(x.shape)
        axes = sorted({int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axes_t.data).reshape(-1)})
        if not axes or axes[0] < 0 or axes[-1] >= rank:
            raise _err(op, f"invalid axes {axes} for input rank {rank}")
        gaps = [d for d in range(axes[0], axes[-1] + 1) if d not in axes and x.shape[d] != 1]
        if gaps:
            raise _err(op, f"MEAN over non-adjacent axes {axes} of {x.shape} is not supported")
        outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
        reduce = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
        if reduce == 0:
            raise _err(op, "MEAN over an empty axis")
        m, s = Q.quantize_multiplier(float(x.quant.s) / float(y.quant.s))
        # QuantizedMeanOrSum folds 1/n into the multiplier
        shift_n = min(reduce.bit_length() - 1, 32, 31 + s)
        m = (m << shift_n) // reduce
        s -= shift_n
        params = [outer, reduce, inner, x.quant.zp, y.quant.zp, m, s]
        self.steps.append(Step(op, "pool", "tfk_mean_params", params, "tfk_mean({p}, {in0}, {out})",
                               [x.index], y.index, macs=0,
                               note=f"mean of {reduce} values, {outer}x{inner} outputs"))

    def _pool(self, op, fn: str):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
            raise _err(op, "input and output quantization must match for int8 pooling")
        if len(x.shape) != 4:
            raise _err(op, "expects a 4D NHWC input")
        n, ih, iw, c = x.shape
        _, oh, ow, _ = y.shape
        o = op.options
        kh, kw = int(o["filterHeight"]), int(o["filterWidth"])
        sh, sw = int(o.get("strideH", 1)), int(o.get("strideW", 1))
        padding = int(o.get("padding", 0))
        if _out_size(padding, ih, kh, sh, 1) != oh or _out_size(padding, iw, kw, sw, 1) != ow:
            raise _err(op, f"output shape {y.shape} does not match the pooling geometry")
        pt = _pad_before(ih, kh, sh, 1, oh) if padding == 0 else 0
        pl = _pad_before(iw, kw, sw, 1, ow) if padding == 0 else 0
        act_min, act_max = self.activation(op, y)
        params = [n, ih, iw, c, oh, ow, kh, kw, sh, sw, pt, pl, act_min, act_max]
        self.steps.append(Step(op, "pool", "tfk_pool_params", params, fn + "({p}, {in0}, {out})",
                               [x.index], y.index, note=f"{kh}x{kw} stride {sh}x{sw}"))

    def op_average_pool_2d(self, op):
        self._pool(op, "tfk_avg_pool")

    def op_max_pool_2d(self, op):
        self._pool(op, "tfk_max_pool")

    def op_pad(self, op):
        x, y = self.act(op, op.inputs[0], "input"), self.act(op, op.outputs[0], "output")
        if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
            raise _err(op, "input and output quantization must match for PAD")
        pads = self.const(op, op.inputs[1], "paddings").data.reshape(-1, 2).astype(np.int64)
        if (pads < 0).any():
            raise _err(op, "negative padding is not supported")
        in4, out4 = _shape4(x.shape, op, "input"), _shape4(y.shape, op, "output")
        before = [0] * (4 - pads.shape[0]) + [int(p) for p in pads[:, 0]]
        if any(in4[d] + before[d] > out4[d] for d in range(4)):
            raise _err(op, f"paddings do not match {x.shape} -> {y.shape}")
        params = [in4, before, out4, self._pad_value(op)]
        self.steps.append(Step(op, "data", "tfk_pad_params", params, "tfk_pad({p}, {in0}, {out})",
                               [x.index], y.index))

    op_padv2 = op_pad

    def op_concatenation(self, op):
        y = self.act(op, op.outputs[0], "output")
        xs = [self.act(op, i, f"input {k}") for k, i in enumerate(op.inputs)]
        for t in xs:
            if t.quant.s != y.quant.s or t.quant.zp != y.quant.zp:
                raise _err(op, f"input '{t.name}' is quantized differently from the output; "
                               "int8 concatenation needs identical scales and zero points")
            if t.is_const:
                raise _err(op, "constant inputs are not supported")
        axis = int(op.options.get("axis", 0))
        if axis < 0:
            axis += len(y.shape)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        sizes = [int(np.prod(t.shape[axis:], dtype=np.int64)) for t in xs]
        c = Const(self.cname(op, "sizes"), "int32_t", np.array(sizes))
        ins = ", ".join("{in%d}" % k for k in range(len(xs)))
        # placeholders are substituted with str.replace, so braces stay literal
        call = ("{ const int8_t *const ins[] = {" + ins + "}; "
                f"tfk_concat({outer}, {len(xs)}, ins, {c.name}, " + "{out}); }")
        self.steps.append(Step(op, "data", None, [], call, [t.index for t in xs], y.index, [c]))


def lower(model: Model, binary_kernels: bool = True, optimize: str = "speed") -> Lowered:
    """Turn every operator into a kernel call, alias or fusion (or say why not).
    `optimize` "size" trades instructions for flash (int8 weights only)."""
    if optimize not in OPTIMIZE:
        raise UserError(f"optimize must be one of {', '.join(OPTIMIZE)}, not {optimize!r}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                        "outputs; model_invoke() supports exactly one of each")
    for idx, what in ((model.inputs[0], "input"), (model.outputs[0], "output")):
        t = model.tensors[idx]
        if t.dtype != "int8":
            raise UserError(f"model {what} '{t.name}' is {t.dtype}; the compiler needs int8 "
                            "input and output (export a full-integer model)")
    return _Lowering(model, binary_kernels, optimize).run()
