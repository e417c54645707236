"""The oracle: TFLite Micro's host interpreter from the `tflite-micro` wheel."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np


def _runtime():
    from tflite_micro.python.tflite_micro import runtime
    return runtime


class Oracle:
    """Run a .tflite (path or bytes) with TFLite Micro's reference kernels."""

    def __init__(self, model: str | Path | bytes, arena_size: int = 4 << 20):
        rt = _runtime()
        data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        self._ip = rt.Interpreter.from_bytes(bytes(data), arena_size=arena_size)

    def run(self, x: np.ndarray) -> np.ndarray:
        d = self._ip.get_input_details(0)
        self._ip.set_input(np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]), 0)
        self._ip.invoke()
        return np.array(self._ip.get_output(0)).reshape(-1)

    def arena_used(self) -> int:
        """Total arena bytes TFLite Micro used (RecordingMicroAllocator report).

        The report goes to the C stderr, so fd 2 is redirected while printing."""
        with tempfile.TemporaryFile(mode="w+b") as f:
            saved = os.dup(2)
            try:
                os.dup2(f.fileno(), 2)
                self._ip.print_allocations()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            text = f.read().decode(errors="replace")
        m = re.search(r"Arena allocation total (\d+) bytes", text)
        if not m:
            raise RuntimeError(f"no arena report from tflite-micro:\n{text}")
        return int(m.group(1))


def lcg_input(n: int, seed: int = 1) -> np.ndarray:
    """The benchmark input: x = x*1664525 + 1013904223 mod 2^32; v = int8(x >> 24)."""
    out = np.empty(n, dtype=np.int8)
    x = seed
    for i in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.uint8(x >> 24).view(np.int8)
    return out


def run_isolated(jobs: list[tuple[bytes, list[np.ndarray]]], retries: int = 5) -> list[list[np.ndarray]]:
    """Oracle outputs for many (model bytes, inputs) jobs, in a child process.

    The wheel occasionally segfaults while preparing some valid models
    (DepthwiseConvPrepare -> DeallocateTempTfLiteTensor, depending on memory
    layout). A crash must not take the test process down, so the work runs
    in a worker that is restarted (resuming at the failed job) when it dies."""
    import pickle
    import subprocess
    import sys

    results: list[list[np.ndarray]] = []
    attempts = 0
    with tempfile.TemporaryDirectory() as tmp:
        while len(results) < len(jobs):
            job_file, out_file = Path(tmp) / "jobs.pkl", Path(tmp) / "out.pkl"
            job_file.write_bytes(pickle.dumps(jobs[len(results):]))
            out_file.unlink(missing_ok=True)
            proc = subprocess.run([sys.executable, "-m", "tinyfake.compiler.oracle", str(job_file), str(out_file)],
                                  capture_output=True)
            done = []
            if out_file.exists():
                with open(out_file, "rb") as f:
                    while True:
                        try:
                            done.append(pickle.load(f))
                        except EOFError:
                            break
            results.extend(done)
            if proc.returncode != 0 and len(results) < len(jobs):
                attempts += 1
                if attempts > retries:
                    raise RuntimeError(f"tflite-micro worker keeps failing on job {len(results)}:\n"
                                       + proc.stderr.decode(errors="replace")[-2000:])
    return results


def _worker(job_path: str, out_path: str) -> None:
    import pickle
    jobs = pickle.loads(Path(job_path).read_bytes())
    with open(out_path, "wb") as f:
        for model, inputs in jobs:
            o = Oracle(model)
            pickle.dump([o.run(x) for x in inputs], f)
            f.flush()


if __name__ == "__main__":
    import sys
    _worker(sys.argv[1], sys.argv[2])
