"""Builds `firmware/` around a compiled model with arm-none-eabi-gcc.

The same objects are linked twice from one memory profile: for the board's
real addresses (ELF/BIN/HEX to flash) and for the simulator's (the ELF QEMU
runs), each with its family's HAL. A model that does not fit fails at link
time with one line naming the region and the overflow.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board, Region, load_board, parse_size
from tinyfake.firmware.linker import linker_script, sim_regions
from tinyfake.firmware.model_header import ModelInfo, read_model_header
from tinyfake.firmware.selftest import selftest_output, write_selftest_c
from tinyfake.paths import FIRMWARE_DIR, SOURCE_ROOT
from tinyfake.provenance import tree_digest
from tinyfake.report.memory import RegionUse, region_usage

FIRMWARE = FIRMWARE_DIR
CC = "arm-none-eabi-gcc"
OBJCOPY = "arm-none-eabi-objcopy"
OBJDUMP = "arm-none-eabi-objdump"
CFLAGS = ["-mthumb", "-O2", "-g", "-std=gnu11", "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Werror"]
LDFLAGS = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]


@dataclass
class LinkedImage:
    """One link of the firmware: real board addresses or simulator ones."""
    variant: str            # "board" or "sim"
    elf: Path
    linker_script: Path
    map: Path
    regions: dict[str, Region]
    usage: dict[str, RegionUse]


@dataclass
class FirmwareBuild:
    board: Board
    model: ModelInfo
    arena_region: str
    board_image: LinkedImage
    sim_image: LinkedImage
    bin: Path
    hex: Path
    outputs: list[Path] = field(default_factory=list)
    channels: str = "rgb"            # rgb, or rgb+fft+lbp (the board computes FFT and LBP)
    channel_scratch_bytes: int = 0   # rgb+fft+lbp: scratch overlaid on the arena

    @property
    def elf(self) -> Path:
        return self.board_image.elf

    @property
    def sim_elf(self) -> Path:
        return self.sim_image.elf


def _cpu_flags(board: Board) -> list[str]:
    flags = [f"-mcpu={board.cpu}"]
    if board.fpu:
        flags += [f"-mfpu={board.fpu}", "-mfloat-abi=hard"]
    return flags


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} not found; install the ARM toolchain "
                        "(`make setup` or apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
                        ) from None


def _first_error(stderr: str) -> str:
    """The most telling line of a gcc/ld error output."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and "collect2" not in ln]
    for needle in ("error:", "undefined reference", "multiple definition", "error"):
        hits = [ln for ln in lines if needle in ln.lower()]
        if hits:
            return hits[0]
    return lines[0] if lines else "?"


def _compile(src: Path, obj: Path, flags: list[str]) -> None:
    obj.parent.mkdir(parents=True, exist_ok=True)
    r = _run([CC, *flags, "-c", str(src), "-o", str(obj)], "compile")
    if r.returncode != 0:
        raise UserError(f"firmware does not compile: {_first_error(r.stderr)}")


def _gen_sources(gen: Path) -> list[Path]:
    """gen/*.c plus the runtime sources gen/sources.txt lists (repo-relative)."""
    sources = sorted(gen.glob("*.c"))
    listing = gen / "sources.txt"
    if listing.exists():
        for line in listing.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            path = SOURCE_ROOT / line
            if not path.exists():
                raise UserError(f"{listing} lists {line}, which does not exist; recompile the model")
            if path.suffix == ".c":
                sources.append(path)
    return sources


def _board_info_c(board: Board, platform: Board) -> str:
    return ('#include "hal.h"\n'
            f'const char tf_board_name[] = "{board.name}";\n'
            f'const char tf_platform_name[] = "{platform.name}";\n'
            f"const uint32_t tf_board_clock_hz = {board.clock_hz}u;\n")


_PIN = re.compile(r"P([A-K])(\d{1,2})")
_AF_PIN = re.compile(r"P([A-K])(\d{1,2}):(\d{1,2})")


