"""MicroNet M0-M3: published parameter/MAC counts, blocks, detector form."""
import pytest
import torch

from tinyfake.models import build_model, count_macs_params
from tinyfake.models.micronet import (CONFIGS, ChannelShuffle, DynamicShiftMax, MicroNet,
                                      shift_index)

# paper (Li et al., ICCV 2021, Table 5): params, MAdds at 224x224, 1000 classes
PAPER = {"m0": (1.0e6, 4e6), "m1": (1.8e6, 6e6), "m2": (2.4e6, 12e6), "m3": (2.6e6, 21e6)}


@pytest.mark.parametrize("variant", sorted(PAPER))
def test_counts_match_paper(variant):
    params_paper, macs_paper = PAPER[variant]
    macs, params = count_macs_params(MicroNet(224, variant, num_classes=1000), (3, 224, 224))
    assert abs(params / params_paper - 1) < 0.10, params
    assert abs(macs / macs_paper - 1) < 0.10, macs


def test_channel_shuffle_and_shift():
    x = torch.arange(12.).view(1, 12, 1, 1)
    want = x.view(1, 3, 4, 1, 1).transpose(1, 2).reshape(1, 12, 1, 1)
    assert torch.equal(ChannelShuffle(3)(x), want)
    # channel (group g, member c) reads ((g+1) % G, (c+1) % C/G)
    assert shift_index(6, 2).tolist() == [4, 5, 3, 1, 2, 0]


def test_dynamic_shift_max_is_shift_mixture():
    dsm = DynamicShiftMax(8, 4, 2, branches=2, init_a=(1.0, 1.0), init_b=(0.0, 0.0))
    with torch.no_grad():  # coefficients = init exactly: h-sigmoid(0) = 0.5
        dsm.fc2.weight.zero_()
        dsm.fc2.bias.zero_()
    x = torch.randn(2, 8, 3, 3)
    assert torch.allclose(dsm(x), x)
    with torch.no_grad():
        dsm.fc2.bias[8:16] = 1.5  # b1 = (h(1.5)-0.5)*4 = (0.75-0.5)*4 = 1.0
    assert torch.allclose(dsm(x), torch.maximum(x + x[:, dsm.index], x))
    assert dsm.macs(x, dsm(x)) == 4 * 8 * 9


@pytest.mark.parametrize("variant", sorted(PAPER))
def test_detector_form(variant):
    model = build_model(f"micronet-{variant}", 64)
    model.eval()
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1)
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == 1
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"DynamicShiftMax", "ChannelShuffle", "MicroBlock"} <= kinds
    block_a = model.blocks[0].layers
    convs = [m for m in block_a if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs[:2]] == [(CONFIGS[variant]["rows"][0].k, 1),
                                                  (1, CONFIGS[variant]["rows"][0].k)]
    assert convs[-1].groups == CONFIGS[variant]["rows"][0].g3  # grouped pointwise


def test_micronet_trains_a_step():
    torch.manual_seed(0)
    model = build_model("micronet-m0", 64)
    x, y = torch.rand(4, 3, 64, 64), torch.tensor([[0.], [1.], [0.], [1.]])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
