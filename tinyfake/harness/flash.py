"""Flashing a board: pyOCD (default, from PyPI), OpenOCD or st-flash, with
the settings from the board's `[flash]` table."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board

FLASHERS = ("pyocd", "openocd", "st-flash")
NO_PROBE = ("no connected debug probes", "no target device available", "no debug probe",
            "unable to open", "couldn't find", "no st-link", "found 0 stlink", "open failed",
            "error: libusb_open", "unable to find a matching")


def _tool(name: str) -> list[str]:
    if name == "pyocd":
        # pyOCD is a Python package: run it from this interpreter's environment.
        return [sys.executable, "-m", "pyocd"]
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} is not installed; install it (e.g. `apt-get install {name.replace('st-flash', 'stlink-tools')}`) "
                        "or use --with pyocd")
    return [path]


def flash_command(board: Board, image: Path, tool: str, probe: str | None = None) -> list[str]:
    """The command line that writes `image` (ELF for pyOCD/OpenOCD, BIN for st-flash)."""
    cfg = board.flash.get(tool, {})
    if tool == "pyocd":
        cmd = _tool("pyocd") + ["flash", "--no-wait", "-t", cfg.get("target", board.name), str(image)]
        return cmd + (["-u", probe] if probe else [])
    if tool == "openocd":
        cmd = _tool("openocd")
        for c in cfg.get("config", []):
            cmd += ["-f", c]
        return cmd + ["-c", f"program {image} verify reset exit"]
    if tool == "st-flash":
        cmd = _tool("st-flash") + (["--serial", probe] if probe else [])
        return cmd + ["--reset", "write", str(image), f"0x{int(cfg.get('address', 0x08000000)):08x}"]
    raise UserError(f"unknown flasher {tool!r}; use one of {', '.join(FLASHERS)}")


def check_flasher(board: Board, tool: str | None = None) -> str:
    """The flasher to use (`tool`, else the board's default), checked to have
    settings in the board file and to be installed: cheap, so `build --flash`
    asks before its expensive stages."""
    tool = tool or board.flash.get("default", "pyocd")
    if tool not in board.flash or tool == "default":
        known = ", ".join(k for k in board.flash if k != "default")
        raise UserError(f"board {board.name} has no [flash.{tool}] settings; "
                        + (f"it supports: {known}" if known else "its board file names no flasher"))
    _tool(tool)
    return tool


def flash(board: Board, elf: Path, binary: Path, tool: str | None = None, probe: str | None = None,
          timeout: float = 300) -> str:
    """Write the firmware to the board; returns the tool's last output line."""
    tool = check_flasher(board, tool)
    image = binary if tool == "st-flash" else elf
    if not image.exists():
        raise UserError(f"{image} not found; build the firmware first (`tinyfake firmware`)")
    cmd = flash_command(board, image, tool, probe)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"{tool} did not finish within {timeout:.0f}s; is the board powered?") from None
    text = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        low = text.lower()
        if tool == "pyocd" and "no module named pyocd" in low:
            raise UserError("pyOCD is not installed in this environment; run `make setup`")
        if any(s in low for s in NO_PROBE):
            raise UserError(f"no debug probe or board found by {tool}: connect the board's ST-LINK "
                            "USB port (and check the probe's USB permissions / udev rules)")
        last = text.splitlines()[-1] if text else f"exit status {r.returncode}"
        raise UserError(f"{tool} failed to flash {image.name}: {last}")
    return text.splitlines()[-1] if text else "done"
