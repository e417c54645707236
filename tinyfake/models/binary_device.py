"""Device check of the binary kernels and the FFT/LBP channel code on the
Cortex-M7 simulator (QEMU mps2-an500), and their instruction counts.

A small test firmware (firmware/binary/test/) runs a table of cases, each
with its inputs and the host reference's expected outputs compiled in:
- "channels": uint8 RGB face -> tfkc_channels (R, G, B, FFT, LBP), expected
  from tinyfake.data.channels.with_channels;
- "int8": a model compiled by tinyfake (tinyfake.compiler.compile_model) on
  one input: a binary layer (sign + +-1 CONV_2D, run as tfkb_pack +
  tfkb_conv) expected from the numpy reference tinyfake.compiler.binary,
  or any int8 model expected from the TFLite Micro wheel.
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
from tinyfake.firmware.boards import load_board
from tinyfake.firmware.linker import linker_script
from tinyfake.compiler.binary import binary_conv_ref
from tinyfake.paths import FIRMWARE_DIR, SOURCE_ROOT

FW = FIRMWARE_DIR
TEST_DIR = FW / "binary" / "test"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
BOARD = "mps2-an500"
CPU = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]
CFLAGS = [*CPU, "-O2", "-g", "-std=gnu11", "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Wextra", "-Werror"]
LDFLAGS = [*CPU, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]
SOURCES = [FW / "binary" / "channels.c", TEST_DIR / "binfw_main.c",
           FW / "app" / "crc32.c", FW / "app" / "markers.c",
           FW / "hal" / "cortex_m" / "startup.c", FW / "hal" / "mps2" / "hal_mps2.c"]
INCLUDES = [FW / "binary", TEST_DIR, FW / "app", FW / "hal", FW / "runtime"]

# kernels a case runs, in the firmware's order (one marker pair each)
KERNELS = {"channels": ("channels",), "int8": ("int8",)}


def tools_missing() -> list[str]:
    return [t for t in (CC, QEMU) if shutil.which(t) is None]


# --- cases -----------------------------------------------------------------

@dataclass
class Case:
    name: str
    kind: str                     # "channels" or "int8"
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)
    gen: Path | None = None       # int8: compiled model directory

    def kernels(self) -> tuple[str, ...]:
        return KERNELS[self.kind]


def binary_layer_cases(name: str, out_dir: Path, xs: list[np.ndarray], spec: dict) -> list[Case]:
    """One binary layer (tinyfake.export.binary_tflite.binary_layer_tflite(**spec))
    compiled with the binary kernels into out_dir, one case per int8 input
    (H, W, C) in xs; expected from the numpy reference."""
    from tinyfake.compiler import compile_model
    from tinyfake.export.binary_tflite import binary_layer_tflite

    data, layer = binary_layer_tflite(**spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "layer.tflite").write_bytes(data)
    cm = compile_model(out_dir / "layer.tflite", out_dir / "gen", name=name)
    if "tfkb_conv" not in [o.kernel for o in cm.ops]:
        raise ValueError(f"{name}: the compiler did not run the layer on the binary kernels")
    cases = [int8_case(f"{name}_{i}" if len(xs) > 1 else name, cm.out_dir, x,
                       binary_conv_ref(np.asarray(x, np.int8), layer)) for i, x in enumerate(xs)]
    for c in cases:
        c.ints["weight_bytes"] = cm.weight_bytes
    return cases


def random_layer_spec(rng: np.random.Generator, h: int, w: int, c: int, oc: int, k: int,
                      stride: int) -> dict:
    """A binary layer with random thresholds (the extremes 128 and -128, a
    channel always -1 or always +1, among them), weights and requantization
    whose int8 outputs use most of the range without saturating."""
    spread = np.sqrt(k * k * c)  # spread of the +-1 dot product
    th = rng.integers(-30, 30, c)
    if c >= 8:
        th[rng.permutation(c)[:2]] = [128, -128]
    return dict(in_shape=(h, w, c), in_q=(0.05, int(rng.integers(-20, 20))),
                th=th, w_sign=np.where(rng.random((oc, k, k, c)) < 0.5, 1, -1),
                wscale=rng.uniform(0.5, 1.5, oc) * 2.0 / spread,
                bias=rng.integers(-int(spread), int(spread) + 1, oc), stride=stride,
                out_q=(0.05, int(rng.integers(-10, 10))))


def random_layer_case(name: str, out_dir: Path, rng: np.random.Generator, h: int, w: int, c: int,
                      oc: int, k: int, stride: int) -> Case:
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    return binary_layer_cases(name, out_dir, [x], random_layer_spec(rng, h, w, c, oc, k, stride))[0]


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


def face_layer_cases(out_dir: Path, n_faces: int = 4, size: int = 64, seed: int = 0) -> list[Case]:
    """Real activations: faces through a BinaryNet's stem (float, quantized to
    int8 over their range) into its first binary conv, whose int8-form
    parameters come from the trained-form layer (binary_layer_params)."""
    import torch

    from tinyfake.export.binary_tflite import range_quant, binary_layer_params
    from tinyfake.models import build_model

    torch.manual_seed(seed)
    net = build_model("binary", size).eval()
    block = net.blocks[0]
    with torch.no_grad():
        block.conv3.threshold.uniform_(0.0, 0.3)  # a trained RSign is not all zero
        faces = torch.from_numpy(real_faces(size, n_faces)).permute(0, 3, 1, 2).float() / 255
        act = net.stem(faces).permute(0, 2, 3, 1).numpy()
    in_q = range_quant(act.min(), act.max())
    q = np.clip(np.round(act / in_q[0]) + in_q[1], -128, 127).astype(np.int8)
    spec = dict(in_shape=q.shape[1:], in_q=in_q, out_q=(0.05, 0),
                **binary_layer_params(block.conv3, block.bn3, in_q))
    return binary_layer_cases("face_b0conv3", out_dir, list(q), spec)


def perturbed_binary_net(size: int, seed: int = 0):
    """A BinaryNet (random weights) whose thresholds, BatchNorm statistics and
    scale signs are spread, so every sign, channel and branch matters."""
    import torch

    from tinyfake.models import build_model
    from tinyfake.models.binary import BinaryConv2d

    torch.manual_seed(seed)
    net = build_model("binary", size).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, BinaryConv2d):
                m.threshold.uniform_(-0.2, 0.3)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)
    return net


def network_cases(out_dir: Path, n_faces: int = 3, size: int = 32, seed: int = 0) -> list[Case]:
    """A whole BinaryNet (perturbed_binary_net) in its int8 form, compiled with
    the binary kernels; expected outputs from TFLite Micro on real faces."""
    from tinyfake.compiler import compile_model
    from tinyfake.export.binary_tflite import binary_tflite
    from tinyfake.export.tflm import tflm_outputs

    net = perturbed_binary_net(size, seed)
    faces = real_faces(size, n_faces)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "net.tflite"
    path.write_bytes(binary_tflite(net, faces.astype(np.float32) / 255))
    cm = compile_model(path, out_dir / "gen", name="binary_net")
    want = tflm_outputs(path, faces)
    x = (faces.astype(np.int16) - 128).astype(np.int8)
    return [int8_case(f"net{i}", cm.out_dir, x[i], want[i]) for i in range(n_faces)]


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
    out_bytes = scratch64 = grey = 16
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
        if c.kind == "channels":
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
            if line and line.endswith(".c") and SOURCE_ROOT / line not in runtime:
                runtime.append(SOURCE_ROOT / line)
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
