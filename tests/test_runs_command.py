"""`tinyfake runs`: the runs, how far each got, what is stale, and their AUCs."""
from __future__ import annotations

import json

from tinyfake.cli import main
from tinyfake.runs import RunDir

CONFIG = {"data": {"source": "default", "size": 32}, "model": {"arch": "phinet", "alpha": 0.25},
          "train": {"method": "supervised"}}


def _run(root, name, *files) -> RunDir:
    run = RunDir(root / name)
    run.write_config(CONFIG)
    for f in files:
        (run.root / f).write_bytes(b"x")
    return run


def test_runs_lists_stages_staleness_and_aucs(tmp_path, capsys):
    done = _run(tmp_path, "done", "model.pt", "model_int8.tflite")
    done.metrics.write_text(json.dumps({"test": {"auc": 0.81}}))
    (done.root / "eval.json").write_text(json.dumps({"metrics": {"int8_tflm": {"auc": 0.8}}}))
    done.manifest.record("export", done.export_inputs(), {"calib_images": 300}, [done.tflite])
    report = {"accuracy": {"auc": 0.75}, "verification": {"n": 4, "identical": 4}}
    done.result_path("report", limit=4).write_text(json.dumps(report))
    _run(tmp_path, "stopped", "checkpoint.pt")
    busy = _run(tmp_path, "busy")

    with busy.lock():
        assert main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    rows = {r["run"].split("/")[-1]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["done"]["stages"] == ["trained", "exported"]
    assert rows["done"]["test_auc"] == {"float": 0.81, "int8": 0.8,
                                        "device": {"auc": 0.75, "n": 4, "equal_to_tflite_micro": 4}}
    assert rows["done"]["model"] == "phinet a0.25 32px"
    assert rows["stopped"]["stages"][0].startswith("training stopped")
    assert rows["busy"]["stages"] == ["training now"]

    done.model_pt.write_bytes(b"retrained behind the pipeline's back")
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("done "))
    assert "exported (stale: model.pt changed)" in line and "0.810 / 0.800 / 0.750 (4/4 equal)" in line
    assert not busy.in_use()


def test_a_missing_runs_folder_is_one_line(tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no runs folder" in err and "\n" not in err
