"""Fault injection between the host harness and QEMU: a proxy drops,
duplicates and corrupts bytes, injects garbage, resets the board mid-
transfer or blacks out the link. Every case must end in the correct output
or one clear error, never a wrong number."""
import os
import time

import numpy as np
import pytest
from fixtures.faultproxy import FaultProxy
from fixtures.firmware_helpers import build_fixture
from fixtures.tiny_model import reference

from tinyfake.errors import UserError
from tinyfake.harness.protocol import Device
from tinyfake.harness.qemu import QemuSim

pytestmark = pytest.mark.slow
N_IMAGES = 6


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def _inputs(n, seed=1):
    return np.random.default_rng(seed).integers(-128, 128, (n, 16, 16, 3)).astype(np.int8)


def _run_through(build, proxy_kw, n=N_IMAGES, before=None):
    """Infer n images through a damaging proxy; return (device stats, proxy)."""
    with QemuSim(build.sim_elf, build.board) as sim:
        proxy = FaultProxy(sim.port, **proxy_kw)
        try:
            with Device(proxy.url, timeout=0.5, retries=10, instructions=sim.instructions,
                        expected_hash=build.model.hash) as dev:
                dev.hello()
                if before:
                    before(sim, proxy, dev)
                for x in _inputs(n):
                    r = dev.infer(x)
                    # The one thing that must never happen: a wrong number.
                    assert r.output.tolist() == reference(x).tolist()
                return dev.stats, proxy
        finally:
            proxy.close()


@pytest.mark.parametrize("fault", ["drop", "dup", "corrupt"])
def test_damaged_bytes_both_ways(build, fault):
    stats, proxy = _run_through(build, {fault: 0.001, "seed": 3})
    assert proxy.injected[fault] > 0
    assert stats.resent + stats.bad_lines + stats.nacks > 0  # noticed and recovered


def test_everything_at_once(build):
    stats, proxy = _run_through(build, {"drop": 0.001, "dup": 0.001, "corrupt": 0.001, "seed": 11})
    assert sum(proxy.injected.values()) > 3 and stats.resent > 0


def test_garbage_resync(build):
    def garbage(sim, proxy, dev):
        noise = bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8))
        proxy.inject(noise, to_device=True)
        proxy.inject(noise + b"\n0 OK out=00*00000000\n", to_device=False)  # fake replies too
        time.sleep(0.2)
    _run_through(build, {}, before=garbage)


def test_reset_mid_transfer(build):
    def arm_reset(sim, proxy, dev):
        # Reset the board while the second image is being loaded.
        proxy.after_bytes_to_device(2 * 1100 + 400, lambda: sim.monitor("system_reset"))
    stats, _ = _run_through(build, {}, before=arm_reset)
    assert stats.resets >= 1


def test_dead_link_gives_one_clear_error(build):
    with QemuSim(build.sim_elf, build.board) as sim:
        proxy = FaultProxy(sim.port, to_host=False)
        try:
            with Device(proxy.url, timeout=0.3, retries=2) as dev:
                dev.hello()
                proxy.drop = 1.0  # the cable is pulled
                t0 = time.monotonic()
                with pytest.raises(UserError) as exc:
                    dev.infer(_inputs(1)[0])
                assert time.monotonic() - t0 < 10
                msg = str(exc.value)
                assert "no valid reply from the device on socket://" in msg and "\n" not in msg
        finally:
            proxy.close()


def test_missing_port_is_one_clear_error():
    with pytest.raises(UserError, match="cannot open serial port /dev/ttyNOPE"):
        Device("/dev/ttyNOPE")
    assert not os.path.exists("/dev/ttyNOPE")
