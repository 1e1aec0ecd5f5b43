"""A real Citus cluster for the tests: a coordinator and two workers on free loopback ports, started
by `citus-cluster up` in a temporary directory and stopped after the module.

The script is found through KARTOTEKA_CITUS (its path), defaulting to ../shared/citus/citus-cluster
beside the repository. The tests are skipped, loudly, only where the script or PostgreSQL 15's binaries
are missing; on this project's CI machine both exist."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))


def script() -> Path | None:
    named = os.environ.get("KARTOTEKA_CITUS")
    candidates = [Path(named)] if named else [REPO.parent / "shared" / "citus" / "citus-cluster",
                                               Path("/work/shared/citus/citus-cluster")]
    return next((p for p in candidates if p.is_file()), None)


def skip_reason() -> str | None:
    if script() is None:
        return ("NO CITUS CLUSTER SCRIPT: set KARTOTEKA_CITUS to the path of citus-cluster "
                "(default ../shared/citus/citus-cluster); the Citus tests did not run")
    if not (PGBIN / "initdb").exists() or not (PGBIN / "pg_ctl").exists():
        return f"NO POSTGRESQL 15 BINARIES in {PGBIN}: the Citus tests did not run"
    return None


def _free_base() -> int:
    """A port P with P, P+1 and P+2 free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000:
            continue
        ok = True
        for port in (base + 1, base + 2):
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port))
                continue
            ok = False
        if ok:
            return base
    raise RuntimeError("no three free ports in a row")


def start(root: Path) -> str:
    """Start a cluster with its data under ROOT; returns the coordinator's URL (database kartoteka)."""
    path = script()
    assert path is not None, skip_reason()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - the nodes run as the postgres user (initdb refuses root)
    up = subprocess.run([BASH, str(path), "up", str(root / "nodes"), str(_free_base())],
                        capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    return up.stdout.strip().splitlines()[-1]


def stop(root: Path) -> None:
    path = script()
    if path is not None:
        subprocess.run([BASH, str(path), "down", str(root / "nodes")], capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """A cluster for one test module (test_citus.py is marked skipif where it cannot run)."""
    root = Path(tempfile.mkdtemp(prefix="kartoteka-citus-"))
    try:
        yield start(root)
    finally:
        stop(root)