def _qspi_flags(qspi: dict, where: str) -> list[str]:
    """[qspi] as TF_QSPI_*: FSIZE from the chips' total size (a power of two),
    the pins as an X-macro list TF_QSPI_PIN(port, pin, af)... (code, not a
    table: nothing may read .rodata before the HAL has mapped the QSPI flash)."""
    table = dict(qspi)
    try:
        size = parse_size(table.pop("size"))
        pins = table.pop("pins")
    except KeyError as exc:
        raise UserError(f"{where}: lacks the key {exc}") from None
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    if size < 2 or size & (size - 1):
        raise UserError(f"{where}: size = {size} is not a power of two (the QSPI flash's total size)")
    calls = []
    for text in pins if isinstance(pins, list) else [pins]:
        pin = _AF_PIN.fullmatch(str(text))
        if not pin or int(pin.group(2)) > 15 or int(pin.group(3)) > 15:
            raise UserError(f"{where}: pin {text!r} is not a pin with its alternate function like \"PF10:9\"")
        calls.append(f"TF_QSPI_PIN({ord(pin.group(1)) - ord('A')},{pin.group(2)},{pin.group(3)})")
    return [f"-DTF_QSPI_FSIZE={size.bit_length() - 2}u", f"-DTF_QSPI_PINS={''.join(calls)}",
            *_define_table("TF_QSPI", table, where)]


def _define_table(prefix: str, table: dict, where: str) -> list[str]:
    """`key = value` of a board table as -D<prefix>_<KEY>: numbers as
    unsigned literals, booleans as 1/0, words as -D<prefix>_<KEY>_<WORD>."""
    flags = []
    for key, value in table.items():
        name = f"{prefix}_{key.upper()}"
        if isinstance(value, bool):
            flags.append(f"-D{name}={int(value)}")
        elif isinstance(value, int):
            flags.append(f"-D{name}={value}u")
        elif isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_]+", value):
            flags.append(f"-D{name}_{value.upper()}")
        else:
            raise UserError(f"{where}: {key} = {value!r} is not a number, true/false or a word")
    return flags


def _hal_flags(board: Board) -> list[str]:
    """The family HAL's settings, from the board file: [clock] as TF_CLOCK_*,
    the console's UART, pins and baud, the die (`part`) and the clock the
    board claims (the HAL checks it against its PLL settings at compile time)."""
    where = str(board.path)
    flags = [f"-DTF_BOARD_CLOCK_HZ={board.clock_hz}u",
             *_define_table("TF_CLOCK", board.clock, f"{where} [clock]")]
    if board.part:
        flags.append(f"-DTF_PART_{board.part.upper()}")
    con = board.console
    if "baud" in con:
        flags.append(f"-DTF_CONSOLE_BAUD={int(con['baud'])}u")
    m = re.fullmatch(r"U(S)?ART(\d)", str(con.get("uart", "")))
    if m:
        flags.append(f"-DTF_CONSOLE_USART={m.group(2)}")
    for end in ("tx", "rx"):
        if end in con:
            pin = _PIN.fullmatch(str(con[end]))
            if not pin or int(pin.group(2)) > 15:
                raise UserError(f"{where} [console]: {end} = {con[end]!r} is not a pin like \"PD8\"")
            flags += [f"-DTF_CONSOLE_{end.upper()}_PORT={ord(pin.group(1)) - ord('A')}",
                      f"-DTF_CONSOLE_{end.upper()}_PIN={pin.group(2)}"]
    if "af" in con:
        flags.append(f"-DTF_CONSOLE_AF={int(con['af'])}u")
    if board.qspi:
        flags += _qspi_flags(board.qspi, f"{where} [qspi]")
    return flags


_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_NOFIT = re.compile(r"section [`'](\S+)' will not fit in region [`'](\w+)'")


def _link(objs: list[Path], script: Path, elf: Path, cpu: list[str]) -> tuple[bool, str]:
    mapfile = elf.with_suffix(".map")
    r = _run([CC, *cpu, "-mthumb", *LDFLAGS, "-T", str(script), f"-Wl,-Map={mapfile}",
              *map(str, objs), "-lc", "-lgcc", "-o", str(elf)], "link")
    return r.returncode == 0, r.stderr


def write_flash_check(elf: Path) -> int:
    """Write the CRC-32 of `elf`'s .rodata into its .tf_check section, which
    the firmware compares with its own CRC of the flash at boot
    (firmware/app/flashcheck.h). Returns the CRC."""
    with tempfile.TemporaryDirectory() as tmp:
        rodata, check = Path(tmp) / "rodata.bin", Path(tmp) / "check.bin"
        r = _run([OBJCOPY, "-O", "binary", "--only-section=.rodata", str(elf), str(rodata)], "objcopy")
        if r.returncode != 0:
            raise UserError(f"objcopy failed: {_first_error(r.stderr)}")
        crc = zlib.crc32(rodata.read_bytes())
        check.write_bytes(struct.pack("<I", crc))
        r = _run([OBJCOPY, f"--update-section=.tf_check={check}", str(elf)], "objcopy")
        if r.returncode != 0:
            raise UserError(f"objcopy failed: {_first_error(r.stderr)}")
    return crc


