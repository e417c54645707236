"""Renode as a simulator of the real board: it runs the board-address ELF
(the very file `tinyfake flash` writes, not QEMU's twin linked for another
memory map) on Renode's own platform for the chip, plus the overlay the
board TOML names (`[renode]`), with the console UART on a TCP socket.

Renode emulates instructions, not cycles, and models no DWT: the firmware's
cycle counter reads 0 there. Instructions per inference come from CPU hooks
on the firmware's marker functions (as QEMU's plugin does), reading Renode's
executed-instruction counter; every ms figure from them is an estimate.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board
from tinyfake.harness.child import free_port, popen_tied
from tinyfake.harness.qemu import MARK_BEGIN, MARK_END
from tinyfake.paths import SOURCE_ROOT
from tinyfake.report.elf import Elf

# Where CI finds Renode: the source build beside the checkout (../shared/renode).
SHARED_RENODE = SOURCE_ROOT.parent / "shared" / "renode"
INSTALL_HINT = ("install Renode (packages at https://renode.io, or build it from "
                "https://github.com/renode/renode) and put `renode` on PATH, set $RENODE, "
                "or give --renode PATH")
START_TIMEOUT_S = 120  # Mono start-up plus platform load take 10-30 s on a busy 2-core machine


def find_renode(explicit: str | None = None) -> Path:
    """The Renode launcher: `explicit` (--renode PATH), $RENODE, `renode` on
    PATH, then ../shared/renode/renode-*/renode; one clear error if none."""
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UserError(f"--renode {explicit}: not an executable Renode launcher")
        return path
    if os.environ.get("RENODE"):
        path = Path(os.environ["RENODE"])
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UserError(f"$RENODE={path}: not an executable Renode launcher")
        return path
    on_path = shutil.which("renode")
    if on_path:
        return Path(on_path)
    for launcher in sorted(SHARED_RENODE.glob("renode-*/renode"), reverse=True):
        if os.access(launcher, os.X_OK):
            return launcher
    raise UserError(f"Renode not found; {INSTALL_HINT}")


def renode_script(board: Board, elf: Path, port: int, counts: Path | None = None) -> str:
    """The .resc that boots `elf` on the board's Renode platform; with
    `counts`, marker hooks append `begin N` / `end N` lines to it (N:
    instructions executed so far)."""
    cfg = board.renode
    if not cfg.get("platform"):
        raise UserError(f"board {board.name!r} has no Renode platform ([renode] in {board.path}); "
                        "simulate it with QEMU (without --renode)")
    # A platform beside the board file is tinyfake's (it may `using` Renode's); else Renode's own.
    here = board.path.parent
    platform = here / cfg["platform"]
    platform = platform if platform.is_file() else cfg["platform"]
    lines = ["mach create", f"machine LoadPlatformDescription @{platform}"]
    if cfg.get("overlay"):
        overlay = here / cfg["overlay"]
        if not overlay.is_file():
            raise UserError(f"{board.path}: [renode] overlay {cfg['overlay']!r} not found in {here}")
        lines.append(f"include @{overlay}")
    uart = board.console.get("uart", "USART3").lower()
    lines += [f'emulation CreateServerSocketTerminal {port} "console" false',
              f"connector Connect sysbus.{uart} console",
              f"sysbus LoadELF @{Path(elf).resolve()}"]
    try:
        syms = Elf(elf).symbols() if counts else {}
    except (ValueError, IndexError, struct.error):
        raise UserError(f"{elf}: not a readable ELF32 file; rebuild it with `tinyfake firmware`") from None
    for what, marker in (("begin", MARK_BEGIN), ("end", MARK_END)):
        if marker in syms:  # IronPython in the hook; `self` is the CPU
            lines.append(f"cpu AddHook 0x{syms[marker] & ~1:x} \"f = open('{counts}', 'a'); "
                         f"f.write('{what} %d' % self.ExecutedInstructions + chr(10)); f.close()\"")
    lines.append("start")
    return "\n".join(lines) + "\n"


class RenodeInstructions:
    """Calling it returns the instructions of each inference (end - begin)
    completed since the last call; `all` keeps every one."""

    def __init__(self, path: Path):
        self.path = path
        self._done = 0
        self.all: list[int] = []

    def __call__(self) -> list[int]:
        if not self.path.exists():
            return []
        begin, counts = None, []
        for ln in self.path.read_text().splitlines():
            what, _, n = ln.partition(" ")
            if what == "begin":
                begin = int(n)
            elif what == "end" and begin is not None:
                counts.append(int(n) - begin)
                begin = None
        new = counts[self._done:]
        self._done = len(counts)
        self.all += new
        return new


class RenodeSim:
    """Renode running a board ELF; `url` is its console for `protocol.Device`."""

    def __init__(self, elf: Path | None, board: Board, renode: Path):
        if elf is None or not Path(elf).exists():
            raise UserError(f"{elf} not found; build the firmware first (`tinyfake firmware`)")
        self.elf = Path(elf)
        self.elf_sha256 = hashlib.sha256(self.elf.read_bytes()).hexdigest()
        self.port = free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="tinyfake-renode-"))
        self.instructions = RenodeInstructions(self.tmp / "insns.txt")
        script = self.tmp / "tinyfake.resc"
        script.write_text(renode_script(board, self.elf, self.port, self.instructions.path))
        self.log_path = self.tmp / "renode.log"
        # No --console: Renode's monitor would read stdin and quit at its end.
        with open(self.log_path, "wb") as log:
            self.proc = popen_tied(
                [str(renode), "--disable-xwt", "--plain", "-e", f"include @{script}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._wait_started()

    def _wait_started(self) -> None:
        """Until the machine runs; the socket terminal is open by then. (A
        probe connection would take the terminal's one client.)"""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if "Machine started." in text:
                return
            if self.proc.poll() is not None or "[ERROR]" in text or "Fatal error" in text:
                self.close()
                raise UserError(f"Renode failed to start the board: {_last_error(text)} (log: {self.log_path})")
            time.sleep(0.3)
        self.close()
        raise UserError(f"Renode did not start the machine within {START_TIMEOUT_S} s (log: {self.log_path})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "RenodeSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if "ERROR" in ln or "rror" in ln]
    return lines[-1][:300] if lines else (log.strip().splitlines() or ["exited"])[-1][:300]
