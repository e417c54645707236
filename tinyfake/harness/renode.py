"""Renode's STM32H743 platform as a simulator (only when `renode` is on PATH).

Renode models the STM32H743 itself, so it runs the board-address ELF (not
the QEMU simulator map) and the console is USART3, exposed on a TCP socket.
UNTESTED: Renode is not installable on tinyfake's CI machines. Instruction
counts are not collected here (use QEMU for those).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RenodeSim:
    PLATFORM = "platforms/cpus/stm32h743.repl"

    def __init__(self, elf: Path | None, board: Board):
        if elf is None or not Path(elf).exists():
            raise UserError(f"{elf} not found; build the firmware first (`tinyfake firmware`)")
        self.port = _free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="tinyfake-renode-"))
        uart = board.console.get("uart", "USART3").lower()
        script = self.tmp / "tinyfake.resc"
        script.write_text(
            "mach create\n"
            f"machine LoadPlatformDescription @{self.PLATFORM}\n"
            f"emulation CreateServerSocketTerminal {self.port} \"console\" false\n"
            f"connector Connect sysbus.{uart} console\n"
            f"sysbus LoadELF @{Path(elf).resolve()}\n"
            "start\n")
        self.proc = subprocess.Popen(["renode", "--disable-xwt", "--console", str(script)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # Renode takes a while to start
            if self.proc.poll() is not None:
                raise UserError("renode exited at start; run the script by hand: " + str(script))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise UserError("renode did not open its console socket within 60s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> "RenodeSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
