"""On the Cortex-M7 (QEMU mps2-an500, -cpu cortex-m7): the binary conv kernels
(portable and Cortex-M7) equal the numpy reference on random inputs and on
real faces, and the FFT/LBP channel code equals the host computation bit for
bit on real faces. One test firmware (firmware/binary/test/) holds every case
with its expected outputs; it compares on the device and exits 0 only when
all match (tinyfake/models/binary_device.py)."""
import functools
import zlib

import numpy as np
import pytest

from tinyfake.models import binary_device as bd

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(bd.tools_missing()),
                                 reason=f"needs {' and '.join(bd.tools_missing())}")]

# (h, w, c, oc, k, stride): the host test's shapes plus words-per-pixel,
# stride-2, odd-size and 1x1 variety
RANDOM_SHAPES = [(8, 8, 16, 32, 3, 1), (9, 7, 70, 24, 3, 2), (5, 6, 64, 64, 1, 1),
                 (6, 6, 1000, 8, 3, 1), (16, 16, 32, 64, 3, 2), (7, 5, 33, 5, 3, 1),
                 (4, 4, 1, 3, 3, 1), (12, 10, 96, 16, 5, 2),
                 (5, 5, 1100, 4, 3, 1)]  # 35 words per pixel: past the M7 gather buffer


@functools.lru_cache(maxsize=1)
def _cases():
    rng = np.random.default_rng(5)
    cases = [bd.random_conv_case(f"rand{h}x{w}x{c}_o{oc}_k{k}s{s}", rng, h, w, c, oc, k, s)
             for h, w, c, oc, k, s in RANDOM_SHAPES]
    cases += bd.face_conv_cases(n_faces=4, size=64)
    for size, n in ((32, 2), (64, 6), (128, 2)):
        cases += [bd.channels_case(f"face{i}_ch{size}", rgb) for i, rgb in enumerate(bd.real_faces(size, n))]
    return cases


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    cases = _cases()
    elf = bd.build(cases, tmp_path_factory.mktemp("binfw"))
    return cases, bd.run(elf, timeout=300)


def test_cases_are_meaningful():
    """Random and face cases are not saturated, so the device check can see errors."""
    for c in _cases():
        if c.kind == "conv":
            assert len(np.unique(c.arrays["want"])) > 10, c.name
            assert 0 < c.arrays["xbits"].any(-1).mean(), c.name
        else:
            assert len(np.unique(c.arrays["want5"][..., 3])) > 20, c.name  # FFT channel
            assert len(np.unique(c.arrays["want5"][..., 4])) > 20, c.name  # LBP channel


def test_device_equals_host_reference(device):
    cases, res = device
    assert res.passed, "device mismatches:\n" + "\n".join(res.failures() or [res.output[-3000:]])
    assert [(r.case, r.kernel) for r in res.runs] == bd.expected_runs(cases)
    # the UART CRCs are those of the host's expected bytes
    want = {}
    for c in cases:
        if c.kind == "conv":
            want[(c.name, "pack")] = c.arrays["xbits"]
            want[(c.name, "conv")] = want[(c.name, "conv_m7")] = c.arrays["want"]
        else:
            want[(c.name, "channels")] = c.arrays["want5"]
    for r in res.runs:
        crc = int(r.line.rsplit("crc=", 1)[1], 16)
        assert crc == zlib.crc32(np.ascontiguousarray(want[(r.case, r.kernel)]).tobytes()), r.line
    kinds = {c.kind for c in cases}
    assert kinds == {"conv", "channels"} and res.returncode == 0


def test_device_reports_a_mismatch(tmp_path):
    """A wrong expectation fails the firmware: exit code 1 and the case named."""
    rng = np.random.default_rng(0)
    good = bd.random_conv_case("good", rng, 6, 6, 40, 8, 3, 1)
    bad = bd.random_conv_case("bad", rng, 6, 6, 40, 8, 3, 1)
    bad.arrays["want"] = bad.arrays["want"].copy()
    bad.arrays["want"].reshape(-1)[17] ^= 0x10
    ch = bd.channels_case("badch", bd.real_faces(16, 1)[0])
    ch.arrays["want5"] = ch.arrays["want5"].copy()
    ch.arrays["want5"][3, 4, 3] ^= 1  # one FFT byte
    res = bd.run(bd.build([good, bad, ch], tmp_path), timeout=60)
    assert res.returncode == 1 and not res.passed
    status = {(r.case, r.kernel): r.ok for r in res.runs}
    assert status == {("good", "pack"): True, ("good", "conv"): True, ("good", "conv_m7"): True,
                      ("bad", "pack"): True, ("bad", "conv"): False, ("bad", "conv_m7"): False,
                      ("badch", "channels"): False}
    assert "MISMATCH at=17 " in res.failures()[0]
    assert f"MISMATCH at={(3 * 16 + 4) * 5 + 3} " in res.failures()[2]
    assert "DONE runs=7 failed=3" in res.output
