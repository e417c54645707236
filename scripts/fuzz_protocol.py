"""Fuzz the firmware's command parser: the real firmware/app/protocol.c on a
host stand-in board (firmware/host/), under libFuzzer with AddressSanitizer
and UBSan (Debian's clang-14, installed by scripts/setup.sh).

The target (firmware/host/fuzz_protocol.c) also checks that every reply is
framed with a correct CRC and that no command runs the model more than the
work cap allows (the hang oracle). `make test` runs it for 60 s from the
committed seed corpus (tests/test_fuzz.py); `make fuzz` runs it longer and
records the figures:

    .venv/bin/python scripts/fuzz_protocol.py --seconds 600 --write   # bench/results/fuzz.json
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
HOST = FIRMWARE / "host"
CORPUS = HOST / "corpus"
SOURCES = [FIRMWARE / "app" / "protocol.c", FIRMWARE / "app" / "crc32.c", HOST / "host_board.c"]
INCLUDES = [HOST, FIRMWARE / "app", FIRMWARE / "hal"]
CLANG = "clang-14"
RESULT = REPO / "bench" / "results" / "fuzz.json"


def build(out: Path) -> Path:
    """The fuzz target, compiled with libFuzzer, ASan and UBSan."""
    if shutil.which(CLANG) is None:
        sys.exit(f"fuzz_protocol: {CLANG} not found; run `make setup` (installs clang-14 libclang-rt-14-dev)")
    exe = out / "fuzz_protocol"
    cmd = [CLANG, "-g", "-O1", "-Wall", "-Werror", "-fsanitize=fuzzer,address,undefined",
           "-fno-sanitize-recover=undefined", *(f"-I{p}" for p in INCLUDES),
           *map(str, SOURCES), str(HOST / "fuzz_protocol.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def run(exe: Path, seconds: int, work: Path) -> dict:
    """Fuzz for `seconds` from a copy of the seed corpus; the final stats.
    A crash, a sanitizer report or a failed oracle ends with crashes=1 and
    the reproducer's path."""
    corpus = work / "corpus"
    shutil.copytree(CORPUS, corpus, dirs_exist_ok=True)
    r = subprocess.run([str(exe), f"-max_total_time={seconds}", "-print_final_stats=1",
                        "-timeout=5", f"-artifact_prefix={work}/", "-max_len=4096", str(corpus)],
                       capture_output=True, text=True)
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", r.stderr))
    crash = sorted(str(p) for p in work.glob("crash-*")) + sorted(str(p) for p in work.glob("timeout-*"))
    return {"target": "protocol", "seconds": seconds, "executions": int(stats.get("number_of_executed_units", 0)),
            "exec_per_sec": int(stats.get("average_exec_per_sec", 0)), "crashes": int(r.returncode != 0),
            "reproducers": crash, "corpus_files": len(list(corpus.iterdir())),
            "log_tail": r.stderr.strip().splitlines()[-12:] if r.returncode else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--write", action="store_true", help=f"record the result in {RESULT.relative_to(REPO)}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinyfake-fuzz-") as tmp:
        result = run(build(Path(tmp)), args.seconds, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.write:
        RESULT.write_text(json.dumps({k: v for k, v in result.items() if k != "log_tail"}, indent=2) + "\n")
    sys.exit(1 if result["crashes"] else 0)


if __name__ == "__main__":
    main()
