"""RQ entry points of the clients domain under their old dotted names.

The import's job lives in `saas/clients/imports/jobs.py`. RQ stores the function's dotted path with
each queued job, so a job queued before a deploy (as `saas.clients.jobs.import_file`) must still
find its function on a worker after it: this name stays until no such job can be left.
"""
from __future__ import annotations

from saas.clients.imports.jobs import RejectedRows, do_start_import, import_file

__all__ = ["RejectedRows", "do_start_import", "import_file"]
