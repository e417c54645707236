"""tinyfake.models: PhiNet with a one-logit head, MAC and parameter counts."""
import pytest
import torch
from torch import nn

from tinyfake.errors import UserError
from tinyfake.models import MODELS, build_model, count_macs_params


def tiny_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),                       # 8*10*10 outputs x 27
        nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),   # depthwise: 8*5*5 x 9
        nn.Conv2d(8, 4, 1, bias=False),                      # pointwise: 4*5*5 x 8
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2),                                     # 2 x 4
    )


def test_mac_counter_matches_hand_count():
    macs, params = count_macs_params(tiny_net(), (3, 10, 10))
    assert macs == 800 * 27 + 200 * 9 + 100 * 8 + 2 * 4
    assert params == (3 * 8 * 9 + 8) + 16 + (8 * 9 + 8) + 32 + (4 * 2 + 2)


def test_mac_counter_is_per_sample_and_keeps_mode():
    net = tiny_net().train()
    assert count_macs_params(net, (4, 3, 10, 10)) == count_macs_params(net, (3, 10, 10))
    assert net.training


@pytest.mark.parametrize("size", [64, 96])
def test_phinet_outputs_one_logit(size):
    model = build_model("phinet", size)
    out = model(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1)
    macs, params = count_macs_params(model, (3, size, size))
    assert 20_000 < params < 40_000
    if size == 96:  # the bench's phinet96 has about 2.4 M MACs
        assert 2.2e6 < macs < 2.6e6


def test_phinet_options_and_standard_layers():
    small = build_model("phinet", 64)
    big = build_model("phinet", 64, alpha=0.5)
    plain = build_model("phinet", 64, squeeze_excite=False, h_swish=False)
    assert count_macs_params(big, (3, 64, 64))[0] > 2 * count_macs_params(small, (3, 64, 64))[0]
    kinds = {type(m).__name__ for m in plain.modules()}
    assert "Hardswish" not in kinds and "SEBlock" not in kinds
    assert isinstance(small.fc, nn.Linear) and small.fc.out_features == 1
    assert all(m.momentum == 0.1 for m in small.modules() if isinstance(m, nn.BatchNorm2d))


def test_registry_and_errors():
    assert "phinet" in MODELS
    with pytest.raises(UserError, match="unknown model"):
        build_model("resnet", 64)
    with pytest.raises(UserError, match="no option"):
        build_model("phinet", 64, gamma=1)
    with pytest.raises(UserError, match="too small"):
        build_model("phinet", 16)


def test_models_command_json(capsys):
    """`tinyfake models --json`: every architecture, with the counts the library gives."""
    import json

    from tinyfake.cli import main
    assert main(["models", "--size", "32", "--board", "stm32h743", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["size"] == 32 and [r["arch"] for r in doc["models"]] == list(MODELS)
    row = next(r for r in doc["models"] if r["arch"] == "phinet")
    assert (row["macs"], row["params"]) == count_macs_params(build_model("phinet", 32), (3, 32, 32))
    assert row["fits"] == {"stm32h743": True} and row["arena_bytes"] >= 32 * 32 * 3
