"""The int8 TFLite form of a binary network (tinyfake.models.binary.BinaryNet).

Stock TFLite Micro runs it as ordinary int8 operators, with the binary
values held in int8; tinyfake's compiler recognises each binary conv in it
and runs it bit-packed (tinyfake.compiler.binary), with the same results.

Every binary conv becomes two operators:
- sign: a 1x1 DEPTHWISE_CONV_2D on the int8 input x (scale s, zero point z)
  with filter 2 (scale 1/s), bias 2z - 2t + 1 and a RELU_N1_TO_1 output of
  scale 1, zero point 0. Its accumulator 2x - 2t + 1 is odd, so the output
  is exactly +1 when x >= t and -1 otherwise: t = ceil(z + threshold / s) is
  the learned RSign threshold in int8 steps;
- conv: CONV_2D with +-1 weights (sign of the latent weight, times the sign
  of the folded scale a = scale * gamma / sigma), per-channel scale |a| and
  bias round(b / |a|) with b the folded BatchNorm offset: its accumulator is
  the +-1 dot product plus that bias, requantized per channel.
A k x k conv reads the sign through a PAD of k // 2 pixels (value 0, the
+-1 tensor's zero point: padding adds nothing), so PyTorch's symmetric
padding is kept at stride 2.

Shortcuts are AVERAGE_POOL_2D and CONCATENATION (channels doubled), the
block additions ADD, the activations PRELU; the head is MEAN + FULLY_CONNECTED.
Activation ranges come from the float model on calibration images (min/max).

`twin=True` writes the int8 network of the same architecture instead: no
sign ops, the latent real weights quantized to int8 per channel. It is not
a trained detector; it gives the cost of the same shapes in int8 (flash,
arena, instructions) to compare the binary kernels against.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tinyfake.compiler.binary import BinaryConvLayer, pack_weights
from tinyfake.compiler.modelbuilder import T, build
from tinyfake.models.binary import BinaryBlock, BinaryNet

INPUT_SCALE, INPUT_ZP = 1.0 / 255.0, -128
SAME, VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1 = 0, 1, 2


def range_quant(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) covering [lo, hi] and 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def _sym_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (axis 0) symmetric int8 weights and scales."""
    m = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    scale = np.where(m > 0, m / 127.0, 1e-8)
    q = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127)
    return q.astype(np.int8), scale


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as y = g * x + b."""
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    b = bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * g
    return g, b


class _Trace:
    """The float forward pass, keeping every tensor the int8 form quantizes."""

    def __init__(self, net: BinaryNet, adapter: nn.Conv2d | None):
        self.net, self.adapter = net, adapter
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}

    def see(self, name: str, t: torch.Tensor) -> torch.Tensor:
        lo, hi = float(t.min()), float(t.max())
        self.lo[name] = min(lo, self.lo.get(name, lo))
        self.hi[name] = max(hi, self.hi.get(name, hi))
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.adapter is not None:
            x = self.see("adapter", self.adapter(x))
        h = self.see("stem", self.net.stem(x))
        for i, b in enumerate(self.net.blocks):
            c3 = self.see(f"b{i}.c3", b.bn3(b.conv3(h)))
            y = self.see(f"b{i}.y", b.act3(self.see(f"b{i}.a3", c3 + b.shortcut(h))))
            c1 = self.see(f"b{i}.c1", b.bn1(b.conv1(y)))
            h = self.see(f"b{i}.z", b.act1(self.see(f"b{i}.a1", c1 + y)))
        g = self.see("gap", torch.flatten(self.net.pool(h), 1))
        return self.see("logit", self.net.fc(g))

    def quant(self, name: str) -> tuple[float, int]:
        return range_quant(self.lo[name], self.hi[name])


def binary_parts(model: nn.Module) -> tuple[BinaryNet, nn.Conv2d | None]:
    """(the BinaryNet, the FFT/LBP input adapter conv or None) of a trained model."""
    if isinstance(model, BinaryNet):
        return model, None
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, BinaryNet):
        return backbone, model.adapter
    raise TypeError(f"{type(model).__name__} is not a binary network")


def is_binary(model: nn.Module) -> bool:
    try:
        binary_parts(model)
        return True
    except TypeError:
        return False


class _Graph:
    """Tensors and operators of the flatbuffer being written."""

    def __init__(self):
        self.tensors: list[T] = []
        self.ops: list = []

    def tensor(self, shape, scale=None, zp=0, dtype="int8", data=None, axis=0) -> int:
        self.tensors.append(T(tuple(int(d) for d in shape), dtype, scale, zp, axis, data))
        return len(self.tensors) - 1

    def act(self, shape, q: tuple[float, int]) -> int:
        return self.tensor(shape, q[0], q[1])

    def op(self, name: str, ins: list[int], out: int, **options) -> int:
        self.ops.append((name, ins, [out], options))
        return out

    def shape(self, t: int) -> tuple:
        return self.tensors[t].shape

    def q(self, t: int) -> tuple[float, int]:
        return self.tensors[t].scale, self.tensors[t].zp

    def pad(self, x: int, p: int) -> int:
        """PAD p pixels on every side with the zero point (real 0), as PyTorch pads."""
        n, h, w, c = self.shape(x)
        pads = self.tensor((4, 2), dtype="int32", data=np.array([[0, 0], [p, p], [p, p], [0, 0]], np.int32))
        return self.op("PAD", [x, pads], self.act((n, h + 2 * p, w + 2 * p, c), self.q(x)))

    def conv(self, x: int, wq: np.ndarray, wscale: np.ndarray, bias: np.ndarray, stride: int,
             out_q: tuple[float, int], act: int = ACT_NONE) -> int:
        """CONV_2D, VALID; wq int8 (O, KH, KW, I) with per-channel scales; bias int32."""
        n, h, w, _ = self.shape(x)
        o, k = wq.shape[0], wq.shape[1]
        oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
        s_in = self.q(x)[0]
        wt = self.tensor(wq.shape, wscale.astype(np.float32), 0, data=wq, axis=0)
        bt = self.tensor((o,), (s_in * wscale).astype(np.float32), 0, "int32", bias.astype(np.int32))
        return self.op("CONV_2D", [x, wt, bt], self.act((n, oh, ow, o), out_q), padding=VALID,
                       strideW=stride, strideH=stride, dilationWFactor=1, dilationHFactor=1,
                       fusedActivationFunction=act)


    def binary_conv(self, x: int, th: np.ndarray, w_sign: np.ndarray, wscale: np.ndarray,
                    bias: np.ndarray, stride: int, out_q: tuple[float, int]) -> int:
        """sign(x >= th) then CONV_2D with +-1 weights w_sign (O, K, K, C), per
        channel scales and int32 bias (module docstring); a k x k conv pads by k // 2."""
        n, h, w, c = self.shape(x)
        s, z = self.q(x)
        two = self.tensor((1, 1, 1, c), np.full(c, 1.0 / s, np.float32), 0,
                          data=np.full((1, 1, 1, c), 2, np.int8), axis=3)
        sb = self.tensor((c,), np.ones(c, np.float32), 0, "int32", (2 * z - 2 * th + 1).astype(np.int32))
        signs = self.op("DEPTHWISE_CONV_2D", [x, two, sb], self.act((n, h, w, c), (1.0, 0)),
                        padding=VALID, strideW=1, strideH=1, depthMultiplier=1, dilationWFactor=1,
                        dilationHFactor=1, fusedActivationFunction=ACT_RELU_N1_TO_1)
        if w_sign.shape[1] > 1:
            signs = self.pad(signs, w_sign.shape[1] // 2)
        return self.conv(signs, np.asarray(w_sign, np.int8), np.asarray(wscale, np.float64),
                         np.asarray(bias), stride, out_q)


def binary_layer_tflite(in_shape: tuple[int, int, int], in_q: tuple[float, int], th: np.ndarray,
                        w_sign: np.ndarray, wscale: np.ndarray, bias: np.ndarray, stride: int,
                        out_q: tuple[float, int]) -> tuple[bytes, BinaryConvLayer]:
    """A one-layer model (sign, PAD, +-1 CONV_2D) and the integer layer the
    device computes for it (tinyfake.compiler.binary.binary_conv_ref)."""
    from tinyfake.compiler.quant import quantize_multiplier

    g = _Graph()
    x = g.act((1, *in_shape), in_q)
    y = g.binary_conv(x, th, w_sign, wscale, bias, stride, out_q)
    k = w_sign.shape[1]
    mult, shift = zip(*(quantize_multiplier(float(np.float32(1.0)) * float(np.float32(s)) / float(np.float32(out_q[0])))
                        for s in wscale))
    layer = BinaryConvLayer(np.asarray(th, np.int16), pack_weights(w_sign), np.asarray(bias, np.int32),
                            np.array(mult, np.int32), np.array(shift, np.int32), int(out_q[1]),
                            stride=stride, pad_top=k // 2, pad_left=k // 2)
    return build(g.ops, g.tensors, [x], [y]), layer


def _float_conv(g: _Graph, x: int, w: np.ndarray, b: np.ndarray, stride: int,
                out_q: tuple[float, int], act: int = ACT_NONE) -> int:
    """An ordinary int8 conv of real weights w (O, I, KH, KW) and bias b."""
    if w.shape[-1] > 1:
        x = g.pad(x, w.shape[-1] // 2)
    wq, ws = _sym_per_channel(np.transpose(w, (0, 2, 3, 1)))
    bias = np.round(b / (g.q(x)[0] * ws))
    return g.conv(x, wq, ws, bias, stride, out_q, act)


def binary_layer_params(conv, bn: nn.BatchNorm2d, in_q: tuple[float, int]) -> dict:
    """The int8-form parameters of a trained BinaryConv2d + BatchNorm reading
    an int8 input quantized as in_q: thresholds th, +-1 weights w_sign
    (O, K, K, C), per-channel weight scales and int32 bias (module docstring)."""
    gain, off = _bn_affine(bn)
    a = conv.scale.detach().double().numpy() * gain          # y = a * (+-1 dot) + off
    w = conv.weight.detach().double().numpy()                 # (O, I, K, K) latent
    s, z = in_q
    th = np.clip(np.ceil(z + conv.threshold.detach().double().numpy() / s), -128, 128)
    sign_w = np.where(w >= 0, 1, -1) * np.where(a >= 0, 1, -1).reshape(-1, 1, 1, 1)
    mag = np.maximum(np.abs(a), 1e-12)
    return dict(th=th.astype(np.int64), w_sign=np.transpose(sign_w, (0, 2, 3, 1)), wscale=mag,
                bias=np.round(off / mag), stride=int(conv.stride[0]))


def _binary_conv(g: _Graph, x: int, conv, bn: nn.BatchNorm2d, out_q: tuple[float, int],
                 twin: bool) -> int:
    """sign + CONV_2D with +-1 weights (or, twin, the int8 conv of the latent weights)."""
    if twin:
        gain, off = _bn_affine(bn)
        a = conv.scale.detach().double().numpy() * gain
        w = conv.weight.detach().double().numpy() * a.reshape(-1, 1, 1, 1)
        return _float_conv(g, x, w, off, int(conv.stride[0]), out_q)
    return g.binary_conv(x, out_q=out_q, **binary_layer_params(conv, bn, g.q(x)))


def _prelu(g: _Graph, x: int, prelu: nn.PReLU, out_q: tuple[float, int]) -> int:
    alpha = prelu.weight.detach().double().numpy().reshape(-1)
    aq = range_quant(alpha.min(), alpha.max())
    data = np.clip(np.round(alpha / aq[0]) + aq[1], -128, 127).astype(np.int8).reshape(1, 1, -1)
    at = g.tensor(data.shape, aq[0], aq[1], data=data)
    return g.op("PRELU", [x, at], g.act(g.shape(x), out_q))


def _block(g: _Graph, x: int, i: int, b: BinaryBlock, tr: _Trace, twin: bool) -> int:
    c3 = _binary_conv(g, x, b.conv3, b.bn3, tr.quant(f"b{i}.c3"), twin)
    sc = x
    if isinstance(b.pool, nn.AvgPool2d):
        n, h, w, c = g.shape(x)
        sc = g.op("AVERAGE_POOL_2D", [x], g.act((n, h // 2, w // 2, c), g.q(x)), padding=VALID,
                  strideW=2, strideH=2, filterWidth=2, filterHeight=2, fusedActivationFunction=ACT_NONE)
    if b.repeat > 1:
        n, h, w, c = g.shape(sc)
        sc = g.op("CONCATENATION", [sc] * b.repeat, g.act((n, h, w, c * b.repeat), g.q(sc)), axis=3,
                  fusedActivationFunction=ACT_NONE)
    a3 = g.op("ADD", [c3, sc], g.act(g.shape(c3), tr.quant(f"b{i}.a3")), fusedActivationFunction=ACT_NONE)
    y = _prelu(g, a3, b.act3, tr.quant(f"b{i}.y"))
    c1 = _binary_conv(g, y, b.conv1, b.bn1, tr.quant(f"b{i}.c1"), twin)
    a1 = g.op("ADD", [c1, y], g.act(g.shape(c1), tr.quant(f"b{i}.a1")), fusedActivationFunction=ACT_NONE)
    return _prelu(g, a1, b.act1, tr.quant(f"b{i}.z"))


@torch.no_grad()
def binary_tflite(model: nn.Module, calib: np.ndarray, twin: bool = False) -> bytes:
    """The int8 .tflite of a trained binary network; calib: float NHWC
    images in [0, 1] as the exported model takes them (5 channels for an
    FFT/LBP model)."""
    net, adapter = binary_parts(model)
    model.eval()
    tr = _Trace(net, adapter)
    x = torch.from_numpy(np.ascontiguousarray(calib, np.float32)).permute(0, 3, 1, 2)
    for start in range(0, len(x), 64):
        tr.forward(x[start:start + 64])
    g = _Graph()
    _, size, _, cin = calib.shape
    h = inp = g.act((1, size, size, cin), (INPUT_SCALE, INPUT_ZP))
    if adapter is not None:
        h = _float_conv(g, h, adapter.weight.detach().double().numpy(),
                        adapter.bias.detach().double().numpy(), 1, tr.quant("adapter"))
    conv, bn = net.stem[0], net.stem[1]
    gain, off = _bn_affine(bn)
    w = conv.weight.detach().double().numpy() * gain.reshape(-1, 1, 1, 1)
    h = _float_conv(g, h, w, off, int(conv.stride[0]), tr.quant("stem"), ACT_RELU)
    for i, b in enumerate(net.blocks):
        h = _block(g, h, i, b, tr, twin)
    axes = g.tensor((2,), dtype="int32", data=np.array([1, 2], np.int32))
    c = g.shape(h)[-1]
    gap = g.op("MEAN", [h, axes], g.act((1, c), tr.quant("gap")), keepDims=False)
    fw = net.fc.weight.detach().double().numpy()               # (1, C)
    ws = max(float(np.abs(fw).max()) / 127.0, 1e-8)
    wt = g.tensor(fw.shape, ws, 0, data=np.clip(np.round(fw / ws), -127, 127).astype(np.int8))
    s_g = g.q(gap)[0]
    bt = g.tensor((1,), s_g * ws, 0, "int32",
                  np.round(net.fc.bias.detach().double().numpy() / (s_g * ws)).astype(np.int32))
    out = g.op("FULLY_CONNECTED", [gap, wt, bt], g.act((1, 1), tr.quant("logit")),
               fusedActivationFunction=ACT_NONE, keepNumDims=False)
    return build(g.ops, g.tensors, [inp], [out])


def trace_matches(model: nn.Module, x: torch.Tensor) -> float:
    """Largest |difference| between the model and the exporter's own float
    trace of it (the trace must be the same function)."""
    net, adapter = binary_parts(model)
    model.eval()
    with torch.no_grad():
        want = net(adapter(x)) if adapter is not None else net(x)
        return float((_Trace(net, adapter).forward(x) - want).abs().max())

