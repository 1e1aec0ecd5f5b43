"""`make load` in miniature: the real script, its own product processes and database, a few seconds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_mixed_load_answers_every_request_and_loses_no_write() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load.py"), "--duration", "5", "--tenants", "2", "--clients", "60",
         "--users", "4"],
        capture_output=True, text=True, timeout=150, cwd=ROOT, env=os.environ.copy(),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0, (result["errors_by_kind"], run.stderr[-3000:])
    assert result["requests"] >= 20
    assert result["writes_acknowledged"] > 0
    assert result["lost_writes"] == 0
    assert result["writes_found"] == result["writes_acknowledged"]
    assert result["unexpected_writes"] == 0
    # Concurrent writes on the same cards (the hot set) leave every client's totals equal to a
    # recount (test_concurrent_writes_on_one_client_keep_its_metrics proves the lock deterministically).
    assert result["metric_mismatches"] == 0
    assert result["latency_ms"]["login"]["n"] >= 4  # every virtual user logged in through the form
    # where the CPU went, per role: the web's worker processes are counted (it read 0 with two)
    cores = result["cpu_cores"]
    assert set(cores) == {"web", "worker", "postgres", "load_generator"}
    assert cores["web"] > 0.05 and cores["load_generator"] > 0 and cores["postgres"] > 0
    assert result["cpu_ms_per_request"]["web"] > 0
    # The generator shares the two cores with the server it measures, so it must stay cheap: its CPU per
    # request is a small part of the web's (aiohttp: about a tenth here; httpx took about 40%).
    per_request = result["cpu_ms_per_request"]
    assert per_request["load_generator"] < per_request["web"] / 4, per_request
