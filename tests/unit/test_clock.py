"""The one clock: pinned in a block, pinned for a process by KARTOTEKA_NOW, else the real time."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

from saas.core import clock


def test_frozen_pins_now_and_today_and_restores() -> None:
    real = clock.today()
    with clock.frozen(date(2028, 2, 29)) as at:
        assert clock.today() == date(2028, 2, 29) and clock.now() == at and at.tzinfo is UTC
        with clock.frozen("2027-12-31T23:30:00"):
            assert clock.now() == datetime(2027, 12, 31, 23, 30, tzinfo=UTC)
        assert clock.today() == date(2028, 2, 29)
    assert clock.today() in (real, date.fromordinal(real.toordinal() + 1))


def test_the_environment_pins_a_whole_process() -> None:
    out = subprocess.run([sys.executable, "-c", "from saas.core import clock; print(clock.today(), clock.timestamp())"],
                         env={"KARTOTEKA_NOW": "2027-01-01T00:00:00+00:00", "PATH": ""}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["2027-01-01", str(datetime(2027, 1, 1, tzinfo=UTC).timestamp())]


def test_no_module_reads_the_system_clock_directly() -> None:
    from pathlib import Path
    root = Path(clock.__file__).resolve().parent.parent
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") if p.name != "clock.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if any(call in line for call in ("date.today()", "datetime.now(", "time.time()", "utcnow()"))]
    assert offenders == []
