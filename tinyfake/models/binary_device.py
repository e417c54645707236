"""Device check of the binary kernels and the FFT/LBP channel code on the
Cortex-M7 simulator (QEMU mps2-an500), and their instruction counts.

A small test firmware (firmware/binary/test/) runs a table of cases, each
with its inputs and the host reference's expected outputs compiled in:
- "conv": int8 activation -> tfkb_pack -> tfkb_conv and tfkb_conv_m7,
  expected from tinyfake.models.binary (pack_activations, binary_conv_ref);
- "channels": uint8 RGB face -> tfkc_channels (R, G, B, FFT, LBP), expected
  from tinyfake.data.channels.with_channels;
- "int8": a compiled one-op int8 model (tinyfake.compiler.compile_model),
  expected from the TFLite Micro wheel (for per-layer instruction counts).
The firmware compares bit for bit, prints one `RUN` line per kernel call on
the UART and exits through semihosting with 0 only when all match. Every
kernel call sits between tf_mark_begin/tf_mark_end, so the instruction-count
plugin (tinyfake.harness.qemu.build_plugin) gives exact per-call counts.

The image is linked for the AN500 itself (board `mps2-an500`, linker script
from tinyfake.firmware.linker) with the shared Cortex-M startup and the
mps2 HAL, using the firmware's real compiler flags.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyfake.errors import UserError
from tinyfake.firmware.boards import REPO_ROOT, load_board
from tinyfake.firmware.linker import linker_script
from tinyfake.models.binary import (BIN_SHIFT, binary_conv_ref, pack_activations, pack_bits,
                                    words)

FW = REPO_ROOT / "firmware"
TEST_DIR = FW / "binary" / "test"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
BOARD = "mps2-an500"
CPU = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]
CFLAGS = [*CPU, "-O2", "-g", "-std=gnu11", "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Wextra", "-Werror"]
LDFLAGS = [*CPU, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]
SOURCES = [FW / "binary" / "tfk_binary.c", FW / "binary" / "cortex_m" / "tfk_binary_m7.c",
           FW / "binary" / "channels.c", TEST_DIR / "binfw_main.c",
           FW / "app" / "crc32.c", FW / "app" / "markers.c",
           FW / "hal" / "cortex_m" / "startup.c", FW / "hal" / "mps2" / "hal_mps2.c"]
INCLUDES = [FW / "binary", TEST_DIR, FW / "app", FW / "hal", FW / "runtime"]

# kernels a case runs, in the firmware's order (one marker pair each)
KERNELS = {"conv": ("pack", "conv", "conv_m7"), "channels": ("channels",), "int8": ("int8",)}


def tools_missing() -> list[str]:
    return [t for t in (CC, QEMU) if shutil.which(t) is None]


# --- cases -----------------------------------------------------------------

@dataclass
class Case:
    name: str
    kind: str                     # "conv", "channels" or "int8"
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)
    gen: Path | None = None       # int8: compiled model directory

    def kernels(self) -> tuple[str, ...]:
        return KERNELS[self.kind]


def conv_case(name: str, x: np.ndarray, threshold: np.ndarray, wbits: np.ndarray,
              mult: np.ndarray, bias: np.ndarray, stride: int, pad: int,
              shift: int = BIN_SHIFT) -> Case:
    """One binary conv on int8 x (H, W, C); expected values from the host reference."""
    x = np.ascontiguousarray(x, np.int8)
    h, w, c = x.shape
    oc, k = wbits.shape[0], wbits.shape[1]
    if wbits.shape != (oc, k, k, words(c)):
        raise ValueError(f"weights {wbits.shape} do not fit {c} input channels")
    want = binary_conv_ref(x, threshold, wbits, mult, bias, stride, pad, shift)
    arrays = dict(x=x, threshold=np.asarray(threshold, np.int16), wbits=np.asarray(wbits, np.uint32),
                  mult=np.asarray(mult, np.int32), bias=np.asarray(bias, np.int32),
                  xbits=pack_activations(x, threshold), want=want)
    return Case(name, "conv", arrays, dict(h=h, w=w, c=c, oc=oc, k=k, stride=stride, pad=pad,
                                           shift=shift, out_bytes=want.size))


def random_conv_case(name: str, rng: np.random.Generator, h: int, w: int, c: int, oc: int, k: int,
                     stride: int, pad: int | None = None) -> Case:
    """Random int8 input, thresholds, weights and requantization (unsaturated output)."""
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    threshold = rng.integers(-20, 20, c).astype(np.int16)
    wbits = pack_bits(rng.random((oc, k, k, c)) < 0.5)
    # d has a spread of about sqrt(k*k*c): scale it to about +-40 so the
    # output uses most of int8 without saturating
    base = 40.0 * (1 << BIN_SHIFT) / np.sqrt(k * k * c)
    mult = np.round(base * rng.uniform(0.5, 1.5, oc) * np.where(rng.random(oc) < 0.2, -1, 1))
    mult = mult.astype(np.int32)
    bias = rng.integers(-(1 << 24), 1 << 24, oc).astype(np.int32)
    return conv_case(name, x, threshold, wbits, mult, bias, stride, k // 2 if pad is None else pad)


def channels_case(name: str, rgb: np.ndarray) -> Case:
    """FFT/LBP channels of one uint8 RGB face (N, N, 3); expected from the numpy reference."""
    from tinyfake.data.channels import with_channels

    rgb = np.ascontiguousarray(rgb, np.uint8)
    n = rgb.shape[0]
    if rgb.shape != (n, n, 3):
        raise ValueError(f"channels need a square RGB image, got {rgb.shape}")
    return Case(name, "channels", dict(rgb=rgb, want5=with_channels(rgb[None])[0]), dict(n=n))


def int8_case(name: str, gen: Path, x: np.ndarray, want: np.ndarray) -> Case:
    """A compiled int8 model (gen/ from compile_model) on input x, expected output want."""
    want = np.asarray(want, np.int8).reshape(-1)
    return Case(name, "int8", dict(x=np.asarray(x, np.int8).reshape(-1), want=want),
                dict(out_bytes=want.size), gen=Path(gen))


def real_faces(size: int, n: int = 4) -> np.ndarray:
    """uint8 (n, size, size, 3): the skimage astronaut's face, then LFW faces (grey as RGB)."""
    from skimage import data
    from skimage.transform import resize

    faces = [resize(data.astronaut()[:256, 128:384], (size, size), anti_aliasing=True)]
    faces += [np.repeat(resize(f, (size, size))[..., None], 3, -1) for f in data.lfw_subset()[: n - 1]]
    return (np.clip(np.stack(faces), 0, 1) * 255).astype(np.uint8)


