"""Memory per region from the ELF, checked against binutils, and the
report files."""
import json
import subprocess

import pytest
from fixtures.firmware_helpers import build_fixture

from tinyfake.harness.verify import memory_report
from tinyfake.report.elf import Elf
from tinyfake.report.report import budget_text, write_report


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def test_flash_and_ram_agree_with_arm_none_eabi_size(build):
    out = subprocess.run(["arm-none-eabi-size", "-A", str(build.elf)], capture_output=True,
                         text=True, check=True).stdout
    sizes = {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines() if ln.startswith(".")}
    mem = memory_report(build.elf, build.board, stack_used=100)
    flash = sizes[".isr_vector"] + sizes[".text"] + sizes[".rodata"] + sizes[".tf_check"] \
        + sizes.get(".data", 0) + sizes.get(".ARM.exidx", 0)
    assert mem["flash"]["total"] == flash
    dtcm = mem["ram"]["regions"]["DTCM"]["parts"]
    assert dtcm["bss"] == sizes[".bss"] + sizes[".noinit"] and dtcm["stack"] == sizes[".stack"]
    assert dtcm["arena"] == sizes[".arena"]
    assert mem["ram"]["total_with_measured_stack"] == mem["ram"]["total"] - 16384 + 100


def test_elf_symbols(build):
    syms = Elf(build.elf).symbols()
    assert syms["tf_mark_begin"] % 2 == 0  # Thumb bit cleared: an instruction address
    assert syms["__stack_top"] - syms["__stack_bottom"] == 16384


def test_report_files(tmp_path, build):
    mem = memory_report(build.elf, build.board, stack_used=300)
    report = {"run": "runs/x", "board": "stm32h743", "platform": "QEMU", "data": "test split",
              "firmware": {"version": "0.1.0"}, "arena_region": "DTCM",
              "model": {"name": "m", "hash": "h", "input_shape": [16, 16, 3], "ops": 1, "macs": 768,
                        "arena_bytes": 768, "weight_bytes": 16},
              **mem,
              "latency": {"clock_hz": 480_000_000, "instructions": {"min": 10, "max": 10, "median": 10, "n": 3},
                          "repeatable": True, "ms_estimate": 1e-5},
              "accuracy": {"accuracy": 0.5, "auc": float("nan"), "f1": 0.0, "eer": float("nan"), "n": 2},
              "verification": {"n": 2, "identical": 2, "mismatches": [], "selftest": "ok"}, "link": {}}
    write_report(report, tmp_path / "report.json", tmp_path / "report.md")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["accuracy"]["auc"] is None  # NaN -> null, valid JSON
    text = budget_text(report)
    assert "DTCM" in text and "ESTIMATE" in text and "AUC n/a" in text
    assert "| FLASH |" in (tmp_path / "report.md").read_text()
