"""QEMU `mps2-an500` as a stand-in board: launcher, instruction-count plugin.

The firmware's console UART is QEMU's first serial port, served on a local
TCP socket that the harness opens with pyserial (`socket://`). `-icount
shift=0` makes the virtual clock count instructions, so runs are
deterministic; the plugin (plugin/insncount.c, built here with the host gcc
because Debian's QEMU ships no plugin header) counts the instructions of
each inference between the firmware's marker functions.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board
from tinyfake.harness.child import free_port, popen_tied
from tinyfake.paths import CACHE_ROOT
from tinyfake.report.elf import Elf

PLUGIN_SRC = Path(__file__).parent / "plugin"
PLUGIN_CACHE = CACHE_ROOT / "qemu-plugin"
QEMU = "qemu-system-arm"
MARK_BEGIN, MARK_END, MARK_OP = "tf_mark_begin", "tf_mark_end", "tf_mark_op"


def build_plugin(cache: Path = PLUGIN_CACHE) -> Path:
    """Compile the instruction-count plugin (cached by source hash)."""
    sources = sorted(PLUGIN_SRC.glob("*.[ch]"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    so = cache / f"insncount-{digest}.so"
    if so.exists():
        return so
    if shutil.which("gcc") is None:
        raise UserError("gcc not found: it is needed to build the QEMU instruction-count plugin")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Werror",
                        f"-I{PLUGIN_SRC}", str(PLUGIN_SRC / "insncount.c"), "-o", str(tmp)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"cannot build the QEMU plugin: {r.stderr.strip().splitlines()[0]}")
    tmp.replace(so)  # atomic: parallel builds never see half a file
    return so


class InstructionLog:
    """Reads the plugin's output file: one `<pair> <instructions>` line per
    inference; calling it returns the counts added since the last call.
    In profiling builds, `op <k> <instructions since begin>` lines precede
    each pair; `ops` then holds the last inference's instructions per op."""

    def __init__(self, path: Path):
        self.path = path
        self._pos = 0
        self.all: list[int] = []
        self.ops: list[int] = []
        self._op_starts: list[int] = []

    def __call__(self) -> list[int]:
        if not self.path.exists():
            return []
        with open(self.path) as f:
            f.seek(self._pos)
            text = f.read()
        end = text.rfind("\n") + 1          # complete lines only
        self._pos += len(text[:end].encode())
        new = []
        for ln in text[:end].splitlines():
            parts = ln.split()
            if parts[0] == "op":
                if parts[1] == "0":
                    self._op_starts = []
                self._op_starts.append(int(parts[2]))
            else:
                total = int(parts[1])
                new.append(total)
                if self._op_starts:  # op k runs until op k+1 starts (the last until the end)
                    bounds = self._op_starts + [total]
                    self.ops = [b - a for a, b in zip(bounds, bounds[1:])]
                    self._op_starts = []
        self.all += new
        return new


class QemuSim:
    """One QEMU process running a simulator-map ELF.

    `url` is the pyserial URL of the console, `instructions` the plugin's
    log, `monitor(cmd)` talks to the QEMU monitor (e.g. "system_reset").
    """

    def __init__(self, elf: str | Path, board: Board, *, count_instructions: bool = True,
                 extra_args: list[str] | None = None):
        if shutil.which(QEMU) is None:
            raise UserError(f"{QEMU} not found; install it (`make setup` or apt-get install qemu-system-arm)")
        self.elf = Path(elf)
        if not self.elf.exists():
            raise UserError(f"{self.elf} not found; build the firmware first (`tinyfake firmware`)")
        sim = board.sim_board()
        self.board = board
        self.tmp = Path(tempfile.mkdtemp(prefix="tinyfake-qemu-"))
        self.port = free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.monitor_path = self.tmp / "monitor.sock"
        self.instructions = InstructionLog(self.tmp / "insns.txt")
        cmd = [QEMU, "-M", sim.qemu.get("machine", sim.name), "-cpu", sim.qemu.get("cpu", sim.cpu),
               "-nographic", "-semihosting-config", "enable=on,target=native",
               "-icount", "shift=0",
               "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on",
               "-monitor", f"unix:{self.monitor_path},server=on,wait=off",
               "-kernel", str(self.elf)]
        if count_instructions:
            syms = Elf(self.elf).symbols()
            missing = [s for s in (MARK_BEGIN, MARK_END) if s not in syms]
            if missing:
                raise UserError(f"{self.elf} has no {', '.join(missing)}: not a tinyfake firmware")
            arg = (f"{build_plugin()},begin=0x{syms[MARK_BEGIN]:x},end=0x{syms[MARK_END]:x},"
                   f"out={self.instructions.path}")
            if MARK_OP in syms:
                arg += f",op=0x{syms[MARK_OP]:x}"
            cmd += ["-plugin", arg]
        cmd += extra_args or []
        self.cmd = cmd
        self.stderr = open(self.tmp / "qemu.log", "w+b")
        self.proc = popen_tied(cmd, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=subprocess.STDOUT)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 20.0) -> None:
        # QEMU listens before it starts the guest (wait=on); probing with a
        # connect would take the one client slot, so watch /proc instead.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UserError(f"QEMU exited at start: {self.log_tail()}")
            if self._listening():
                return
            time.sleep(0.02)
        self.close()
        raise UserError(f"QEMU did not open its serial socket within {timeout:.0f}s")

    def _listening(self) -> bool:
        hexport = f":{self.port:04X}"
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                for ln in Path(table).read_text().splitlines()[1:]:
                    parts = ln.split()
                    if parts[1].endswith(hexport) and parts[3] == "0A":  # LISTEN
                        return True
            except OSError:
                continue
        return False

    def log_tail(self) -> str:
        self.stderr.flush()
        text = (self.tmp / "qemu.log").read_text(errors="replace").strip()
        return text.splitlines()[-1] if text else "(no output)"

    def monitor(self, command: str) -> str:
        """Run one QEMU monitor command (e.g. "system_reset")."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.monitor_path))
            s.sendall(command.encode() + b"\n")
            time.sleep(0.2)
            try:
                return s.recv(65536).decode(errors="replace")
            except socket.timeout:
                return ""

    def wait(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise UserError(f"QEMU did not exit within {timeout:.0f}s") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def __enter__(self) -> "QemuSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
