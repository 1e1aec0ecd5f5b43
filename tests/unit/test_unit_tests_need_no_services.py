"""`pytest tests/unit` starts no PostgreSQL or Redis: importing the test kit has no side effects."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_testkit_connects_nowhere() -> None:
    code = ("import os; os.environ.pop('TEST_DATABASE_URL', None); os.environ['TEST_REDIS_URL'] = 'redis://0.0.0.0:1';"
            "import testkit; assert not testkit._env; print(testkit.DB_NAME)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("kt_test_")
