"""Host side of the tinyfake serial protocol (firmware/app/protocol.h).

Lines both ways are `<text>*<crc32 hex>\\n`. Inputs go as binary LOAD
frames where the device takes them (`load_frame`: COBS, CRC-32, 0x00
ends the frame; 1.02 wire bytes per input byte). Every command carries a seq
number (random start per Device) and the session id (random per Device);
a reply counts only when it echoes both, and an inference's reply also names
the input CRC and model hash it answers, so stale, duplicated, replayed or
another host's replies are skipped. A command is resent (idempotent: LOAD
writes the same bytes, RUN checks the input's CRC first) when its reply is
lost or corrupted, or the device NACKs that very command; a syntax or usage
error is never resent. A reset of the board shows as a BOOT line or an
`ERR nosession` reply and raises `BoardReset`, after which
`Device.reconnect()` opens a new session, which checks the flash and the
model hash again. One code path for a real port (`/dev/ttyACM0`) and a
simulator's socket (`socket://127.0.0.1:PORT`).
"""
from __future__ import annotations

import secrets
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import serial

from tinyfake.errors import UserError

PROTOCOL_VERSION = 2
LOAD_CHUNK = 512  # bytes per LOAD line (1024 hex chars, under the device's line_max)
LOAD_CHUNK_MIN = 64
HELLO_TIMEOUT = 3.0  # seconds: the first reply after a (simulator) start


class BoardReset(Exception):
    """The device rebooted (BOOT line or lost session): reconnect and redo."""


class NoReply(UserError):
    """No valid reply after every retry."""


class DeviceError(UserError):
    """The device answered ERR to a command that cannot be retried."""


# Device replies that say the line never arrived intact: resend it.
NACKS = ("badcrc", "toolong", "overrun")


def frame(text: str) -> bytes:
    data = text.encode("ascii")
    return data + b"*%08x\n" % zlib.crc32(data)


FRAME_START = b"\x02"  # a binary LOAD frame follows, up to the next 0x00 (protocol.h)


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: `data` with no 0x00 left in it, at
    one byte per 254 of overhead (each block: its length + 1, then its bytes)."""
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
            continue
        block.append(b)
        if len(block) == 254:
            out += b"\xff" + block
            block.clear()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def load_frame(seq: int, sid: str, offset: int, payload: bytes) -> bytes:
    """A binary LOAD: 0x02, COBS(seq, sid, offset, bytes, CRC-32), 0x00."""
    body = struct.pack("<III", seq, int(sid, 16), offset) + payload
    return FRAME_START + cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def unframe(line: bytes) -> str | None:
    """The text of a CRC-valid line, else None: exactly `<text>*<8 lower-case
    hex digits>` (what both ends write), printable ASCII only."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    star = line.rfind(b"*")
    digits = line[star + 1:]
    if star < 0 or len(digits) != 8 or digits.strip(b"0123456789abcdef"):
        return None
    text = line[:star]
    if zlib.crc32(text) != int(digits, 16) or any(b < 0x20 or b > 0x7E for b in text):
        return None
    return text.decode("ascii")


def open_port(port: str, baud: int) -> serial.Serial:
    """A board's serial port (`/dev/ttyACM0`) or a pyserial URL
    (`socket://127.0.0.1:PORT`), with nothing left unread in it."""
    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise UserError(f"cannot open serial port {port}: {exc}; is the board connected "
                        "(try --port /dev/ttyACM0) or the simulator running?") from None
    sock = getattr(ser, "_socket", None)
    if sock is not None:
        # A simulator's socket: send each command at once (no Nagle delay
        # waiting for the previous segment's ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        ser.reset_input_buffer()  # whatever an earlier session left unread
    except (serial.SerialException, OSError):
        pass
    return ser


def parse_fields(text: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in text.split() if "=" in tok)


def _float_bits(hex_text: str) -> float:
    return struct.unpack("<f", struct.pack("<I", int(hex_text, 16)))[0]


