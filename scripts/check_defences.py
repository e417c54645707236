"""Prove that every defence of the serial link and of the run directory's
provenance is tested: remove each one in
a scratch copy of the repository and run the tests named for it; each
removal must make at least one of them fail. Fails (exit 1) when a removal
goes unnoticed, when the tests fail with nothing removed, or when an edit no
longer applies (the code moved: update DEFENCES).

    .venv/bin/python scripts/check_defences.py [--only NAME ...] [--write]

`--write` records the table in bench/results/defences.json; the README's
"Reliability" section summarizes it. tests/test_defences.py runs this in
`make test`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "defences.json"
PROTOCOL_C = "firmware/app/protocol.c"
HOST = "tinyfake/harness/protocol.py"
PARSER = "tests/test_device_parser.py"
FAULTS = "tests/test_harness_faults.py"
PROVENANCE = "tests/test_provenance.py"


@dataclass(frozen=True)
class Defence:
    name: str
    edits: tuple[tuple[str, str, str], ...]   # (file, text, what it becomes without the defence)
    tests: tuple[str, ...]                     # pytest node ids: at least one must fail


DEFENCES = [
    Defence("device: line CRC check", (
        (PROTOCOL_C, "crc32_update(0, line, star - 1) != want) {", "0) {"),),
        (f"{PARSER}::test_nacks_name_the_command_they_answer",)),
    Defence("device: input CRC check before an inference", (
        (PROTOCOL_C, "if (have != want) {", "if (0) {"),),
        (f"{PARSER}::test_input_crc_mismatch_runs_nothing",)),
    Defence("device: NUL and control bytes are syntax errors", (
        (PROTOCOL_C, "if (text[i] < ' ' || text[i] > '~') {", "if (0) {"),),
        (f"{PARSER}::test_malformed_lines_are_syntax_errors_and_change_nothing",)),
    Defence("device: empty fields (extra spaces) are syntax errors", (
        (PROTOCOL_C, "if (*s == ' ' || *s == 0 || n == MAX_FIELDS) return -1;",
         "if (n == MAX_FIELDS) return -1;"),),
        (f"{PARSER}::test_malformed_lines_are_syntax_errors_and_change_nothing",)),
    Defence("device: stray arguments refused (EXIT 5 junk)", (
        (PROTOCOL_C, "if (nargs != 1 || !parse_u32(arg[0], &code) || code > 255) {",
         "if (nargs < 1 || !parse_u32(arg[0], &code) || code > 255) {"),),
        (f"{PARSER}::test_stray_or_missing_arguments_are_refused",)),
    Defence("device: session binding (another sid: notyours)", (
        (PROTOCOL_C, 'if (sid != session) { reply_err("notyours"); return; }', ""),),
        (f"{PARSER}::test_one_session_at_a_time",)),
    Defence("device: one session at a time (busy)", (
        (PROTOCOL_C, "if (session && session != sid && nargs == 0) {", "if (0) {"),),
        (f"{PARSER}::test_one_session_at_a_time",)),
    Defence("device: a reset clears the session", (
        (PROTOCOL_C, "    session = 0;\n    memset(loaded", "    memset(loaded"),),
        (f"{PARSER}::test_a_reset_ends_the_session",)),
    Defence("device: BENCH count cap", (
        (PROTOCOL_C, "|| n == 0 || n > TF_BENCH_MAX) {", "|| n == 0) {"),),
        (f"{PARSER}::test_bench_is_capped_in_count", "tests/test_fuzz.py")),
    Defence("device: BENCH time cap", (
        (PROTOCOL_C, "while (done < n && total < budget) {", "while (done < n) {"),),
        (f"{PARSER}::test_bench_is_capped_in_time",)),
    Defence("device: binary LOAD frame CRC check", (
        (PROTOCOL_C, "crc32_update(0, line, line_len - 4) != get_u32le(line + line_len - 4)) {", "0) {"),),
        (f"{PARSER}::test_a_damaged_frame_is_nacked_with_its_seq_and_loads_nothing",)),
    Defence("device: binary LOAD frames bound to the session", (
        (PROTOCOL_C, "if (!session || sid != session) {", "if (0) {"),),
        (f"{PARSER}::test_frames_are_held_to_the_session_and_the_input",)),
    Defence("device: binary LOAD frames bound to the input tensor", (
        (PROTOCOL_C, "if (off > TFK_LOAD_BYTES || n > TFK_LOAD_BYTES - off) {", "if (0) {"),),
        (f"{PARSER}::test_frames_are_held_to_the_session_and_the_input",)),
    Defence("device: UART overrun NACK", (
        (PROTOCOL_C, 'if (line_lost) { nack("overrun"); return; }', ""),),
        (f"{PARSER}::test_an_overrun_is_nacked_and_not_executed",)),
    Defence("device: flash check at boot", (
        (PROTOCOL_C, "flash_ok = flash_crc == flash_crc_expected();", "flash_ok = 1;"),),
        (f"{FAULTS}::test_damaged_flash_is_refused",)),
    Defence("device: no inference from a damaged flash", (
        (PROTOCOL_C, "else if (!flash_ok && (", "else if (0 && ("),),
        (f"{PARSER}::test_a_damaged_flash_refuses_inference", f"{FAULTS}::test_damaged_flash_is_refused")),
    Defence("device: watchdog", (
        ("firmware/app/main.c", "    hal_watchdog_start();\n", ""),),
        (f"{FAULTS}::test_watchdog_resets_a_hung_board",)),
    Defence("device: reset reason across a watchdog reset", (
        ("firmware/hal/mps2/hal_mps2.c", "    reset_note = NOTE_WATCHDOG;\n", ""),),
        (f"{FAULTS}::test_watchdog_resets_a_hung_board",)),
    Defence("host: CRC check of replies", (
        (HOST, "if zlib.crc32(text) != int(digits, 16) or any(", "if any("),),
        ("tests/test_protocol.py::test_damaged_lines_are_rejected",)),
    Defence("host: a reply must carry the pending seq (replays, stray NACKs)", (
        (HOST, "if len(parts) < 3 or parts[0] != seq:", "if len(parts) < 3:"),),
        (f"{FAULTS}::test_crc_valid_forged_replies_are_not_believed",)),
    Defence("host: a reply must carry the session id", (
        (HOST, "                if rsid != self.sid:\n                    self.stats.stray += 1\n"
               "                    continue\n", ""),),
        (f"{FAULTS}::test_crc_valid_forged_replies_are_not_believed",)),
    Defence("host: an inference's reply must name this input and model", (
        (HOST, "if expect and any(fields.get(k) != v for k, v in expect.items()):", "if False:"),),
        (f"{FAULTS}::test_crc_valid_forged_replies_are_not_believed",)),
    Defence("host: reset detection (BOOT line, nosession)", (
        (HOST, "                    self.stats.resets += 1\n                    raise BoardReset(text)",
         "                    continue"),
        (HOST, 'if detail == "nosession":', 'if False:')),
        (f"{FAULTS}::test_reset_mid_transfer", "tests/test_harness_qemu.py::test_commands_need_a_session")),
    Defence("host: model hash checked on every (re)connect", (
        (HOST, "if self.expected_hash and info.hash != self.expected_hash:", "if False:"),),
        (f"{FAULTS}::test_reset_into_other_firmware_is_caught",
         "tests/test_harness_qemu.py::test_wrong_model_is_refused")),
    Defence("host: the board's flash check is read", (
        (HOST, "if not info.flash_ok:", "if False:"),),
        (f"{FAULTS}::test_damaged_flash_is_refused",)),
    Defence("host: an ERR is not resent", (
        (HOST, '        raise DeviceError(f"device refused {name}: {detail}")', "        return"),),
        (f"{FAULTS}::test_syntax_errors_are_not_resent",)),
    Defence("pipeline: an artifact made from changed inputs is refused", (
        ("tinyfake/provenance.py", "        if reason is not None:\n            raise UserError", "        if False:\n            raise UserError"),),
        (f"{PROVENANCE}::test_a_consumer_refuses_a_stale_artifact_in_one_line",)),
    Defence("pipeline: a stage compares its inputs' hashes", (
        ("tinyfake/provenance.py", "            if made.inputs.get(name) != now:", "            if False:"),),
        (f"{PROVENANCE}::test_manifest_names_the_first_difference",)),
    Defence("pipeline: one writer per run (lock)", (
        ("tinyfake/runs.py", "            lock.acquire(timeout=0)", "            pass"),
        ("tinyfake/runs.py", "            lock.release()", "            pass")),
        (f"{PROVENANCE}::test_a_second_writer_fails_at_once_with_one_line",)),
    Defence("pipeline: retraining a run needs --force", (
        ("tinyfake/train/command.py", "    if not force and run_dir.holds_training():", "    if False:"),),
        (f"{PROVENANCE}::test_retraining_a_run_needs_force",)),
    Defence("pipeline: a fresh training clears the run's old artifacts", (
        ("tinyfake/runs.py", "            if old.name == LOCK:", "            if True:"),),
        (f"{PROVENANCE}::test_a_fresh_training_leaves_nothing_of_the_run_before",)),
    Defence("pipeline: a folder that is not a run is never cleared", (
        ("tinyfake/runs.py", "        if not ours and any(", "        if False and any("),),
        (f"{PROVENANCE}::test_training_into_a_folder_that_is_not_a_run_loses_nothing",)),
]


def scratch_copy(dst: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def apply(root: Path, edits) -> None:
    for rel, text, replacement in edits:
        path = root / rel
        src = path.read_text()
        if src.count(text) != 1:
            raise SystemExit(f"check_defences: {rel} has {src.count(text)} copies of {text!r}; "
                             "update DEFENCES")
        path.write_text(src.replace(text, replacement))


def run_tests(root: Path, tests) -> tuple[bool, str, float]:
    """(passed, failing test ids, seconds) of the tests in `root`."""
    env = dict(os.environ, PYTHONPATH=str(root))  # the scratch copy's tinyfake, not the editable one
    t0 = time.monotonic()
    r = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-m", "", *tests], cwd=root, env=env, capture_output=True, text=True)
    failed = [ln.split(" ", 1)[1].split(" - ")[0] for ln in r.stdout.splitlines()
              if ln.startswith(("FAILED ", "ERROR "))]
    return r.returncode == 0, failed, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="names (substrings) of the defences to check")
    ap.add_argument("--write", action="store_true", help=f"record the table in {RESULT.relative_to(REPO)}")
    args = ap.parse_args()
    chosen = [d for d in DEFENCES if not args.only or any(o in d.name for o in args.only)]
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="tinyfake-defences-") as tmp:
        base = Path(tmp) / "base"
        scratch_copy(base)
        tests = sorted({t for d in chosen for t in d.tests})
        passed, failed, secs = run_tests(base, tests)
        print(f"baseline: {len(tests)} tests {'pass' if passed else 'FAIL: ' + ', '.join(failed)} "
              f"({secs:.0f} s)", flush=True)
        if not passed:
            return 1
        for d in chosen:
            work = Path(tmp) / "removed"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(base, work, symlinks=True)
            apply(work, d.edits)
            passed, failed, secs = run_tests(work, d.tests)
            caught = not passed
            ok &= caught
            rows.append({"defence": d.name, "caught": caught, "failed_tests": failed,
                         "seconds": round(secs, 1)})
            print(f"{'caught' if caught else 'MISSED'}  {d.name}: "
                  f"{', '.join(failed) or 'every test still passes'} ({secs:.0f} s)", flush=True)
    print(f"{sum(r['caught'] for r in rows)}/{len(rows)} removals caught")
    if args.write and not args.only:
        RESULT.write_text(json.dumps({"defences": rows, "caught": sum(r["caught"] for r in rows),
                                      "total": len(rows)}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
