"""Quantization-aware training (QAT) for the int8 export.

Fine-tunes a trained float run while the forward pass sees what the int8
model will compute:

- BatchNorm is folded into the convolution before it (as the exporter does),
  so the weights that are fake-quantized are the weights that get exported.
  The BatchNorm layer stays, as an identity plus the folded bias (mean 0,
  variance 1 - eps, scale 1, frozen), so the module type is unchanged.
- Weights: per-output-channel symmetric int8 fake-quant (scale = max|w|/127),
  like the exporter's per-channel quantization.
- Activations: per-tensor asymmetric int8 fake-quant at every BatchNorm,
  activation, residual add, squeeze-excite product, pooling and head output,
  with ranges tracked as a moving min/max.

Gradients pass straight through the rounding. At the end the fake-quant is
removed and the float model holds weights already on the int8 grid; it then
goes through the same export as post-training quantization (onnx2tf,
calibrated on the same training images), so PTQ and QAT compare on one split.
"""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn.utils import parametrize

from tinyfake.train.loop import fit, save_run, supervised_loss

QAT_DEFAULTS = dict(init="", epochs=5, lr=5e-4, observer_momentum=0.9)


class WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric int8 (-127..127) fake quantization."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        amax = w.detach().abs().amax(dim=tuple(range(1, w.ndim))).clamp(min=1e-8)
        scale = (amax / 127.0).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


class ActFakeQuant:
    """Forward hook: per-tensor asymmetric int8 fake quantization of a module's output."""

    def __init__(self, momentum: float):
        self.momentum, self.lo, self.hi = momentum, None, None
        self.observe = True

    def __call__(self, module, inputs, out):
        if self.observe:
            lo, hi = float(out.detach().min()), float(out.detach().max())
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                m = self.momentum
                self.lo, self.hi = m * self.lo + (1 - m) * lo, m * self.hi + (1 - m) * hi
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)  # zero must be representable
        scale = max(hi - lo, 1e-8) / 255.0
        zero = int(round(-128 - lo / scale))
        return torch.fake_quantize_per_tensor_affine(out, scale, max(-128, min(127, zero)), -128, 127)


def _call_order(model: nn.Module, size: int) -> list[nn.Module]:
    """Leaf modules in the order one forward pass calls them."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in model.modules() if not list(m.children())]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was)
    for h in hooks:
        h.remove()
    return order


@torch.no_grad()
def fold_batchnorm(model: nn.Module, size: int) -> int:
    """Fold every BatchNorm2d into the Conv2d called just before it; the BN
    becomes identity + bias. Returns how many were folded."""
    order = _call_order(model, size)
    n = 0
    for prev, bn in zip(order, order[1:]):
        if not (isinstance(bn, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d)
                and prev.out_channels == bn.num_features):
            continue
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.affine else torch.ones_like(std)
        beta = bn.bias if bn.affine else torch.zeros_like(std)
        prev.weight.mul_((gamma / std).reshape(-1, 1, 1, 1))
        bias = prev.bias if prev.bias is not None else torch.zeros_like(std)
        new_bias = (bias - bn.running_mean) * gamma / std + beta
        if prev.bias is not None:
            prev.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        if bn.affine:
            bn.weight.fill_(1.0)
            bn.weight.requires_grad_(False)
            bn.bias.copy_(new_bias)
        n += 1
    return n


def _activation_points(model: nn.Module) -> list[nn.Module]:
    """Modules whose outputs are int8 tensors in the exported graph (approximately)."""
    kinds = (nn.BatchNorm2d, nn.Hardswish, nn.ReLU, nn.ReLU6, nn.AdaptiveAvgPool2d, nn.Linear, nn.Identity)
    points = [m for m in model.modules() if isinstance(m, kinds)]
    points += [m for m in model.modules() if type(m).__name__ == "ReLUMax"]
    return points


class QATModel:
    """Fake-quant attached to a model in place; `remove()` leaves a plain float model
    whose conv/linear weights are on the int8 grid."""

    def __init__(self, model: nn.Module, size: int, momentum: float = 0.9):
        self.model = model
        fold_batchnorm(model, size)
        self.layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for m in self.layers:
            parametrize.register_parametrization(m, "weight", WeightFakeQuant())
        self.observers, self.hooks = [], []
        for m in _activation_points(model):
            obs = ActFakeQuant(momentum)
            self.observers.append(obs)
            self.hooks.append(m.register_forward_hook(obs))

    def set_observe(self, on: bool) -> None:
        for obs in self.observers:
            obs.observe = on

    def remove(self) -> nn.Module:
        for h in self.hooks:
            h.remove()
        for m in self.layers:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        return self.model


def _qat_train_mode(qat: QATModel):
    def set_mode(model):
        for m in model.modules():  # folded BatchNorm: fixed identity + bias
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        qat.set_observe(True)
    return set_mode


def train_qat(config: dict, run, splits, model: nn.Module, rng, progress=None) -> dict:
    from tinyfake.data.tensors import to_float_nchw

    t = config["train"]
    q = t["qat"]
    size = int(config["data"]["size"])
    start = time.time()
    qat = QATModel(model, size, float(q["observer_momentum"]))
    # Seed the activation ranges on a few training images before training.
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(to_float_nchw(splits.train.x[:64])))
    # Validation runs with frozen ranges (predict() switches to eval, the hooks stay on).
    orig_eval = model.eval

    def eval_frozen():
        qat.set_observe(False)
        return orig_eval()
    model.eval = eval_frozen
    out = fit(model, splits, t, supervised_loss(splits.train.y), epochs=int(q["epochs"]), lr=q["lr"],
              rng=rng, params=[p for p in model.parameters() if p.requires_grad],
              set_train_mode=_qat_train_mode(qat), progress=progress, label="qat: ",
              checkpoint=run.checkpoint)
    del model.eval
    from tinyfake.train.loop import balanced_bce
    from tinyfake.train.supervised import _evaluate
    fake_quant_val = _evaluate(model, splits.val, balanced_bce(splits.train.y))
    qat.remove()
    return save_run(run, config, model, splits, out["history"], out["best_epoch"], start,
                    qat_fake_quant_val=fake_quant_val)