_FUNCTION = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_CONSTANT = re.compile(r"\.word\s+0x([0-9a-f]+)|\bmovt\s+\w+, #(\d+)")
_CALL = re.compile(r"\sb(?:l|\.w)?\s+[0-9a-f]+ <([^>+]+)>")


def boot_reads(elf: Path, region: Region, root: str = "hal_early_init") -> list[str]:
    """The addresses in `region` that `root`, and every function it calls,
    loads as a constant (a literal-pool word, or the high half a movt sets):
    code that runs before the HAL maps the region must not touch it. Returns
    "function: 0x..." items, empty when the boot path is clean."""
    r = _run([OBJDUMP, "-d", str(elf)], "objdump")
    if r.returncode != 0:
        raise UserError(f"objdump failed: {_first_error(r.stderr)}")
    bodies: dict[str, list[str]] = {}
    current: list[str] = []
    for line in r.stdout.splitlines():
        m = _FUNCTION.match(line)
        if m:
            current = bodies.setdefault(m.group(2), [])
        else:
            current.append(line)
    lo, hi = region.origin, region.origin + region.size
    found, seen, todo = [], set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in bodies:
            continue
        seen.add(name)
        for line in bodies[name]:
            for word, movt in _CONSTANT.findall(line):
                value = int(word, 16) if word else int(movt) << 16
                if lo <= value < hi or (movt and lo >> 16 <= int(movt) < -(-hi >> 16)):
                    found.append(f"{name}: 0x{value:08x}")
            todo += _CALL.findall(line)
    return found


def _overflow_message(stderr: str, board: Board, arena: str, model: ModelInfo) -> str | None:
    found = _OVERFLOW.findall(stderr)
    if not found:
        m = _NOFIT.search(stderr)
        return f"section {m.group(1)} does not fit in region {m.group(2)}" if m else None
    parts = []
    for region, over in found:
        r = board.regions.get(region)
        size = f" ({r.size // 1024} KiB)" if r else ""
        parts.append(f"region {region}{size} overflowed by {int(over)} bytes")
    return (f"model {model.name!r} does not fit board {board.name}: {'; '.join(parts)} "
            f"(arena {model.arena_bytes} B in {arena}, weights {model.weight_bytes} B); "
            f"use a smaller model or change [profile] in boards/{board.name}.toml")