@dataclass(frozen=True)
class DeviceInfo:
    """What HELLO reports: identity, shapes, quantization, budgets."""
    board: str
    platform: str
    firmware: str
    clock_hz: int
    model: str
    hash: str
    input_shape: tuple[int, ...]
    input_bytes: int
    output_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    weight_bytes: int
    macs: int
    num_ops: int
    flash_bytes: int
    ram_bytes: int
    stack_size: int
    line_max: int
    bench_max: int
    reset_reason: str        # why the board last reset: power, watchdog, software, ...
    flash_crc: str           # CRC-32 of the constants in flash, computed at boot
    flash_ok: bool           # ... equal to the build's
    raw: dict = field(default_factory=dict, compare=False)
    load_bytes: int = 0          # bytes LOAD takes: the model input, or the RGB face
    preprocess: str = ""         # "rgb+fft+lbp": the board computes the input from an RGB face
    loadb: int = 0               # bytes one binary LOAD frame may carry (0: text LOAD only)

    @property
    def takes_rgb(self) -> bool:
        return self.preprocess == "rgb+fft+lbp"

    @classmethod
    def parse(cls, f: dict[str, str]) -> "DeviceInfo":
        try:
            return cls(
                board=f["board"], platform=f["platform"], firmware=f["fw"], clock_hz=int(f["clock"]),
                model=f["model"], hash=f["hash"],
                input_shape=tuple(int(v) for v in f["in"].split("x")),
                input_bytes=int(f["in_bytes"]), output_bytes=int(f["out_bytes"]),
                input_scale=_float_bits(f["in_scale"]), input_zero_point=int(f["in_zp"]),
                output_scale=_float_bits(f["out_scale"]), output_zero_point=int(f["out_zp"]),
                arena_bytes=int(f["arena"]), weight_bytes=int(f["weights"]), macs=int(f["macs"]),
                num_ops=int(f["ops"]), flash_bytes=int(f["flash"]), ram_bytes=int(f["ram"]),
                stack_size=int(f["stack"]), line_max=int(f["line_max"]), bench_max=int(f["bench_max"]),
                reset_reason=f["reset"], flash_crc=f["flash_crc"], flash_ok=f["flash_ok"] == "1",
                raw=dict(f), load_bytes=int(f.get("load_bytes", f["in_bytes"])),
                preprocess=f.get("pre", ""), loadb=int(f.get("loadb", 0)))
        except (KeyError, ValueError) as exc:
            raise UserError(f"the device's handshake is missing or garbles {exc}; "
                            "flash firmware built by this tinyfake version") from None


@dataclass(frozen=True)
class Inference:
    output: np.ndarray       # int8, flat
    cycles: int              # DWT cycles on hardware; 0 in QEMU
    instructions: int | None = None  # simulator only (instruction-count plugin)


