"""RGB + FFT magnitude + LBP input for any architecture ("Faster Than Lies").

`ChannelInput(backbone)` feeds a model five channels instead of three: the
face's R, G, B, the log-magnitude spectrum and the local binary pattern of
its grey image (the exact integer form of tinyfake.data.channels, which the
firmware computes bit for bit from the RGB face it receives). A learned 1x1
convolution with bias (5 -> 3, initialised to pass RGB through) maps them to
the three channels the backbone was built for.

- `forward(x)`: x float RGB NCHW in [0, 1] like every model's input; the two
  extra channels come from round(x * 255) as uint8 (no gradient through them).
- `forward_channels(x5)`: the precomputed five channels, float NCHW in
  [0, 1] (uint8 / 255) -- the form that is exported (`export_form`).
"""
from __future__ import annotations

import torch
from torch import nn


class ChannelInput(nn.Module):
    """adapter (1x1 conv 5 -> 3, RGB pass-through init) -> backbone."""

    input_channels = 5

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.adapter = nn.Conv2d(5, 3, 1, bias=True)
        with torch.no_grad():  # start as "RGB passes through"
            self.adapter.weight.zero_()
            self.adapter.bias.zero_()
            for c in range(3):
                self.adapter.weight[c, c] = 1.0
        self.backbone = backbone

    @staticmethod
    def extra(x: torch.Tensor) -> torch.Tensor:
        """float RGB NCHW in [0, 1] -> float (N, 2, H, W) in [0, 1]: FFT, LBP of round(x * 255)."""
        from tinyfake.data.channels import extra_channels

        with torch.no_grad():
            u8 = (x.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
            e = extra_channels(u8.permute(0, 2, 3, 1).numpy())  # (N, H, W, 2) uint8
            e = torch.from_numpy(e).permute(0, 3, 1, 2).to(x.dtype) / 255.0
        return e.to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_channels(torch.cat([x, self.extra(x)], 1))

    def forward_channels(self, x5: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.adapter(x5))

    def export_form(self) -> nn.Module:
        """The module that is exported: five-channel input, the backbone's own
        export form when it has one (MicroNet)."""
        backbone = self.backbone.export_form() if hasattr(self.backbone, "export_form") else self.backbone
        return _ChannelExport(self.adapter, backbone).train(self.training)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Runs saved before the wrapper existed: BinaryNet(channels="rgb+fft+lbp")
        # kept the 1x1 as `adapter.conv` and its layers at the top level.
        if f"{prefix}adapter.conv.weight" in state_dict:
            for key in [k for k in state_dict if k.startswith(prefix)]:
                rest = key[len(prefix):]
                new = (f"{prefix}adapter.{rest[len('adapter.conv.'):]}" if rest.startswith("adapter.conv.")
                       else f"{prefix}backbone.{rest}")
                state_dict[new] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class _ChannelExport(nn.Module):
    input_channels = 5

    def __init__(self, adapter: nn.Module, backbone: nn.Module):
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone

    def forward(self, x5):
        return self.backbone(self.adapter(x5))


def input_channels(model: nn.Module) -> int:
    """Channels of the model's exported input (3, or 5 for a ChannelInput)."""
    return int(getattr(model, "input_channels", 3))
