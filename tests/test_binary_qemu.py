"""On the Cortex-M7 (QEMU mps2-an500, -cpu cortex-m7): binary layers compiled
by tinyfake (bit-packed XNOR-popcount kernels, Cortex-M7 form) equal the
numpy reference on random inputs and on real faces, a whole compiled binary
network equals TFLite Micro, and the FFT/LBP channel code equals the host
computation bit for bit on real faces. One test firmware
(firmware/binary/test/) holds every case with its expected outputs; it
compares on the device and exits 0 only when all match
(tinyfake/models/binary_device.py)."""
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
                 (5, 5, 1100, 4, 3, 1)]  # 35 words per pixel: popcount runs past 30 words


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("binfw_cases")
    rng = np.random.default_rng(5)
    cases = [bd.random_layer_case(f"rand{h}x{w}x{c}_o{oc}_k{k}s{s}", tmp / f"r{i}", rng, h, w, c, oc, k, s)
             for i, (h, w, c, oc, k, s) in enumerate(RANDOM_SHAPES)]
    cases += bd.face_layer_cases(tmp / "faces", n_faces=4, size=64)
    cases += bd.network_cases(tmp / "net", n_faces=3, size=32)
    for size, n in ((32, 2), (64, 6), (128, 2)):
        cases += [bd.channels_case(f"face{i}_ch{size}", rgb) for i, rgb in enumerate(bd.real_faces(size, n))]
    return cases


@pytest.fixture(scope="module")
def device(cases, tmp_path_factory):
    elf = bd.build(cases, tmp_path_factory.mktemp("binfw"))
    return bd.run(elf, timeout=300)


def test_cases_are_meaningful(cases):
    """Layer and channel cases are not saturated, so the device check can see errors."""
    for c in cases:
        if c.kind == "int8" and "net" not in c.name:
            assert len(np.unique(c.arrays["want"])) > 10, c.name
        elif c.kind == "channels":
            assert len(np.unique(c.arrays["want5"][..., 3])) > 20, c.name  # FFT channel
            assert len(np.unique(c.arrays["want5"][..., 4])) > 20, c.name  # LBP channel


def test_device_equals_host_reference(cases, device):
    res = device
    assert res.passed, "device mismatches:\n" + "\n".join(res.failures() or [res.output[-3000:]])
    assert [(r.case, r.kernel) for r in res.runs] == bd.expected_runs(cases)
    # the UART CRCs are those of the host's expected bytes
    want = {(c.name, c.kernels()[0]): c.arrays["want" if c.kind == "int8" else "want5"] for c in cases}
    for r in res.runs:
        crc = int(r.line.rsplit("crc=", 1)[1], 16)
        assert crc == zlib.crc32(np.ascontiguousarray(want[(r.case, r.kernel)]).tobytes()), r.line
    assert {c.kind for c in cases} == {"int8", "channels"} and res.returncode == 0


def test_device_reports_a_mismatch(tmp_path):
    """A wrong expectation fails the firmware: exit code 1 and the case named."""
    rng = np.random.default_rng(0)
    good = bd.random_layer_case("good", tmp_path / "good", rng, 6, 6, 40, 8, 3, 1)
    bad = bd.random_layer_case("bad", tmp_path / "bad", rng, 6, 6, 40, 8, 3, 1)
    bad.arrays["want"] = bad.arrays["want"].copy()
    bad.arrays["want"].reshape(-1)[17] ^= 0x10
    ch = bd.channels_case("badch", bd.real_faces(16, 1)[0])
    ch.arrays["want5"] = ch.arrays["want5"].copy()
    ch.arrays["want5"][3, 4, 3] ^= 1  # one FFT byte
    res = bd.run(bd.build([good, bad, ch], tmp_path / "fw"), timeout=60)
    assert res.returncode == 1 and not res.passed
    status = {(r.case, r.kernel): r.ok for r in res.runs}
    assert status == {("good", "int8"): True, ("bad", "int8"): False, ("badch", "channels"): False}
    assert "MISMATCH at=17 " in res.failures()[0]
    assert f"MISMATCH at={(3 * 16 + 4) * 5 + 3} " in res.failures()[1]
    assert "DONE runs=3 failed=2" in res.output
