"""The fault tests (tests/test_harness_faults.py: a damaging proxy between the
host and the firmware in QEMU) rerun with other seeds, summed: cases x runs,
faults injected, resets, results, wrong results. Every case must end in
correct results or one clear error; a wrong number fails the run.

    .venv/bin/python scripts/bench_faults.py [--runs 3] [--write]   # bench/results/faults.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "faults.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="seeds 0 .. runs-1")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.runs):
            log = Path(tmp) / f"seed{seed}.jsonl"
            env = dict(os.environ, TINYFAKE_FAULT_SEED=str(seed), TINYFAKE_FAULT_LOG=str(log))
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "tests/test_harness_faults.py"], cwd=REPO, env=env, capture_output=True, text=True)
            failed += r.returncode != 0
            print(r.stdout.strip().splitlines()[-1], flush=True)
            rows += [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
    summary = {"runs": args.runs, "fault_cases": len({r["case"] for r in rows}), "case_runs": len(rows),
               "faults_injected": sum(r["injected"] for r in rows), "resets": sum(r["resets"] for r in rows),
               "results": sum(r["results"] for r in rows), "wrong_results": sum(r["wrong"] for r in rows),
               "failed_runs": failed,
               "note": "cases that count what they injected (the proxy's damaged bytes and QEMU resets); "
                       "the other fault tests (dead link, forged replies, watchdog, damaged flash, other "
                       "firmware, boot loop) assert their one clear error or result directly"}
    print(json.dumps(summary, indent=1))
    if args.write:
        RESULT.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if failed or summary["wrong_results"] else 0


if __name__ == "__main__":
    sys.exit(main())
