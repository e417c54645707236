"""Build generated C on the host (gcc) and run it through ctypes.

Used by the tests and the benchmark to compare the generated code with the
TFLite Micro oracle. Builds are cached by the hash of every source and flag,
so repeated runs reuse the shared library.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyfake.paths import FIRMWARE_DIR, SOURCE_ROOT
from tinyfake.errors import UserError

CACHE = Path(os.environ.get("TINYFAKE_HOSTBUILD_CACHE", Path(tempfile.gettempdir()) / "tinyfake-hostbuild"))
RUNTIME = FIRMWARE_DIR / "runtime"
ARM_FLAGS = ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-mthumb", "-O2",
             "-Wall", "-Wextra", "-Werror", "-std=c99"]


def _sources(gen_dir: Path) -> list[Path]:
    listed = [SOURCE_ROOT / line.strip() for line in (gen_dir / "sources.txt").read_text().splitlines()
              if line.strip()]
    return [gen_dir / "model.c"] + listed


def build_host(gen_dir: str | Path, dsp: bool = False, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile gen_dir's model with the runtime into a shared library (cached).

    dsp=True builds the Cortex-M7 kernels with the C emulation of the DSP
    intrinsics (cortex_m/tfk_simd.h), so that path runs on the host too."""
    gen_dir = Path(gen_dir)
    srcs = _sources(gen_dir)
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
             f"-I{RUNTIME}", f"-I{gen_dir}", f"-DTFK_USE_DSP={1 if dsp else 0}", *extra_flags]
    h = hashlib.sha256(" ".join(flags).encode())
    for p in srcs + [RUNTIME / "tfk.h", RUNTIME / "cortex_m" / "tfk_simd.h", gen_dir / "model.h"]:
        if p.exists():
            h.update(p.read_bytes())
    lib = CACHE / f"model-{h.hexdigest()[:20]}.so"
    if lib.exists():
        return lib
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    _run(["gcc", *flags, "-o", str(tmp), *map(str, srcs)])
    os.replace(tmp, lib)
    return lib


def build_host_many(gen_dirs: list[Path], dsp: bool = False) -> tuple[Path, list[str]]:
    """Link several generated models into one shared library (one gcc call per
    model.c, the runtime once). Model k's entry point is `model_invoke_k`."""
    gen_dirs = [Path(g) for g in gen_dirs]
    base = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", f"-I{RUNTIME}",
            f"-DTFK_USE_DSP={1 if dsp else 0}"]
    runtime = sorted({s for g in gen_dirs for s in _sources(g)[1:]})
    h = hashlib.sha256(" ".join(base).encode())
    for p in [g / "model.c" for g in gen_dirs] + runtime + [RUNTIME / "tfk.h", RUNTIME / "cortex_m" / "tfk_simd.h"]:
        if p.exists():
            h.update(p.read_bytes())
    lib = CACHE / f"many-{h.hexdigest()[:20]}.so"
    symbols = [f"model_invoke_{k}" for k in range(len(gen_dirs))]
    if lib.exists():
        return lib, symbols
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        objs = []
        for k, g in enumerate(gen_dirs):
            obj = Path(tmp) / f"m{k}.o"
            _run(["gcc", *base, f"-I{g}", f"-Dmodel_invoke={symbols[k]}", "-c", str(g / "model.c"), "-o", str(obj)])
            objs.append(obj)
        rt_objs = []
        for i, src in enumerate(runtime):
            obj = Path(tmp) / f"rt{i}.o"
            _run(["gcc", *base, "-c", str(src), "-o", str(obj)])
            rt_objs.append(obj)
        tmp_lib = lib.with_suffix(f".{os.getpid()}.tmp")
        _run(["gcc", "-shared", "-o", str(tmp_lib), *map(str, objs + rt_objs)])
        os.replace(tmp_lib, lib)
    return lib, symbols


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{r.stderr}")


class HostModel:
    """A host build of a generated model: `run(int8 input) -> int8 output`."""

    def __init__(self, lib: Path, input_bytes: int, output_bytes: int, symbol: str = "model_invoke"):
        self._lib = ctypes.CDLL(str(lib))
        self._fn = getattr(self._lib, symbol)
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._fn.restype = ctypes.c_int
        self.input_bytes, self.output_bytes = input_bytes, output_bytes

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
        if x.size != self.input_bytes:
            raise ValueError(f"input has {x.size} values, model wants {self.input_bytes}")
        # guard bytes after the output and a copy of the input catch kernels
        # that write out of bounds or into the caller's const input
        guard = 64
        y = np.full(self.output_bytes + guard, 0x5A, dtype=np.uint8).view(np.int8)
        x_before = x.copy()
        rc = self._fn(x.ctypes.data, y.ctypes.data)
        if rc != 0:
            raise RuntimeError(f"model_invoke returned {rc}")
        if (y[self.output_bytes:] != 0x5A).any():
            raise RuntimeError("model_invoke wrote past the end of the output buffer")
        if not np.array_equal(x, x_before):
            raise RuntimeError("model_invoke modified its const input")
        return y[:self.output_bytes].copy()


def arm_object_sizes(gen_dir: str | Path, flags: tuple[str, ...] = ()) -> dict[str, int]:
    """Compile model.c + runtime for Cortex-M7 and sum section sizes of the objects.

    Returns {"text": code bytes, "rodata": constant bytes (weights, tables,
    params), "bss": static RAM (the arena)}."""
    gcc = shutil.which("arm-none-eabi-gcc")
    size_tool = shutil.which("arm-none-eabi-size")
    if not gcc or not size_tool:
        raise UserError("arm-none-eabi-gcc is not installed; run scripts/setup.sh")
    gen_dir = Path(gen_dir)
    totals = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    with tempfile.TemporaryDirectory() as tmp:
        objs = []
        for i, src in enumerate(_sources(gen_dir)):
            obj = Path(tmp) / f"{i}_{src.stem}.o"
            cmd = [gcc, *ARM_FLAGS, *flags, "-ffunction-sections", "-fdata-sections",
                   f"-I{RUNTIME}", f"-I{gen_dir}", "-c", str(src), "-o", str(obj)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"arm build failed:\n{' '.join(cmd)}\n{r.stderr}")
            objs.append(obj)
        r = subprocess.run([size_tool, "-A", *map(str, objs)], capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                sec = parts[0]
                for key in totals:
                    if sec == f".{key}" or sec.startswith(f".{key}."):
                        totals[key] += int(parts[1])
    return totals
