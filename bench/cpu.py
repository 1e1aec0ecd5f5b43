"""Benchmark: the web process's own CPU per request, page by page, next to the bare page's.

Throughput under load (bench/pages.py) mixes the web process, PostgreSQL and the load generator on
the same cores; this one isolates what a page costs the web process: requests are sent one after
another on one keep-alive connection, and the server's CPU time (user + system, read from
/proc/<pid>/stat for the server and its children) is divided by their number. It is what to
profile against: a page at 0.06 of the bare page's req/s needs about 1/0.06 of its CPU.

Setup: bench/pages.py's company (the same kept database `kt_pages_<N>`, loaded if missing), its
member and API token, `saas web --workers 1` and the bare Litestar + Jinja page.
Pages: healthz, a signed-in page with no data (/account), a tenant 404, and bench/pages.py's pages.
Usage: python bench/cpu.py [--clients 1000000] [--requests 100] [--only page,page]; QUICK=1: 20,000
clients, 30 requests. Progress on stderr, JSON as the last stdout line: per page cpu_ms, wall_ms and
cpu_ratio (bare page's CPU / the page's).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import pages as load
from bench.tenants import log, quick_defaults

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process group (uvicorn and any children: the server was started as a
    session leader), in seconds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
            continue
        if int(fields[2]) == pid:  # the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def measure(pid: int, url: str, spec: dict, n: int) -> dict[str, float]:
    """Per request: the server's CPU ms and the wall ms, over n requests after 5 warm-up ones."""
    path = spec.get("path", "")
    base = url[: len(url) - len(path)] if path and url.endswith(path) else url
    with httpx.Client(headers=spec.get("headers", {}), timeout=60) as client:
        def one() -> None:  # a write goes to a random client (load.one_path)
            r = (client.post(base + load.one_path(spec), content=spec["body"]) if spec.get("method") == "POST"
                 else client.get(url))
            if r.status_code >= 400 and r.status_code != spec.get("status"):
                raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:300]}")

        for _ in range(5):
            one()
        cpu, started = cpu_seconds(pid), time.perf_counter()
        for _ in range(n):
            one()
        return {"cpu_ms": round((cpu_seconds(pid) - cpu) * 1000 / n, 2),
                "wall_ms": round((time.perf_counter() - started) * 1000 / n, 2)}


def run(args: argparse.Namespace) -> dict:
    url = asyncio.run(load.ensure_database(args.clients, 10, False))
    facts = asyncio.run(load.facts(url))
    tmp = Path(tempfile.mkdtemp(prefix="kt_cpu_"))
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SAAS_ENV": "development",
           "REDIS_PREFIX": f"kt_cpu_{secrets.token_hex(3)}", "DATA_DIR": str(tmp)}
    out: dict[str, dict] = {}
    (tmp / "bare.py").write_text(load.BARE_APP)
    port = load.free_port()
    bare = load.start([sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), "--log-level", "warning",
                       "--no-access-log", "--app-dir", str(tmp)], env, f"http://127.0.0.1:{port}/", tmp / "bare.log")
    try:
        out["bare page"] = measure(bare.pid, f"http://127.0.0.1:{port}/", {}, args.requests)
    finally:
        load.stop(bare)
    port = load.free_port()
    base = f"http://127.0.0.1:{port}"
    token = subprocess.run([sys.executable, "-m", "saas.cli", "tokens", "create", "--tenant", facts["slug"], "--role",
                            "owner", "--name", f"cpu-{secrets.token_hex(2)}"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    web = load.start([sys.executable, "-m", "saas.cli", "web", "--workers", "1"],
                     {**env, "PORT": str(port), "BASE_URL": base}, base + "/healthz", tmp / "web.log")
    try:
        cookie, csrf = load.login(base)
        signed_in = {"Cookie": cookie}
        specs = {"healthz": {"path": "/healthz"}, "signed-in empty page": {"path": "/account", "headers": signed_in},
                 "tenant 404": {"path": f"/t/{facts['slug']}/clients/999999999", "headers": signed_in, "status": 404},
                 **load.pages(facts, base, cookie, csrf, token)}
        for name, spec in specs.items():
            if args.only and name not in args.only:
                continue
            out[name] = measure(web.pid, base + spec["path"], spec, args.requests)
            log(f"{name}: {out[name]}")
    finally:
        load.stop(web)
    bare_cpu = out["bare page"]["cpu_ms"]
    for figures in out.values():
        figures["cpu_ratio"] = round(bare_cpu / figures["cpu_ms"], 4) if figures["cpu_ms"] else None
    return {"benchmark": "cpu", "clients": args.clients, "requests": args.requests, "pages": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", type=lambda v: [p.strip() for p in v.split(",") if p.strip()], default=None)
    quick_defaults(parser, "a smoke run: 20,000 clients, 30 requests", clients=20_000, requests=30)
    print(json.dumps(run(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
