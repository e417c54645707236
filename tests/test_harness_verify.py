"""`verify` end to end in QEMU on a real (tiny) compiled model and the
embedded data's test split: device outputs identical to TFLite Micro's,
report.json / report.md with memory, MACs, instructions and accuracy."""
import json

import pytest
from fixtures.firmware_helpers import build_fixture, tiny_run

from tinyfake.cli import main
from tinyfake.errors import UserError
from tinyfake.harness.qemu import QemuSim
from tinyfake.harness.verify import verify_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("runs") / "tiny")


def test_verify_in_simulation_writes_the_report(run, capsys):
    assert main(["verify", "--board", "stm32h743", "--simulate", "--run", str(run.root)]) == 0
    out = capsys.readouterr().out
    assert "device == host int8 (TFLite Micro) on 30/30 test images" in out
    report = json.loads(run.report_json.read_text())
    v = report["verification"]
    assert v["n"] == 30 and v["identical"] == 30 and v["selftest"] == "ok"
    lat = report["latency"]
    assert lat["repeatable"] and lat["instructions"]["min"] > 1000
    assert "estimate" in lat["ms_estimate_note"]
    assert report["flash"]["regions"]["FLASH"]["used"] == report["flash"]["total"] > 0
    dtcm = report["ram"]["regions"]["DTCM"]
    assert dtcm["parts"]["stack"] == 16384 and 0 < report["ram"]["stack_used"] < 16384
    assert report["model"]["macs"] == 768
    assert 0 <= report["accuracy"]["accuracy"] <= 1 and report["accuracy"]["n"] == 30
    assert (run.fw / "stm32h743.elf").exists() and (run.fw / "stm32h743.bin").exists()
    md = run.report_md.read_text()
    assert "| DTCM |" in md and "instructions per inference" in md
    # Inputs went as binary frames: about one wire byte per input byte (hex lines took 2.1).
    wire = report["link"]["wire"]
    assert wire["load"] == "binary frames" and wire["input_bytes"] == 768, wire
    assert 1.0 < wire["wire_per_input_byte"] < 1.2 and wire["baud"] == 115200, report["link"]
    assert wire["seconds_per_image_at_baud"] == pytest.approx(wire["to_device_bytes_per_image"] * 10 / 115200, abs=2e-3)
    assert "B per image to the device" in out
    # One flash figure per ELF, each named: the board ELF's, the running (simulator) ELF's.
    assert report["flash"]["elf"].endswith("fw/stm32h743.elf")
    assert report["firmware"]["reported_by_device"]["elf"].endswith("fw/stm32h743-sim.elf")
    assert report["simulator_memory"]["elf"] == report["firmware"]["reported_by_device"]["elf"]
    # The layer table: every operator with its weights and its output's arena slice.
    layers = report["layers"]
    assert len(layers) == report["model"]["ops"] and "## Layers" in md
    assert sum(op["weight_bytes"] for op in layers) == report["model"]["weight_bytes"]
    for op in layers:
        if op["arena_slice"]:
            offset, n = op["arena_slice"]
            assert 0 <= offset and offset + n <= report["model"]["arena_bytes"]
    # The pictures, written beside report.md and shown in it.
    assert set(report["plots"]) >= {"memory map", "ROC, device and TFLite Micro"}
    for path in report["plots"].values():
        assert path.endswith(".png") and (run.root / path.split("/")[-1]).stat().st_size > 0
        assert f"]({path.split('/')[-1]})" in md


def test_profile_counts_every_operator(run, capsys):
    assert main(["verify", "--board", "stm32h743", "--simulate", "--run", str(run.root), "--limit", "2",
                 "--profile"]) == 0
    assert "of the instructions (per operator: report.md)" in capsys.readouterr().out
    report = json.loads((run.root / "report_limit2.json").read_text())
    prof, total = report["profile"], report["latency"]["instructions"]["median"]
    assert len(prof["ops"]) == report["model"]["ops"]
    assert [r["index"] for r in prof["ops"]] == list(range(report["model"]["ops"]))
    counted = sum(r["instructions"] for r in prof["ops"])
    assert 0.98 * total <= counted <= total  # all but the few instructions around the operators
    assert sum(t["instructions"] for t in prof["by_type"].values()) == counted
    assert (run.root / "profile.png").stat().st_size > 0
    md = (run.root / "report_limit2.md").read_text()
    assert "## Instructions per operator type" in md
    assert "| # | operator | kernel | output | MACs | weights (B) | output in arena (B) | instructions |" in md


def test_simulate_profiles_the_self_test(run, capsys):
    assert main(["simulate", "--run", str(run.root), "--repeat", "1", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "per operator type: " in out and "selftest_profile.md" in out
    doc = json.loads((run.root / "selftest_profile.json").read_text())
    assert [r["index"] for r in doc["profile"]["ops"]] == [op["index"] for op in doc["layers"]]
    counted = sum(r["instructions"] for r in doc["profile"]["ops"])
    assert 0.98 * doc["profile"]["instructions"] <= counted <= doc["profile"]["instructions"]
    md = (run.root / "selftest_profile.md").read_text()
    assert "| weights (B) | output in arena (B) | instructions |" in md
    assert (run.root / "selftest_profile.png").stat().st_size > 0
    assert main(["simulate", "--elf", str(run.fw / "stm32h743-sim.elf"), "--profile"]) == 2
    assert "--profile counts instructions per operator" in capsys.readouterr().err


def test_profile_needs_the_simulator(run, capsys):
    assert main(["verify", "--port", "/dev/null-board", "--run", str(run.root), "--profile"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--profile counts instructions per operator in QEMU" in err and "\n" not in err


def test_a_sample_has_its_own_report_and_leaves_the_whole_one(run, capsys):
    assert run.report_json.exists()  # from the whole test split, above
    whole = run.report_json.read_bytes()
    assert main(["verify", "--board", "stm32h743", "--simulate", "--run", str(run.root), "--limit", "5"]) == 0
    assert f"wrote {run.root / 'report_limit5.json'} and {run.root / 'report_limit5.md'}" in capsys.readouterr().out
    assert json.loads((run.root / "report_limit5.json").read_text())["verification"]["n"] == 5
    assert run.report_json.read_bytes() == whole
    assert (run.root / "roc_device_limit5.png").exists() and (run.root / "roc_device.png").exists()
    assert "roc_device_limit5.png" in (run.root / "report_limit5.md").read_text()


def test_verify_refuses_a_board_with_another_model(run, tmp_path):
    other = build_fixture(tmp_path)  # the fixture model, another hash
    with QemuSim(other.sim_elf, other.board) as sim:
        with pytest.raises(UserError, match="runs model 'tiny_fixture'.*not this run's model"):
            verify_run(run, "stm32h743", port=sim.url, limit=2)


def test_verify_needs_a_target(run, capsys):
    with pytest.raises(UserError, match="--port PORT .* or --simulate"):
        verify_run(run, "stm32h743")
    assert main(["verify", "--run", str(run.root)]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line
