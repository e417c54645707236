"""scripts/check_defences.py in every `make test`: each defence of the serial
link, removed in a scratch copy, makes one of its tests fail."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_every_defence_removal_is_caught():
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "check_defences.py")],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "MISSED" not in r.stdout