def build_firmware(gen_dir: str | Path, board: Board | str, out_dir: str | Path, *,
                   tflite: str | Path | None = None,
                   reference: Callable[[np.ndarray], np.ndarray] | None = None,
                   profile_ops: bool = False, channels: str = "rgb",
                   test_hooks: bool = False) -> FirmwareBuild:
    """Build the firmware for `board` around the model in `gen_dir`.

    Writes `<board>.elf/.bin/.hex/.map/.ld` (board addresses) and
    `<board>-sim.elf/.map/.ld` (simulator addresses) into `out_dir`. The
    self-test output comes from the TFLite Micro wheel on `tflite`, or from
    `reference` (tests). Raises UserError when the model does not fit.
    `profile_ops` calls a marker at every operator (MODEL_OP_BEGIN) so the
    simulator reports instructions per operator; it adds a call per op.
    `channels` "rgb+fft+lbp": the model takes R, G, B, FFT, LBP; the board
    receives the RGB face and computes the rest (firmware/binary/channels.c,
    compiled in only then) before each inference, with its scratch overlaid
    on the model's arena (see tinyfake.firmware.linker). `test_hooks` adds
    the commands only tests use (HANG: proves the watchdog).
    """
    board = load_board(board) if isinstance(board, str) else board
    platform = board.sim_board()
    gen = Path(gen_dir)
    out = Path(out_dir)
    model = read_model_header(gen)
    if shutil.which(CC) is None:
        _run([CC], "compile")  # raises the install hint
    obj = out / f"obj-{board.name}"
    if obj.exists():
        shutil.rmtree(obj)
    obj.mkdir(parents=True)

    # The input stage (what the host loads; the channel computation's
    # parameters) and the self-test vector from the host oracle.
    from tinyfake.firmware.model_header import channel_scratch_bytes, check_channel_model, input_stage

    rgb_size = check_channel_model(model, channels)
    input_quant = None
    if rgb_size and reference is None and tflite is not None and Path(tflite).exists():
        from tinyfake.export.tflite_int8 import io_quant
        inq, _ = io_quant(tflite)
        input_quant = (inq.scale, inq.zero_point)
    input_h, input_c = input_stage(model, channels, input_quant)
    (obj / "tf_input.h").write_text(input_h)
    (obj / "tf_input.c").write_text(input_c)
    scratch_bytes = channel_scratch_bytes(rgb_size) if rgb_size else 0
    selftest_c = obj / "selftest_data.c"
    write_selftest_c(selftest_c, selftest_output(model, tflite=tflite, reference=reference,
                                                 channels=channels))

    cpu = _cpu_flags(board)
    runtime = FIRMWARE_DIR / "runtime"
    includes = [gen, obj, FIRMWARE / "app", FIRMWARE / "hal"] + ([runtime] if runtime.is_dir() else [])
    channel_srcs = []
    if rgb_size:  # only models that take R, G, B, FFT, LBP carry the channel code
        includes.append(FIRMWARE / "binary")
        channel_srcs = [FIRMWARE / "binary" / "channels.c"]
    inc = [f"-I{p}" for p in includes]
    common_srcs = (sorted((FIRMWARE / "app").glob("*.c")) + _gen_sources(gen) + channel_srcs
                   + [obj / "tf_input.c", selftest_c])
    for src in common_srcs:
        inc.append(f"-I{src.parent}")
    inc = list(dict.fromkeys(inc))

    gen_srcs = set(_gen_sources(gen))
    op_flags = ["-include", str(FIRMWARE / "app" / "markers.h"),
                "-DMODEL_OP_BEGIN(index,name)=tf_mark_op()"] if profile_ops else []
    jobs: list[tuple[Path, Path, list[str]]] = []
    common_objs = []
    for i, src in enumerate(common_srcs):
        o = obj / "common" / f"{i:03d}_{src.stem}.o"
        common_objs.append(o)
        jobs.append((src, o, [*cpu, *CFLAGS, *inc, *(op_flags if src in gen_srcs else []),
                              *(["-DTF_TEST_HOOKS"] if test_hooks else [])]))

    # Per link variant: the family HAL, shared startup, board identity.
    variant_objs: dict[str, list[Path]] = {}
    for variant, hw in (("board", board), ("sim", platform)):
        vdir = obj / variant
        vdir.mkdir(parents=True, exist_ok=True)
        info_c = vdir / "board_info.c"
        info_c.write_text(_board_info_c(board, hw))
        hal_dir = FIRMWARE / "hal" / hw.family
        if not hal_dir.is_dir():
            raise UserError(f"no HAL for family {hw.family!r} (expected {hal_dir})")
        srcs = sorted((FIRMWARE / "hal" / "cortex_m").glob("*.c")) + sorted(hal_dir.glob("*.c")) + [info_c]
        variant_objs[variant] = []
        for src in srcs:
            o = vdir / f"{src.stem}.o"
            variant_objs[variant].append(o)
            jobs.append((src, o, [*cpu, *CFLAGS, *_hal_flags(board), *inc]))

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(lambda j: _compile(*j), jobs))

    # Link for the board, trying the profile's arena regions in order; the
    # simulator link uses the region that worked.
    images: dict[str, LinkedImage] = {}
    stem = {"board": board.name, "sim": f"{board.name}-sim"}
    regions_of = {"board": board.regions, "sim": sim_regions(board)}
    arena_choice = None
    for arena in board.profile.arena:
        script = out / f"{stem['board']}.ld"
        script.write_text(linker_script(board, regions_of["board"], arena, "board", scratch_bytes))
        ok, err = _link(common_objs + variant_objs["board"], script, out / f"{stem['board']}.elf", cpu)
        if ok:
            arena_choice = arena
            break
        overflowed = {r for r, _ in _OVERFLOW.findall(err)} | {r for _, r in _NOFIT.findall(err)}
        if not overflowed:
            raise UserError(f"firmware does not link: {_first_error(err)}")
        if arena not in overflowed or arena == board.profile.arena[-1]:
            # Another arena region would not help, or none is left.
            raise UserError(_overflow_message(err, board, arena, model))

    for variant in ("board", "sim"):
        script = out / f"{stem[variant]}.ld"
        elf = out / f"{stem[variant]}.elf"
        if variant == "sim":
            script.write_text(linker_script(board, regions_of["sim"], arena_choice, "simulator",
                                            scratch_bytes))
            ok, err = _link(common_objs + variant_objs["sim"], script, elf, cpu)
            if not ok:
                raise UserError(_overflow_message(err, board, arena_choice, model)
                                or f"simulator firmware does not link: {_first_error(err)}")
        write_flash_check(elf)
        if variant == "board" and board.qspi:
            region = board.regions[board.profile.rodata]
            early = boot_reads(elf, region)
            if early:
                raise UserError(f"the boot code reads region {region.name} before the HAL has mapped the "
                                f"QSPI flash ({', '.join(early[:3])}); keep constants out of "
                                f"hal_early_init (firmware/hal/{board.family})")
        usage = region_usage(elf, regions_of[variant], board.profile.text)
        images[variant] = LinkedImage(variant, elf, script, elf.with_suffix(".map"),
                                      regions_of[variant], usage)

    bin_path, hex_path = out / f"{board.name}.bin", out / f"{board.name}.hex"
    # One BIN per flash: with the constants in another flash (QSPI), a single
    # BIN would span the gap between them (2 GB from 0x08000000 to 0x90000000).
    constants = [".rodata", ".tf_check"]
    bins = {bin_path: []}
    if board.profile.rodata != board.profile.text:
        bins = {bin_path: [f"--remove-section={s}" for s in constants],
                out / f"{board.name}-{board.profile.rodata}.bin": [f"--only-section={s}" for s in constants]}
    for fmt, path, sections in [("ihex", hex_path, []), *(("binary", p, s) for p, s in bins.items())]:
        r = _run([OBJCOPY, "-O", fmt, *sections, str(images["board"].elf), str(path)], "objcopy")
        if r.returncode != 0:
            raise UserError(f"objcopy failed: {_first_error(r.stderr)}")
    build = FirmwareBuild(board, model, arena_choice, images["board"], images["sim"], bin_path, hex_path,
                          channels="rgb" if not rgb_size else channels, channel_scratch_bytes=scratch_bytes)
    build.outputs = [images["board"].elf, *bins, hex_path, images["sim"].elf]
    return build


