"""The install path: the setup script is idempotent and pins what it installs."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-test.txt"])
def test_requirements_are_all_pinned(name):
    lines = [l.split("#")[0].strip() for l in (ROOT / name).read_text().splitlines()]
    specs = [l for l in lines if l]
    assert specs, f"{name} is empty"
    unpinned = [s for s in specs if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", s)]
    assert not unpinned, f"unpinned requirements in {name}: {unpinned}"


def test_setup_script_is_idempotent_and_fast_when_done():
    # The test suite runs after setup; a second run must find everything in
    # place and install nothing.
    out = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "installing" not in out.stdout
    assert "setup: done" not in out.stdout  # nothing was (re)installed


def test_every_command_loads_and_unknown_is_rejected():
    from tinyfake.cli import COMMANDS

    for name in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "tinyfake", name, "--help"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, f"`tinyfake {name} --help` failed: {out.stderr[-500:]}"
    bad = subprocess.run([sys.executable, "-m", "tinyfake", "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2
    from tinyfake import __version__
    version = subprocess.run([sys.executable, "-m", "tinyfake", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert version.returncode == 0 and version.stdout.strip() == f"tinyfake {__version__}"


def test_the_parser_imports_no_heavy_library():
    # Every `--help` builds the whole parser: with torch or sklearn imported up
    # front it took 3-5 s here; without them it takes well under one (README).
    heavy = ("torch", "sklearn", "scipy", "tensorflow", "onnx", "matplotlib", "tflite_micro")
    code = ("import sys; from tinyfake.cli import make_parser; make_parser(); "
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "", f"building the parser imported {out.stdout.strip()}"
