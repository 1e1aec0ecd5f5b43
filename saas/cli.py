"""The `saas` command."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from saas.core.config import ConfigError, Settings, get_settings
from saas.wiring import wire

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from saas.accounts.models import User
    from saas.core.db import Database
    from saas.core.models import Tenant

T = TypeVar("T")


def _stdin_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.UsageError("the password must be given on stdin")
    return value


async def _user_by_email_or_new(s: AsyncSession, email: str, name: str, password: str) -> User:
    """The account with this e-mail, or a new one with `name` and `password` (an existing account keeps
    its own password)."""
    from saas.accounts import service

    user = await service.get_user_by_email(s, email)
    return user if user is not None else await service.do_create_user(s, email, name, password)


def services(*, redis: bool = False) -> Settings:
    """Settings with DATABASE_URL (and REDIS_URL) pointing somewhere: embedded when unset."""
    from saas import embedded

    settings = get_settings()
    if settings.database_url is None:
        os.environ["DATABASE_URL"] = embedded.start_postgres(settings.data_dir)
    if redis and settings.redis_url is None:
        os.environ["REDIS_URL"] = embedded.start_redis(settings.data_dir)[0]
    get_settings.cache_clear()
    return get_settings()


def _run(coro_fn: Callable[[Database], Awaitable[T]], settings: Settings) -> T:
    from saas.core.db import Database

    async def main() -> T:
        db = Database(settings.database_url, pool_size=5)
        try:
            return await coro_fn(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@click.group()
def main() -> None:
    """Kartoteka: client accounting for small businesses."""
    try:
        get_settings()
    except ConfigError as exc:
        click.echo(str(exc.code), err=True)
        sys.exit(2)


@main.command()
@click.option("--processes", default=2, show_default=True, help="Tenant schemas migrate in this many processes.")
def migrate(processes: int) -> None:
    """Migrate the shared schema, then every tenant schema (resumable, with progress)."""
    from saas.admin.migrate import MigrationRefused, migrate_all

    settings = services()
    try:
        _run(lambda db: migrate_all(db.engine, echo=click.echo, processes=processes), settings)
    except MigrationRefused as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--workers", type=click.IntRange(min=1), envvar="WEB_CONCURRENCY", default=None,
              help="Web processes (default: $WEB_CONCURRENCY, else the number of cores).")
def web(workers: int | None) -> None:
    """Serve the web app on $HOST:$PORT with N processes sharing the socket."""
    import uvicorn

    settings = services(redis=True)
    # Each process builds its own app from the factory (its own engine pool and Redis client);
    # sessions and everything else shared live in PostgreSQL and Redis, so any process may answer.
    # The supervisor restarts a worker that does not answer its health ping in time: uvicorn's 5 s
    # killed workers still importing on a loaded machine, over and over.
    uvicorn.run("saas.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=workers or os.cpu_count() or 1, access_log=False, proxy_headers=True, log_level="info",
                timeout_graceful_shutdown=5, timeout_worker_healthcheck=60)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--queue", "queues", multiple=True, help="Queue names (default: default).")
def worker(burst: bool, queues: tuple[str, ...]) -> None:
    """Run one RQ worker."""
    from saas.core.jobs import PERIODIC, ensure_scheduled, run_worker

    settings = services(redis=True)
    for name in PERIODIC:  # the nightly refresh, the platform's hourly maintenance (registered by wire())
        ensure_scheduled(settings, name)
    run_worker(settings, burst=burst, queues=list(queues) or None)


@main.command()
def run() -> None:
    """Start everything: embedded PostgreSQL and Redis when unset, migrate, web and one worker."""
    from saas import embedded
    from saas.admin.migrate import migrate_all

    settings = services(redis=True)
    _run(lambda db: migrate_all(db.engine, echo=click.echo), settings)
    env = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}
    children = [
        subprocess.Popen([sys.executable, "-m", "saas.cli", "web"], env=env),
        subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=env),
    ]
    click.echo(f"Kartoteka is running at {settings.base_url} (Ctrl-C stops it)")
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                click.echo(f"a process exited with code {child.returncode}; stopping", err=True)
                code, stopping = child.returncode or 1, True
        time.sleep(0.2)
    for child in children:
        embedded.stop_process(child)
    click.echo("stopped")
    sys.exit(code)  # atexit stops the embedded Redis and PostgreSQL we started


@main.command()
@click.option("--clients", default=5000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--years", default=3, show_default=True, type=click.IntRange(1, 30),
              help="Whole calendar years of history before this one (plus this year so far).")
@click.option("--seed", default=42, show_default=True, help="The same seed gives the same company.")
@click.option("--reset", is_flag=True, help="Delete the demo company of this name first and create it again.")
@click.option("--name", default=None, help="Company name (default: Дом и Ремонт).")
def demo(clients: int, years: int, seed: int, reset: bool, name: str | None) -> None:
    """Create a demo company with years of history and print its login."""
    from saas.demo import DEFAULT_NAME, DemoError, create_demo

    settings = services()
    click.echo(f"Generating a demo company: {clients} clients, {years} years, seed {seed}...")
    try:
        result = _form_guard(lambda: _run(
            lambda db: create_demo(db, clients=clients, years=years, seed=seed, name=name, reset=reset), settings))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    if result.name != (name or DEFAULT_NAME):
        click.echo(f"A company named {name or DEFAULT_NAME!r} already exists: this demo is {result.name!r} "
                   "(use --reset to recreate the first one instead).")
    c = result.counts
    click.echo(f"Created {result.name!r} ({result.slug}): {c['clients']} clients, {c['operations']} operations, "
               f"analytics: {result.method} {result.statuses}")
    click.echo("Timing: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
               + f"; total {result.seconds:.1f}s")
    click.echo(f"Open {settings.base_url}/t/{result.slug}/ and log in (password for all: {result.password}):")
    for email, role in result.members:
        click.echo(f"  {role:<9} {email}")
    click.echo(f"Login: {result.owner_email} / {result.password}")


# ---- platform administration ---------------------------------------------------------------


@main.group()
def tenants() -> None:
    """Manage companies."""


@tenants.command("create")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.option("--owner-name", default=None)
def tenants_create(name: str, owner_email: str, owner_name: str | None) -> None:
    """Create a company and its owner (password on stdin). Prints the slug."""
    from saas.accounts import service

    password = _stdin_password("Owner password")
    settings = services()

    async def go(db: Database) -> str:
        async with db.session() as s:
            user = await _user_by_email_or_new(s, owner_email, owner_name or owner_email.split("@")[0], password)
            tenant = await service.do_create_tenant(s, name, user)
            return tenant.slug

    click.echo(_form_guard(lambda: _run(go, settings)))


@tenants.command("list")
def tenants_list() -> None:
    """List the companies."""
    from sqlalchemy import select

    from saas.core.models import Tenant

    settings = services()

    async def go(db: Database) -> list[Tenant]:
        async with db.session() as s:
            return list(await s.scalars(select(Tenant).order_by(Tenant.id)))

    for t in _run(go, settings):
        click.echo(f"{t.slug}\t{t.status}\t{t.plan}\t{t.schema_version}\t{t.name}")


@tenants.command("placement")
def tenants_placement() -> None:
    """On a Citus cluster: which node holds each company, and its size."""
    from saas.admin import citus as placement

    settings = services()

    async def go(db: Database) -> list[placement.Placement]:
        async with db.session() as s:
            return await placement.placement(s)

    for p in _form_guard(lambda: _run(go, settings)):
        click.echo(f"{p.slug}\t{p.node}\t{p.size_bytes}")


@tenants.command("move")
@click.argument("slug")
@click.option("--node", required=True, help="HOST:PORT of the worker, as `saas tenants placement` prints it.")
def tenants_move(slug: str, node: str) -> None:
    """On a Citus cluster: move a company to another worker (reads go on; writes wait for the switch)."""
    from saas.admin import citus as placement

    settings = services()

    async def go(db: Database) -> placement.Placement:
        async with db.session() as s:
            return await placement.move(s, slug, node, _cli_actor())

    moved = _form_guard(lambda: _run(go, settings))
    click.echo(f"{moved.slug}\t{moved.node}\t{moved.size_bytes}")


@main.group()
def passports() -> None:
    """Passport data at rest."""


@passports.command("rekey")
@click.option("--tenant", "slug", default=None, help="Only this company (default: all of them).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="At most this many passports per company this run (the next run goes on).")
def passports_rekey(slug: str | None, limit: int | None) -> None:
    """Re-encrypt passports under the current DATA_KEY, bound to their company and client (after a
    rotation, or from the first, unbound scheme); keep an old key as DATA_KEY_<ID> until this has
    run. Resumable."""
    from sqlalchemy import select

    from saas.clients.rekey import rekey_passports
    from saas.core.models import Tenant

    settings = services()

    async def go(db: Database) -> None:
        async with db.session() as s:
            query = select(Tenant.slug, Tenant.schema_name).order_by(Tenant.id)
            companies = (await s.execute(query.where(Tenant.slug == slug) if slug else query)).all()
        if slug and not companies:
            raise click.UsageError(f"no company {slug!r}")
        for company, schema in companies:
            click.echo(f"{company}: {await rekey_passports(db, schema, limit=limit)} passports re-encrypted")

    _run(go, settings)


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


def _tenant_change(slug: str, change: Callable[[AsyncSession, Tenant, str], Awaitable[object]]) -> str:
    """Run one platform change on the company at SLUG in one transaction; returns its status after."""
    from saas.admin import service

    settings = services()

    async def go(db: Database) -> str:
        async with db.session() as s:
            tenant = await service.get_by_slug(s, slug)
            await s.refresh(tenant, with_for_update=True)
            await change(s, tenant, _cli_actor())
            return tenant.status

    return _form_guard(lambda: _run(go, settings))


@tenants.command("suspend")
@click.argument("slug")
@click.option("--reason", required=True, help="Why; kept in the platform log.")
def tenants_suspend(slug: str, reason: str) -> None:
    """Suspend a company: its users see a suspension page, its tokens get 403, its jobs do not run."""
    from saas.admin import service

    click.echo(f"{slug}: {_tenant_change(slug, lambda s, t, a: service.do_suspend(s, t, a, reason))}")


@tenants.command("resume")
@click.argument("slug")
def tenants_resume(slug: str) -> None:
    """Reactivate a suspended company."""
    from saas.admin import service

    click.echo(f"{slug}: {_tenant_change(slug, service.do_resume)}")


@tenants.command("delete")
@click.argument("slug")
@click.option("--grace-days", default=30, show_default=True, type=click.IntRange(0, 30),
              help="Days during which `saas tenants restore` brings it back; then the purge destroys it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def tenants_delete(slug: str, grace_days: int, yes: bool) -> None:
    """Delete a company (restorable during the grace period; export it first)."""
    from saas.admin import service

    if not yes:
        click.confirm(f"Delete {slug}? Its users lose access now; the data is destroyed after {grace_days} days",
                      abort=True)
    click.echo(f"{slug}: {_tenant_change(slug, lambda s, t, a: service.do_delete(s, t, a, grace_days))}")


@tenants.command("restore")
@click.argument("slug")
def tenants_restore(slug: str) -> None:
    """Restore a deleted company within its grace period."""
    from saas.admin import service

    click.echo(f"{slug}: {_tenant_change(slug, service.do_restore)}")


@tenants.command("export")
@click.argument("slug")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The ZIP file to write.")
def tenants_export(slug: str, out: str) -> None:
    """Export every table of a company: a ZIP of JSON Lines files and a manifest."""
    from pathlib import Path

    from saas.admin import export, service

    settings = services()

    async def go(db: Database) -> dict[str, Any]:
        async with db.session() as s:
            tenant = await service.get_by_slug(s, slug)
        manifest = await export.export_tenant(db, tenant, Path(out), actor=_cli_actor())
        async with db.session() as s:
            service.audit(s, _cli_actor(), "tenant.exported", tenant,
                          rows={t: v["rows"] for t, v in manifest["tables"].items()})
        return manifest

    manifest = _form_guard(lambda: _run(go, settings))
    rows = sum(t["rows"] for t in manifest["tables"].values())
    click.echo(f"{out}: {len(manifest['tables'])} tables, {rows} rows")


@tenants.command("purge")
def tenants_purge() -> None:
    """Destroy the companies deleted longer ago than their grace period (the hourly job does this too)."""
    from saas.admin.service import purge_due

    settings = services()
    for record in _run(lambda db: purge_due(db, actor=_cli_actor()), settings):
        click.echo(f"destroyed {record['slug']} ({record['schema']}, {record['tables_dropped']} tables)")


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "admin", "marketer", "viewer"]))
@click.option("--name", required=True)
def tokens_create(slug: str, role: str, name: str) -> None:
    """Create an API token; it is printed once, as the only line."""
    from saas.accounts import service

    settings = services()

    async def go(db: Database) -> str:
        async with db.session() as s:
            tenant = await service.get_tenant_by_slug(s, slug)
            if tenant is None:
                raise click.ClickException(f"no tenant {slug!r}")
            return (await service.do_create_token(s, tenant, role, name))[1]

    click.echo(_form_guard(lambda: _run(go, settings)))


@main.group()
def admin() -> None:
    """Platform administrators."""


@admin.command("create")
@click.option("--email", required=True)
@click.option("--name", default="Platform admin")
def admin_create(email: str, name: str) -> None:
    """Create a platform admin (password on stdin)."""
    password = _stdin_password("Password")
    settings = services()

    async def go(db: Database) -> str:
        async with db.session() as s:
            user = await _user_by_email_or_new(s, email, name, password)
            user.is_platform_admin = True
            return user.email

    click.echo(f"platform admin: {_form_guard(lambda: _run(go, settings))}")


def _form_guard(fn: Callable[[], T]) -> T:
    from saas.core.errors import FormError

    try:
        return fn()
    except FormError as exc:
        raise click.ClickException(str(exc)) from None


def _register_domain_commands() -> None:
    from saas.analytics.cli import analytics

    main.add_command(analytics)
    wire()  # every command (worker jobs, the demo, tenant creation) runs with the hooks in place


_register_domain_commands()


if __name__ == "__main__":
    main()