def run_channels(run) -> str:
    """The run's input channels ([model] channels in config.toml; "rgb" without one)."""
    from tinyfake.data.channels import channels_of

    return channels_of(run.read_config() if run.config.exists() else None)


def firmware_inputs(run, board: Board) -> dict:
    """What a run's firmware is made from (tinyfake.provenance): the compiled
    model, its .tflite (the self-test vector), the board and the firmware's
    own sources, C and the Python that writes its linker scripts."""
    sources = [p for p in FIRMWARE.rglob("*") if p.suffix in (".c", ".h", ".S", ".s")]
    sources += [Path(__file__).parent / f for f in ("build.py", "linker.py", "boards.py", "selftest.py")]
    return {**{f"gen/{p.name}": p for p in sorted(run.gen.glob("*")) if p.is_file()},
            "model_int8.tflite": run.tflite,
            "board": hashlib.sha256(repr(board).encode()).hexdigest(),
            "firmware sources": tree_digest(sources)}


def why_firmware_stale(run, board: Board, **kw) -> str | None:
    """None when run/fw holds `board`'s firmware made from what the run holds now."""
    return run.manifest.why_stale(f"firmware {board.name}", firmware_inputs(run, board),
                                  {"channels": run_channels(run), **kw})


def build_for_run(run, board: Board | str, **kw) -> FirmwareBuild:
    """Build firmware for a run directory: `run/gen` → `run/fw/<board>.*`,
    recorded in the run's manifest."""
    board = load_board(board) if isinstance(board, str) else board
    channels = run_channels(run)
    stage = f"firmware {board.name}"
    with run.lock():
        run.manifest.forget(stage)
        fw = build_firmware(run.gen, board, run.fw, tflite=run.tflite, channels=channels, **kw)
        run.manifest.record(stage, firmware_inputs(run, board), {"channels": channels, **kw}, fw.outputs)
    return fw