def face_conv_cases(n_faces: int = 4, size: int = 64, seed: int = 0) -> list[Case]:
    """Real activations: faces through a BinaryNet's int8-quantized stem, then the
    first block's two binary convs folded to integers (each fed the previous
    layer's device output), as tests/test_binary.py does on the host."""
    import torch

    from tinyfake.models import build_model
    from tinyfake.models.binary import fold_binary_conv

    torch.manual_seed(seed)
    net = build_model("binary", size).eval()
    faces = torch.from_numpy(real_faces(size, n_faces)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        act = net.stem(faces).permute(0, 2, 3, 1).numpy()
    s_in = float(act.max()) / 255
    q = np.clip(np.round(act / s_in) - 128, -128, 127).astype(np.int8)
    block, zp = net.blocks[0], -128
    cases = []
    for li, (conv, bn) in enumerate(((block.conv3, block.bn3), (block.conv1, block.bn1))):
        with torch.no_grad():
            conv.threshold.uniform_(0.0, 0.3)  # a trained RSign is not all zero
        layer = fold_binary_conv(conv, bn, s_in, zp, 0.05, 0)
        outs = []
        for fi, img in enumerate(q):
            c = conv_case(f"face{fi}_b0conv{'3' if li == 0 else '1'}", img, layer["threshold"],
                          layer["wbits"], layer["mult"], layer["bias"], layer["stride"], layer["pad"],
                          layer["shift"])
            cases.append(c)
            outs.append(c.arrays["want"])
        q, s_in, zp = np.stack(outs), 0.05, 0
    return cases


# --- firmware ----------------------------------------------------------------

_C_TYPES = {np.int8: "int8_t", np.uint8: "uint8_t", np.int16: "int16_t", np.int32: "int32_t",
            np.uint32: "uint32_t"}


def _ctype(a: np.ndarray) -> str:
    return _C_TYPES[a.dtype.type]


def write_vectors(cases: list[Case], out: Path) -> tuple[list[Path], dict[Path, str]]:
    """vectors.c (the case table, scratch buffers) and vectors.S (the data,
    .incbin of one .bin per array) in `out`; returns the sources and the
    function name given to each int8 model's model_invoke."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    data.mkdir(exist_ok=True)
    asm = ['/* Generated by tinyfake.models.binary_device; test vectors (read-only). */',
           '.syntax unified']
    externs, rows = [], []
    int8_fns = {}
    xwords = out_bytes = scratch64 = grey = 16
    for i, c in enumerate(cases):
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", c.name):
            raise ValueError(f"case name {c.name!r}: use letters, digits and _.+-")
        fields = {k: f"binfw_v{i}_{k}" for k in c.arrays}
        for k, a in c.arrays.items():
            a = np.ascontiguousarray(a)
            path = data / f"v{i}_{k}.bin"
            path.write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
            sym = fields[k]
            asm += [f'.section .rodata.{sym},"a"', ".balign 8", f".global {sym}",
                    f".type {sym}, %object", f"{sym}:", f'.incbin "{path}"', f".size {sym}, . - {sym}"]
            externs.append(f"extern const {_ctype(a)} {sym}[];")
        init = [f'.name = "{c.name}"']
        if c.kind == "conv":
            init.append(".kind = BINFW_CONV")
            init += [f".{k} = {c.ints[k]}" for k in ("h", "w", "c", "oc", "k", "stride", "pad",
                                                       "shift", "out_bytes")]
            init += [f".{k} = {fields[k]}" for k in ("x", "threshold", "wbits", "mult", "bias",
                                                       "xbits", "want")]
            xwords = max(xwords, c.ints["h"] * c.ints["w"] * words(c.ints["c"]))
            out_bytes = max(out_bytes, c.ints["out_bytes"])
        elif c.kind == "channels":
            n = c.ints["n"]
            init += [".kind = BINFW_CHANNELS", f".n = {n}", f".rgb = {fields['rgb']}",
                     f".want5 = {fields['want5']}", f".out_bytes = {5 * n * n}"]
            out_bytes = max(out_bytes, 5 * n * n)
            scratch64 = max(scratch64, 2 * n * n)
            grey = max(grey, n * n)
        elif c.kind == "int8":
            fn = int8_fns.setdefault(c.gen, f"binfw_int8_{len(int8_fns)}")
            init += [".kind = BINFW_INT8", f".invoke = {fn}", f".x = {fields['x']}",
                     f".want = {fields['want']}", f".out_bytes = {c.ints['out_bytes']}"]
            out_bytes = max(out_bytes, c.ints["out_bytes"])
        else:
            raise ValueError(f"unknown case kind {c.kind!r}")
        rows.append("    {" + ", ".join(init) + "},")
    decl_fns = [f"int {fn}(const int8_t *input, int8_t *output);" for fn in int8_fns.values()]
    vectors_c = "\n".join([
        "/* Generated by tinyfake.models.binary_device; do not edit. */",
        '#include "binfw.h"', "", *externs, *decl_fns, "",
        f"const binfw_case binfw_cases[{len(cases)}] = {{", *rows, "};",
        f"const int32_t binfw_n_cases = {len(cases)};", "",
        f"uint32_t binfw_xbits[{xwords}] __attribute__((aligned(8)));",
        f"int8_t binfw_out[{out_bytes}] __attribute__((aligned(8)));",
        f"int64_t binfw_scratch64[{scratch64}];",
        f"uint8_t binfw_grey[{grey}];", ""])
    (out / "vectors.c").write_text(vectors_c)
    (out / "vectors.S").write_text("\n".join(asm) + "\n")
    return [out / "vectors.c", out / "vectors.S"], int8_fns


def _compile(job: tuple[Path, Path, list[str]]) -> None:
    src, obj, flags = job
    r = subprocess.run([CC, *flags, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"{src.name} does not compile for Cortex-M7:\n{r.stderr.strip()[-3000:]}")


def build(cases: list[Case], out: Path, jobs: int = 2) -> Path:
    """Build the test firmware for `cases` into out/binfw.elf (AN500 addresses)."""
    missing = tools_missing()
    if CC in missing:
        raise UserError(f"{CC} not found; install gcc-arm-none-eabi and libnewlib-arm-none-eabi")
    out = Path(out)
    vec_srcs, int8_fns = write_vectors(cases, out)
    inc = [f"-I{p}" for p in INCLUDES]
    obj_dir = out / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    todo = [(s, obj_dir / f"{i:02d}_{s.stem}.o", [*CFLAGS, *inc])
            for i, s in enumerate(SOURCES + vec_srcs)]
    runtime: list[Path] = []
    for gen, fn in int8_fns.items():
        todo.append((gen / "model.c", obj_dir / f"{fn}.o",
                     [*CFLAGS, f"-I{gen}", *inc, f"-Dmodel_invoke={fn}"]))
        listing = gen / "sources.txt"
        for line in (listing.read_text().splitlines() if listing.exists() else []):
            line = line.split("#", 1)[0].strip()
            if line and line.endswith(".c") and REPO_ROOT / line not in runtime:
                runtime.append(REPO_ROOT / line)
    todo += [(s, obj_dir / f"rt_{s.stem}.o", [*CFLAGS, *inc]) for s in runtime]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(_compile, todo))
    board = load_board(BOARD)
    script = out / "binfw.ld"
    script.write_text(linker_script(board, board.regions, board.profile.arena[0], "simulator"))
    elf = out / "binfw.elf"
    r = subprocess.run([CC, *LDFLAGS, "-T", str(script), f"-Wl,-Map={out / 'binfw.map'}",
                        *[str(o) for _, o, _ in todo], "-lc", "-lgcc", "-o", str(elf)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"the binary test firmware does not link:\n{r.stderr.strip()[-3000:]}")
    return elf


# --- running -------------------------------------------------------------------

@dataclass
class Run:
    kernel: str
    case: str
    pair: int
    ok: bool
    line: str
    instructions: int | None = None   # marker-overhead corrected


@dataclass
class Result:
    returncode: int
    output: str
    runs: list[Run]
    done: bool
    overhead: int | None = None       # instructions of an empty marker pair

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.done and all(r.ok for r in self.runs)

    def failures(self) -> list[str]:
        return [r.line for r in self.runs if not r.ok]


_RUN = re.compile(r"^RUN (\d+) (\S+) (\S+) (ok|MISMATCH|ERROR)\b.*$", re.M)


def run(elf: Path, count_instructions: bool = False, timeout: float = 300.0) -> Result:
    """Run the firmware on QEMU mps2-an500 (-cpu cortex-m7); parse its UART output."""
    if shutil.which(QEMU) is None:
        raise UserError(f"{QEMU} not found; install qemu-system-arm")
    cmd = [QEMU, "-M", BOARD, "-cpu", "cortex-m7", "-display", "none", "-monitor", "none",
           "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
           "-icount", "shift=0", "-kernel", str(elf)]
    with tempfile.TemporaryDirectory(prefix="tinyfake-binfw-") as tmp:
        log = Path(tmp) / "insns.txt"
        if count_instructions:
            from tinyfake.harness.qemu import MARK_BEGIN, MARK_END, build_plugin
            from tinyfake.report.elf import Elf

            syms = Elf(elf).symbols()
            cmd += ["-plugin", f"{build_plugin()},begin=0x{syms[MARK_BEGIN]:x},"
                               f"end=0x{syms[MARK_END]:x},out={log}"]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"the binary test firmware did not finish within {timeout:.0f}s "
                            f"on QEMU; output so far:\n{(exc.stdout or '')[-2000:]}") from None
        counts = []
        if count_instructions and log.exists():
            counts = [int(ln.split()[1]) for ln in log.read_text().splitlines() if ln.strip()]
    text = p.stdout + (("\n" + p.stderr) if p.stderr.strip() else "")
    runs = [Run(m.group(3), m.group(2), int(m.group(1)), m.group(4) == "ok", m.group(0))
            for m in _RUN.finditer(p.stdout)]
    overhead = None
    if counts:
        overhead = counts[0]
        for r in runs:
            if r.pair < len(counts):
                r.instructions = counts[r.pair] - overhead
    return Result(p.returncode, text, runs, "\nDONE runs=" in "\n" + p.stdout, overhead)


def expected_runs(cases: list[Case]) -> list[tuple[str, str]]:
    return [(c.name, k) for c in cases for k in c.kernels()]
