"""The composition root's one call: what the higher packages give the lower ones at startup.

Dependencies run one way (core <- accounts <- clients <- analytics <- campaigns <- backup <- admin),
so a lower package that must reach a higher one offers a hook and this module fills it in. The app
factory, the CLI (which also runs the workers) and the test suite call `wire()` before anything else.
"""
from __future__ import annotations

_wired: list[bool] = []


def wire() -> None:
    """Register every hook and subscriber (idempotent)."""
    if _wired:
        return
    from saas.admin import jobs as _admin_jobs  # noqa: F401 - its periodic maintenance registers itself
    from saas.admin.migrate import create_tenant_schema
    from saas.analytics import jobs as _analytics_jobs  # noqa: F401 - the nightly refresh registers itself
    from saas.analytics import api, live, present
    from saas.core.db import set_schema_factory

    set_schema_factory(create_tenant_schema)  # accounts creates companies; admin knows every table
    present.register()  # templates: score labels and reliability reasons
    api.register()  # the clients API shows each client's scores
    live.register()  # a write to a client's operations re-scores that client; an import queues a refresh
    from saas.backup.service import forget_after_erasure
    from saas.campaigns.service import forget_erased_client
    from saas.clients import events

    events.on_client_erased(forget_erased_client)  # an erased client leaves the lists not yet launched
    events.on_client_erased(forget_after_erasure)  # and every saved company export
    _wired.append(True)
