"""The README's numbers come from the committed benchmark results."""
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# (script writing the table, its results file, the README table's name)
TABLES = [("bench_engine", "engine", "engine"), ("bench_zoo", "zoo", "model-zoo"), ("bench_dfdc", "dfdc", "DFDC")]


@pytest.mark.parametrize("script, results, table_name", TABLES)
def test_readme_table_is_generated_from_its_results(script, results, table_name):
    spec = importlib.util.spec_from_file_location(f"{script}_for_readme", REPO / "scripts" / f"{script}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = json.loads((REPO / "bench" / "results" / f"{results}.json").read_text())
    readme = (REPO / "README.md").read_text()
    table = bench.table_markdown(doc)
    assert bench.readme_with_table(readme, table, bench.TABLE_BEGIN, bench.TABLE_END) == readme, \
        f"README's {table_name} table is stale: run scripts/{script}.py --readme"
