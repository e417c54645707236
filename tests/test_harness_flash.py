"""Flashing without hardware: the real flashers must fail with one clear line."""
import shutil

import pytest
from fixtures.firmware_helpers import build_fixture

from tinyfake.errors import UserError
from tinyfake.firmware import load_board
from tinyfake.harness.flash import flash, flash_command


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def test_pyocd_without_a_probe_says_so(build):
    # CI machines have no debug probe: pyOCD (the real one) reports none.
    with pytest.raises(UserError, match="no debug probe or board found by pyocd") as exc:
        flash(build.board, build.elf, build.bin)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("tool", ["openocd", "st-flash"])
def test_missing_flasher_says_how_to_install(build, tool):
    if shutil.which(tool):
        pytest.skip(f"{tool} is installed here")
    with pytest.raises(UserError, match=f"{tool} is not installed"):
        flash(build.board, build.elf, build.bin, tool)


def test_flash_commands_come_from_the_board_file(build, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    b = load_board("stm32h743")
    assert flash_command(b, build.elf, "pyocd")[-4:] == ["--no-wait", "-t", "stm32h743xx", str(build.elf)]
    assert flash_command(b, build.elf, "openocd")[1:] == [
        "-f", "board/st_nucleo_h743zi.cfg", "-c", f"program {build.elf} verify reset exit"]
    assert flash_command(b, build.bin, "st-flash")[-3:] == ["write", str(build.bin), "0x08000000"]


def test_board_without_flasher_settings(build):
    with pytest.raises(UserError, match="mps2-an500 has no \\[flash.pyocd\\] settings"):
        flash(load_board("mps2-an500"), build.elf, build.bin)
