"""The wheel is tinyfake without the checkout: it carries the firmware's C
sources and the board files, declares its pinned dependencies, and an
installed copy, run from another folder, compiles a model, builds its
firmware and runs it in QEMU."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tinyfake.compiler.modelbuilder import T, build

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".git").exists(), reason="builds the wheel from a git checkout")


def _pip(*args, cwd):
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout's files (no stale build/ leftovers)."""
    tmp = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (tmp / "src" / f).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "src" / f).write_bytes((REPO / f).read_bytes())
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), ".", cwd=tmp / "src")
    (whl,) = (tmp / "dist").glob("tinyfake-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """Runs `python -m tinyfake ...` from the installed wheel, in an empty folder."""
    tmp = tmp_path_factory.mktemp("installed")
    _pip("install", "--no-deps", "--target", str(tmp / "site"), str(wheel), cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp / "site")}

    def tinyfake(*args):
        return subprocess.run([sys.executable, "-m", "tinyfake", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
    where = subprocess.run([sys.executable, "-c", "import tinyfake; print(tinyfake.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(tmp / "site")), where  # the wheel's copy, not the checkout
    return tinyfake, work


def test_the_wheel_carries_the_firmware_the_boards_and_the_pins(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "firmware", "boards"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.split()
    missing = [f for f in tracked if f"tinyfake/_tree/{f}" not in names]
    assert tracked and not missing, missing
    assert {"tinyfake/harness/plugin/insncount.c", "tinyfake/train/recipes/dfdc.toml"} <= names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    declared = {ln.split(":", 1)[1].strip() for ln in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
                if ln.startswith("Requires-Dist:")}
    pinned = {ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()} - {""}
    assert declared == pinned


def test_the_installed_wheel_lists_boards_compiles_builds_and_simulates(installed):
    tinyfake, work = installed
    boards = tinyfake("boards")
    assert boards.returncode == 0 and "stm32h743" in boards.stdout, boards.stderr
    shape = (1, 4, 4, 3)
    (work / "m.tflite").write_bytes(build([("HARD_SWISH", [0], [1], {})],
                                          [T(shape, "int8", scale=0.05, zp=3), T(shape, scale=0.03, zp=-20)],
                                          [0], [1]))
    for args in (["compile", "m.tflite", "-o", "gen"],
                 ["firmware", "--board", "mps2-an500", "--gen", "gen", "--tflite", "m.tflite", "--out", "fw"],
                 ["simulate", "--board", "mps2-an500", "--elf", "fw/mps2-an500-sim.elf", "--repeat", "1"]):
        r = tinyfake(*args)
        assert r.returncode == 0, f"tinyfake {' '.join(args)}: {r.stderr[-800:]}"
    assert "self-test: ok" in r.stdout


def test_a_project_board_is_found_and_wins(installed):
    """A board in the current folder's boards/ is listed, and shadows the built-in one."""
    tinyfake, work = installed
    (work / "boards").mkdir()
    text = (REPO / "boards" / "mps2-an500.toml").read_text()
    (work / "boards" / "myboard.toml").write_text(text.replace('name = "mps2-an500"', 'name = "myboard"'))
    r = tinyfake("boards")
    assert r.returncode == 0 and "myboard" in r.stdout and "stm32h743" in r.stdout
    assert f"from {work / 'boards' / 'myboard.toml'}" in r.stdout
    title = 'title = "ARM MPS2+ AN500 (Cortex-M7), QEMU mps2-an500"'
    assert title in text
    (work / "boards" / "mps2-an500.toml").write_text(text.replace(title, 'title = "our AN500"'))
    r = tinyfake("boards")
    assert "mps2-an500   our AN500" in r.stdout and "mps2-an500   ARM" not in r.stdout
