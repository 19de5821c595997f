"""Comparisons shared by the databases of a fleet run that are on one server.

Within a database, each distinct shape is compared with the model once (see
:mod:`~tenant_sync.fastpath.by_shape`).  A fleet's databases on one server mostly hold
tenants of the same shapes, and a shape's fingerprint says everything a comparison
looks at, in words that are the same in every database (the pass names the types and
tables outside a tenant rather than give their oids).  So one comparison serves them
all: a fleet of three databases compares a changed shape once, not three times, and
its databases' early comparisons of a first tenant are one, too.  Only databases of
one server share: the model's state is built once per server (see
:mod:`~tenant_sync.yardstick`), and two servers may differ in version.

A shared comparison is run by the database that asked first, on its workers; the
others wait for it.  One that failed is not shared: a database that meets it compares
the shape again itself, so a database that goes down does not make another's tenants
fall back to one-by-one comparisons.  :class:`SharedComparisons` lives for one run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from .shapes import ChangeSet

__all__ = ["SharedComparisons"]

#: Starts a comparison (on the caller's workers) and returns its future.
Submit = Callable[[], "Future[ChangeSet]"]


class SharedComparisons:
    """Each shape's comparison with the model, once per server, for one fleet run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._early: dict[str, Future[ChangeSet]] = {}
        self._by_shape: dict[tuple[str, str], Future[ChangeSet]] = {}

    def early(self, server: str, submit: Submit) -> Future[ChangeSet]:
        """The server's early comparison of a first tenant: begun by ``submit`` if no
        database of the server has begun one (see
        :func:`~tenant_sync.fastpath.by_shape.stream_by_shape`)."""
        with self._lock:
            if server not in self._early:
                self._early[server] = submit()
            return self._early[server]

    def adopt(self, server: str, change_set: ChangeSet, future: Future[ChangeSet]) -> None:
        """Record a finished comparison (an early one, whose shape is known only now)."""
        with self._lock:
            self._by_shape.setdefault((server, change_set.shape.fingerprint), future)

    def of_shape(self, server: str, fingerprint: str, submit: Submit) -> Future[ChangeSet]:
        """The comparison of the shape ``fingerprint`` on ``server``: the one under way or
        done, or one begun by ``submit`` (also in place of one that failed)."""
        key = (server, fingerprint)
        with self._lock:
            known = self._by_shape.get(key)
            if known is None or _failed(known):
                known = self._by_shape[key] = submit()
            return known


def _failed(future: Future[ChangeSet]) -> bool:
    return future.done() and future.exception() is not None
