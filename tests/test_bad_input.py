"""User-caused errors across commands: each ends in one line that says what
to do, exit code 2, no traceback, before any expensive stage runs."""
import pytest

from tinyfake.cli import main
from tinyfake.runs import RunDir
from tinyfake.train import make_config


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinyfake: error: "), err
    return err[0]


@pytest.fixture
def untrained_run(tmp_path):
    """A run directory with a config but nothing built from it."""
    run = RunDir(tmp_path / "runs" / "r")
    run.root.mkdir(parents=True)
    run.write_config(make_config(None, 32))
    return run


def test_export_of_a_truncated_model_pt(capsys, untrained_run):
    untrained_run.model_pt.write_bytes(b"PK\x03\x04 truncated")
    err = one_line_error(capsys, ["export", str(untrained_run.root)])
    assert "not a readable model" in err and "retrain" in err


def test_flash_of_a_run_with_no_compiled_model(capsys, untrained_run):
    err = one_line_error(capsys, ["flash", "--run", str(untrained_run.root)])
    assert "has no compiled model (gen/)" in err and "tinyfake compile" in err


def test_simulate_an_elf_that_is_a_text_file(capsys, tmp_path):
    text = tmp_path / "notes.elf"
    text.write_text("not firmware\n")
    err = one_line_error(capsys, ["simulate", "--elf", str(text)])
    assert "is not an ELF file" in err


def test_eval_after_the_training_data_moved(capsys, tmp_path):
    import numpy as np
    npz = tmp_path / "faces.npz"
    np.savez(npz, x=np.zeros((8, 32, 32, 3), np.uint8), y=np.arange(8) % 2, group=np.arange(8))
    run = RunDir(tmp_path / "runs" / "r")
    run.root.mkdir(parents=True)
    run.write_config(make_config(str(npz), 32))
    npz.unlink()
    from tinyfake.train import splits_from_config
    with pytest.raises(Exception, match="is gone \\(moved or deleted\\)"):
        splits_from_config(run.read_config())


def test_a_reader_that_leaves_early_is_no_error():
    """`tinyfake boards --json | head -1`: the closed pipe ends the command
    quietly (exit 0), not with a BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first write
    try:
        out = subprocess.run([sys.executable, "-m", "tinyfake", "boards", "--json"], stdout=w,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert out.returncode == 0 and out.stderr == "", out.stderr
