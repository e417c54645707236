"""`tinyfake monitor`: a serial console for a board running tinyfake
firmware, like `pio device monitor`. It prints every line the board sends
(CRC-checked: the text of a good line, a damaged one marked `?`) and sends
each typed command (`HELLO`, `SELFTEST`, `STAT`, `RUN ...`) framed the way
the protocol wants: seq number, session id, CRC-32 (tinyfake.harness.protocol).
The session opens with a HELLO before the first other command. With a pipe
as input it exits once the input has ended and the board has gone quiet."""
from __future__ import annotations

import queue
import secrets
import sys
import threading
import time

from tinyfake.errors import UserError
from tinyfake.firmware.boards import DEFAULT_BOARD, load_board

HELP = "serial console: print the board's lines, send typed commands (framed, CRC-checked)"
# A simulator starts the firmware when its socket is opened: wait (this
# long at most) for the BOOT line before sending, or the first command may
# arrive before the firmware listens. A board on a real port is running.
SIM_BOOT_WAIT = 10.0


def add_arguments(p) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name (its console baud rate)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial port of the board, e.g. /dev/ttyACM0 (or a pyserial URL)")
    where.add_argument("--simulate", action="store_true", help="the console of the run's firmware in QEMU")
    p.add_argument("--run", help="with --simulate: run directory (default: the only run with compiled C)")
    p.add_argument("--baud", type=int, help="baud rate (default: the board file's console baud)")
    p.add_argument("--raw", action="store_true",
                   help="send typed lines as they are (no seq, session or CRC) and print lines with their CRC")
    p.add_argument("--quiet", type=float, default=2.0, metavar="SECONDS",
                   help="after the end of piped input, exit once the board has sent nothing this long")


def run(args) -> int:
    if not args.port and not args.simulate:
        raise UserError("say where the board is: --port /dev/ttyACM0 (or a pyserial URL) or --simulate")
    if args.baud is not None and args.baud <= 0:
        raise UserError(f"--baud must be positive, got {args.baud}")
    board = load_board(args.board)
    if args.port:
        return Console(args.port, args.baud or int(board.console.get("baud", 115200)),
                       raw=args.raw, quiet=args.quiet).run()
    from tinyfake.harness.qemu import QemuSim
    from tinyfake.harness.verify import ensure_firmware, harness_run

    _, sim_elf = ensure_firmware(harness_run(args.run), board)
    with QemuSim(sim_elf, board) as sim:
        print(f"QEMU is running {sim_elf}; console at {sim.url} (Ctrl-C stops)")
        return Console(sim.url, 115200, raw=args.raw, quiet=args.quiet).run()


class Console:
    """The port, a thread that prints what arrives, and typed lines sent."""

    def __init__(self, port: str, baud: int, *, raw: bool = False, quiet: float = 2.0):
        from tinyfake.harness.protocol import open_port

        self.name, self.raw, self.quiet = port, raw, quiet
        self.ser = open_port(port, baud)
        self.sid = f"{secrets.randbits(32) | 1:08x}"
        self.seq = secrets.randbelow(1 << 30)
        self.session = False
        self.last_rx = time.monotonic()
        self.heard = threading.Event()     # the board has sent a line
        self.printing = threading.Lock()
        self.failed: str | None = None     # the reader's port error

    def run(self) -> int:
        typed: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_board, daemon=True).start()
        threading.Thread(target=_read_stdin, args=(typed,), daemon=True).start()
        echo = not sys.stdin.isatty()  # piped commands appear in the log beside their replies
        if self.name.startswith("socket://"):
            self.heard.wait(SIM_BOOT_WAIT)
        try:
            while True:
                try:
                    text = typed.get(timeout=0.1)
                except queue.Empty:
                    self._check_port()
                    continue
                if text is None:
                    break
                if text.strip():
                    self._send(text.strip(), echo)
            # End of input: wait for the replies, then leave.
            self.last_rx = max(self.last_rx, time.monotonic())
            while time.monotonic() - self.last_rx < self.quiet:
                self._check_port()
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        finally:
            self._close()
        return 0

    def _send(self, text: str, echo: bool) -> None:
        if self.raw:
            line = text.encode("ascii", "replace") + b"\n"
        else:
            name, _, rest = text.partition(" ")
            name = name.upper()  # the protocol's commands are upper case; "stat" means STAT
            text = f"{name} {rest}".strip()
            if not self.session and name != "HELLO":
                self._send("HELLO", echo)
            self.session = self.session or name == "HELLO"
            from tinyfake.harness.protocol import frame

            self.seq = self.seq % 4_000_000_000 + 1
            line = b"\n" + frame(f"{self.seq} {self.sid} {text}")  # the newline ends any garbage
        if echo:
            self._print(f"> {text}")
        self._write(line)

    def _write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
            self.ser.flush()
        except Exception as exc:  # noqa: BLE001 - pyserial raises OSError or SerialException
            raise UserError(f"serial port {self.name} failed: {exc}") from None

    def _read_board(self) -> None:
        from tinyfake.harness.protocol import unframe

        buf = bytearray()
        while True:
            try:
                buf += self.ser.read(max(1, self.ser.in_waiting))
            except Exception as exc:  # noqa: BLE001 - the port went away
                self.failed = str(exc) or type(exc).__name__
                return
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                line = line.rstrip(b"\r")
                if not line:
                    continue
                self.last_rx = time.monotonic()
                text = None if self.raw else unframe(line)
                self._print(text if text is not None
                            else ("" if self.raw else "? ") + line.decode("ascii", "replace"))
                self.heard.set()

    def _print(self, line: str) -> None:
        with self.printing:  # whole lines: the board's and the echoed commands never interleave
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _check_port(self) -> None:
        if self.failed is not None:
            raise UserError(f"serial port {self.name} failed: {self.failed}")

    def _close(self) -> None:
        if self.session and self.failed is None:
            try:
                self._send("BYE", echo=False)
                time.sleep(0.1)
            except UserError:
                pass
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing a dead port
            pass


def _read_stdin(typed: queue.Queue) -> None:
    for line in sys.stdin:
        typed.put(line)
    typed.put(None)