@dataclass
class LinkStats:
    """What went wrong on the wire and was recovered from."""
    resent: int = 0
    bad_lines: int = 0       # replies that failed their CRC or framing
    nacks: int = 0           # the device's NACKs of our command
    stray: int = 0           # valid lines that answer nothing pending (stale, other session, forged)
    timeouts: int = 0
    resets: int = 0
    input_reloads: int = 0
    tx_bytes: int = 0        # bytes written to the device (commands, inputs, resends)
    rx_bytes: int = 0        # bytes read from it

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Device:
    """A board (or simulator) running tinyfake firmware, over a serial port.

    `port`: a device path (`/dev/ttyACM0`) or a pyserial URL
    (`socket://127.0.0.1:5555`). `timeout`: seconds to wait for a reply
    before resending; `run_timeout`: seconds an inference may take once the
    device has acknowledged it; `retries`: resends before giving up.
    `instructions`: a callable returning new per-inference instruction
    counts (the simulator's plugin), or None on hardware. `takeover`: open
    the session even while another host's is open (the other host's next
    command then fails with one clear line). `binary_load`: inputs go as
    binary LOAD frames where the device takes them (HELLO's loadb), else as
    hex LOAD lines.
    """

    def __init__(self, port: str, baud: int = 115200, *, timeout: float = 2.0,
                 run_timeout: float = 30.0, retries: int = 6, instructions=None,
                 expected_hash: str | None = None, takeover: bool = False, log=None,
                 binary_load: bool = True):
        self.port_name = port
        self.timeout, self.run_timeout, self.retries = timeout, run_timeout, retries
        self.instructions = instructions
        self.expected_hash = expected_hash
        self.takeover = takeover
        self.binary_load = binary_load  # False: hex LOAD lines even where the device takes binary frames
        self.log = log or (lambda msg: None)
        self.stats = LinkStats()
        self.chunk = LOAD_CHUNK
        self.info: DeviceInfo | None = None
        # A random session id and first seq: replies meant for another host,
        # or for an earlier Device on this port, match neither.
        self.sid = f"{secrets.randbits(32) | 1:08x}"
        self._seq = secrets.randbelow(1 << 30)
        self._buf = bytearray()
        self.port = open_port(port, baud)

    @property
    def sends_frames(self) -> bool:
        """Inputs go as binary LOAD frames: the device takes them and binary_load is on."""
        return bool(self.binary_load and self.info and self.info.loadb)

    # ---- context manager ----------------------------------------------
    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the session (BYE, best effort) and close the port."""
        if self.info is not None:
            try:
                self.request("BYE", retries=0, timeout=0.3)
            except (UserError, BoardReset):
                pass
            self.info = None
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead socket
            pass

    # ---- lines ----------------------------------------------------------
    def _read_line(self, deadline: float) -> bytes | None:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return line
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise UserError(f"serial port {self.port_name} failed: {exc}") from None
            self.stats.rx_bytes += len(chunk)
            self._buf += chunk
            if len(self._buf) > 1 << 16:  # garbage without newlines: keep the tail
                del self._buf[:-4096]

    def _write(self, data: bytes) -> None:
        self.stats.tx_bytes += len(data)
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise UserError(f"serial port {self.port_name} failed: {exc}") from None

    def request(self, command: str, *, retries: int | None = None, timeout: float | None = None,
                expect: dict[str, str] | None = None, load: tuple[int, bytes] | None = None) -> dict[str, str]:
        """Send one command; return the OK reply's fields.

        A reply counts only with this command's seq and this session's id,
        and, for `expect`, those field values (what an inference's reply
        says it answers); anything else is stale, another host's or forged,
        and is skipped. Resends on a timeout, a damaged reply or a NACK of
        this very command. Raises BoardReset, DeviceError (ERR reply) or
        UserError (no valid reply after all retries, another session).
        `load` = (offset, bytes): send them as one binary LOAD frame instead
        of `command` (devices whose HELLO says loadb)."""
        self._seq = self._seq % 4_000_000_000 + 1
        seq = str(self._seq)
        if load is None:
            # The leading newline ends any garbage the device has buffered;
            # a 0x00 before it also ends a damaged binary frame's leftovers.
            line = (b"\x00\n" if self.info and self.info.loadb else b"\n") + frame(f"{seq} {self.sid} {command}")
        else:
            line = b"\x00" + load_frame(self._seq, self.sid, *load)
        name = command.split(" ", 1)[0]
        retries = self.retries if retries is None else retries
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(retries + 1):
            if attempt:
                self.stats.resent += 1
            self._write(line)
            deadline = time.monotonic() + timeout
            while True:
                raw = self._read_line(deadline)
                if raw is None:
                    self.stats.timeouts += 1
                    self.log(f"{name}: no reply in {timeout}s, resending")
                    break
                if not raw.strip():
                    continue
                if raw.startswith(b"PANIC"):
                    raise UserError(f"the device crashed ({raw.decode(errors='replace').strip()}) "
                                    f"during {name}")
                text = unframe(raw)
                if text is None:
                    self.stats.bad_lines += 1
                    self.log(f"{name}: corrupted line {raw[:60]!r}")
                    continue  # our reply may still follow; else the timeout resends
                if text.startswith("BOOT "):
                    if self.info is None:
                        continue  # the boot banner before our first HELLO
                    self.stats.resets += 1
                    raise BoardReset(text)
                parts = text.split(" ", 3)
                if len(parts) < 3 or parts[0] != seq:
                    self.stats.stray += 1
                    continue  # a reply to an earlier command (resent, or another Device's)
                rsid, status, detail = parts[1], parts[2], parts[3] if len(parts) > 3 else ""
                if rsid == "-" and status == "ERR" and detail in NACKS:
                    self.stats.nacks += 1
                    self.log(f"{name}: device NACK ({detail}), resending")
                    break
                if rsid != self.sid:
                    self.stats.stray += 1
                    continue
                if status == "ACK":
                    deadline = time.monotonic() + self.run_timeout
                    continue
                if status == "OK":
                    fields = parse_fields(detail)
                    if expect and any(fields.get(k) != v for k, v in expect.items()):
                        self.stats.stray += 1
                        self.log(f"{name}: a reply for another input or model, ignored")
                        continue
                    return fields
                if status == "ERR":
                    self._refused(name, detail)
                self.stats.stray += 1
        raise NoReply(f"no valid reply from the device on {self.port_name} to {name} after "
                      f"{retries + 1} tries ({timeout}s each); check the port, the baud "
                      "rate and that tinyfake firmware is running")

    def _refused(self, name: str, detail: str):
        """An ERR reply to our command: raise what it means."""
        if detail == "nosession":
            self.stats.resets += 1
            raise BoardReset("device has no session")
        if detail == "notyours":
            raise UserError(f"another host took over the board on {self.port_name} "
                            "(its session replaced ours); run one host at a time")
        if detail == "busy":
            raise UserError(f"the board on {self.port_name} is in another host's session; stop "
                            "that host, reset the board, or take the session over (--takeover)")
        if detail == "flashcrc":
            raise UserError("the board's flash check failed: its weights are not the ones the "
                            "build wrote; flash the firmware again (`tinyfake flash`)")
        raise DeviceError(f"device refused {name}: {detail}")

    # ---- commands ---------------------------------------------------------
    def hello(self) -> DeviceInfo:
        """Open the session; checks protocol version, the board's flash check
        and, if set, the model hash."""
        command = "HELLO takeover" if self.takeover else "HELLO"
        for _ in range(3):
            try:
                # A board (or simulator) that just started may be slow to answer.
                fields = self.request(command, timeout=max(self.timeout, HELLO_TIMEOUT))
                break
            except BoardReset:
                continue  # a BOOT line queued before our HELLO: say hello again
        else:
            raise UserError(f"the device on {self.port_name} keeps resetting")
        if fields.get("proto") != str(PROTOCOL_VERSION):
            raise UserError(f"device speaks protocol {fields.get('proto')}, this host {PROTOCOL_VERSION}; "
                            "rebuild and flash the firmware")
        info = DeviceInfo.parse(fields)
        if not info.flash_ok:
            raise UserError(f"the board's flash check failed at boot (CRC {info.flash_crc} is not the "
                            "build's): its weights are damaged; flash the firmware again (`tinyfake flash`)")
        if self.expected_hash and info.hash != self.expected_hash:
            raise UserError(f"the device runs model {info.model!r} (hash {info.hash}), not this run's "
                            f"model (hash {self.expected_hash}); flash this run's firmware first "
                            "(`tinyfake flash`)")
        self.info = info
        return info

    reconnect = hello

    def load_input(self, data: np.ndarray) -> int:
        """Write one input (int8 model input tensor, or for a device that
        computes its input itself -- `info.takes_rgb` -- the uint8 RGB face);
        returns its CRC-32.

        As binary LOAD frames (up to 1,024 bytes each, about 1.02 wire bytes
        per input byte) where the device takes them, else as hex LOAD lines
        (512 bytes, 2 wire bytes per byte). Both shrink (down to 64 bytes of
        text, 128 in a frame) when the link damages them: a noisy link still
        gets short ones through."""
        data = np.asarray(data)
        raw = np.ascontiguousarray(data.view(np.int8) if data.dtype == np.uint8 else data,
                                   dtype=np.int8).tobytes()
        want = (self.info.load_bytes or self.info.input_bytes) if self.info else None
        if want is not None and len(raw) != want:
            what = "an RGB face of" if self.info.takes_rgb else "a model input of"
            raise UserError(f"input has {len(raw)} bytes, the device takes {what} {want} bytes")
        binary = self.sends_frames
        off = 0
        while off < len(raw):
            n = min(self.chunk * 2, self.info.loadb) if binary else self.chunk  # a text byte is 2 hex chars
            resent = self.stats.resent
            small = self.chunk <= LOAD_CHUNK_MIN
            retries = None if small else min(3, self.retries)
            try:
                if binary:
                    self.request("LOAD", load=(off, raw[off:off + n]), retries=retries)
                else:
                    self.request(f"LOAD {off} {raw[off:off + n].hex()}", retries=retries)
            except NoReply:
                if small:
                    raise
                self.chunk //= 2
                continue
            if self.stats.resent > resent and not small:
                self.chunk //= 2
            off += n
        return zlib.crc32(raw)

    def _output(self, fields: dict[str, str]) -> np.ndarray:
        out = np.frombuffer(bytes.fromhex(fields["out"]), np.int8).copy()
        if self.info and out.size != self.info.output_bytes:
            raise UserError(f"device returned {out.size} output bytes, expected {self.info.output_bytes}")
        return out

    def _insns(self) -> int | None:
        if self.instructions is None:
            return None
        counts = self.instructions()
        return counts[-1] if counts else None

    def _answers(self, crc: int) -> dict[str, str]:
        """What an inference's reply must say it answers: this input, this model."""
        return {"in_crc": f"{crc:08x}", "hash": self.info.hash if self.info else ""}

    def run(self, crc: int) -> Inference:
        fields = self.request(f"RUN {crc:08x}", expect=self._answers(crc))
        return Inference(self._output(fields), int(fields["cycles"]), self._insns())

    def infer(self, x: np.ndarray, *, attempts: int = 4) -> Inference:
        """Load `x` and run it; survives resets and damaged input by redoing
        the whole exchange (a new session re-checks the model hash)."""
        for attempt in range(attempts):
            try:
                crc = self.load_input(x)
                return self.run(crc)
            except BoardReset as exc:
                self.log(f"board reset ({exc}); reconnecting")
                self.reconnect()
            except DeviceError as exc:
                if "inputcrc" not in str(exc):
                    raise
                # Someone else's bytes in the input, or a reset we missed:
                # a new HELLO (model hash, flash check) before loading again.
                self.stats.input_reloads += 1
                self.log("input CRC mismatch on the device; reconnecting and loading it again")
                self.reconnect()
        raise UserError(f"inference did not complete after {attempts} attempts "
                        f"(link problems: {self.stats.as_dict()})")

    def bench(self, x: np.ndarray, n: int) -> dict[str, int]:
        """n timed inferences of `x` (at most `info.bench_max`; the board may
        stop earlier at its time cap: the result's `n` says how many ran)."""
        if self.info and not 1 <= n <= self.info.bench_max:
            raise UserError(f"BENCH takes 1 to {self.info.bench_max} inferences, not {n}")
        crc = self.load_input(x)
        f = self.request(f"BENCH {n} {crc:08x}", expect=self._answers(crc))
        out = {k: int(f[k]) for k in ("n", "capped", "cycles_min", "cycles_max", "cycles_total")}
        if self.instructions is not None:
            counts = self.instructions()
            if counts:
                out.update(instructions_min=min(counts), instructions_max=max(counts))
        return out

    def prep(self, x: np.ndarray) -> Inference:
        """Devices that compute their input (`info.takes_rgb`): load the RGB
        face and time only that computation; `output` is empty, `instructions`
        (simulator) counts the channel computation alone."""
        crc = self.load_input(x)
        f = self.request(f"PREP {crc:08x}")
        return Inference(np.zeros(0, np.int8), int(f["cycles"]), self._insns())

    def selftest(self) -> Inference:
        f = self.request("SELFTEST", expect={"hash": self.info.hash} if self.info else None)
        return Inference(self._output(f), int(f["cycles"]), self._insns())

    def stat(self) -> dict[str, int]:
        f = self.request("STAT")
        return {k: int(v) for k, v in f.items()}

    def exit(self, code: int = 0) -> None:
        """End the simulation (the firmware resets itself on hardware)."""
        try:
            self.request(f"EXIT {code}")
        except (UserError, BoardReset):
            pass
