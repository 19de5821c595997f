"""Staged rollout: a run in waves, each started only when the one before went well.

::

    ts.sync_all(waves=[["tenant_demo"], 0.05, 1.0], max_failures=0, order="size")

Each item of ``waves`` is one wave, run after the one before it has finished:

- a list of schema names: exactly those tenants (a canary you know);
- a whole number ``N``: the next tenants in ``order`` until ``N`` tenants have been in
  the waves so far (counts are cumulative, as fractions are);
- a fraction ``0 < F <= 1`` (a float): the same, until that share of the run's tenants,
  rounded up.  ``1.0`` is "all the rest".

So ``[["tenant_demo"], 0.05, 1.0]`` syncs tenant_demo, then more tenants until 5 % of
them have been synced, then the rest.  A wave that would add no tenant is left out.
Tenants after the last wave (when it is not ``1.0``) are not synced this run: they are
reported ``skipped``.

The next wave starts only if the one before had at most ``max_failures`` failed
tenants (a ``partial`` tenant, whose online steps did not finish, counts as failed): a count, or a fraction ``0 <= F < 1`` of that wave's tenants.  Otherwise the
tenants of every later wave are reported ``skipped``, with the reason.  A dry run
applies the same rule to the tenants it finds would fail, so it shows where a sync
would stop.

``order`` puts the tenants in the order the numbered waves take them: None keeps the
selection's order (by name), ``"size"`` puts the smallest first and the largest last
(by the pages of their tables and indexes, as the catalog estimates them: no table is
read), and a callable is a sort key that gets each schema name.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .engine import connect
from .errors import ConfigurationError
from .report import STATUSES, WaveOutcome
from .run_info import option_value
from .sql import read_query

__all__ = [
    "FailureLimit",
    "OrderSpec",
    "Rollout",
    "WaveSpec",
    "check_rollout",
    "ordered_by",
    "rollout_options",
]

#: One wave: schema names, a cumulative count of tenants, or a cumulative fraction.
WaveItem = Sequence[str] | int | float
#: The waves of a run, in order; None for one wave of every tenant.
WaveSpec = Sequence[WaveItem] | None
#: How the numbered waves take the tenants: None (by name), ``"size"``, or a sort key.
OrderSpec = Literal["size"] | Callable[[str], Any] | None
#: Failed tenants a wave may have for the next one to start: a count or a fraction.
FailureLimit = int | float

#: Each tenant's size in pages (tables, indexes, materialized views), from pg_class.
_SIZES_SQL = read_query("tenant_sync", "tenant_sizes.sql")


def check_rollout(waves: WaveSpec, max_failures: FailureLimit, order: OrderSpec) -> None:
    """Raise :class:`~tenant_sync.errors.ConfigurationError` for waves, a failure limit or
    an order that cannot be used, before anything connects."""
    if waves is not None:
        if isinstance(waves, (str, bytes)) or not isinstance(waves, Sequence) or not waves:
            raise ConfigurationError(
                "waves must be a non-empty list of waves: lists of names, counts or fractions",
                option="waves",
            )
        for number, item in enumerate(waves, 1):
            _check_wave(number, item)
    _check_limit(max_failures)
    if not (order is None or order == "size" or callable(order)):
        raise ConfigurationError(
            f"order must be None, 'size' or a callable sort key, not {order!r}", option="order"
        )


def _check_wave(number: int, item: object) -> None:
    if isinstance(item, bool):
        pass  # a bool is an int to Python, never a wave
    elif isinstance(item, int):
        if item >= 1:
            return
    elif isinstance(item, float):
        if 0 < item <= 1:
            return
    elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
        if item and all(isinstance(name, str) and name for name in item):
            return
        raise ConfigurationError(
            f"wave {number} must name at least one schema, as strings", option="waves"
        )
    raise ConfigurationError(
        f"wave {number} is {item!r}: a wave is a list of schema names, a count of at least 1,"
        " or a fraction above 0 and at most 1.0",
        option="waves",
    )


def _check_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ConfigurationError(
            f"max_failures must be a count or a fraction, not {limit!r}", option="max_failures"
        )
    if limit < 0 or (isinstance(limit, float) and limit >= 1):
        raise ConfigurationError(
            f"max_failures is {limit!r}: a count of at least 0, or a fraction from 0 up to 1",
            option="max_failures",
        )


def ordered_by(names: list[str], order: OrderSpec, engine: Engine) -> list[str]:
    """``names`` in ``order`` (see the module's docstring); ties keep their order.

    ``"size"`` reads the tenants' sizes from the catalog, in one query.
    """
    if order is None:
        return list(names)
    if order == "size":
        with connect(engine) as conn, conn.begin():
            rows = conn.execute(sa.text(_SIZES_SQL), {"schemas": names})
            sizes: dict[str, int] = {name: pages for name, pages in rows}
        return sorted(names, key=lambda name: sizes.get(name, 0))
    return sorted(names, key=order)


def rollout_options(
    waves: WaveSpec, max_failures: FailureLimit, order: OrderSpec
) -> dict[str, Any]:
    """A staged run's options for its report's header, JSON-ready."""
    values = {"waves": waves, "max_failures": max_failures, "order": order}
    return {name: option_value(value) for name, value in values.items()}


class Rollout:
    """The waves of one run over ``names`` (already in order), and how each went."""

    def __init__(self, waves: WaveSpec, names: list[str], max_failures: FailureLimit) -> None:
        self.staged = waves is not None
        self.max_failures = max_failures
        self.waves, self.rest = _split(waves, names) if waves is not None else ([names], [])
        self.outcomes: list[WaveOutcome] = []
        self._reason: str | None = None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """Each wave to run, as ``(number, names)``, until :meth:`finish` stops the run."""
        for number, names in enumerate(self.waves, 1):
            if self._reason is not None:
                return
            yield number, names

    def finish(self, number: int, statuses: Mapping[str, str], cancelled: bool) -> None:
        """Record how wave ``number`` went (its tenants' statuses); stop if it went badly."""
        names = self.waves[number - 1]
        found = [statuses.get(name, "skipped") for name in names]
        counts: dict[str, int] = {
            status: found.count(status) for status in STATUSES if status in found
        }
        limit = self._limit(len(names))
        partial = counts.get("partial", 0)
        failed = counts.get("failed", 0) + partial
        if cancelled:
            self._reason = "the run was cancelled"
        elif failed > limit and number < len(self.waves):
            self._reason = (
                f"{failed} of {len(names)} tenants failed"
                f"{' or were left partial' if partial else ''} in wave {number},"
                f" more than max_failures allows ({_limit_words(self.max_failures, limit)})"
            )
        note = self._reason if number < len(self.waves) else None
        self.outcomes.append(WaveOutcome(number, tuple(names), counts, note=note))

    def not_run(self) -> dict[str, str]:
        """Why each tenant of the waves not started, and those in no wave, was not synced."""
        reasons: dict[str, str] = {}
        for number in range(len(self.outcomes) + 1, len(self.waves) + 1):
            names = self.waves[number - 1]
            self.outcomes.append(WaveOutcome(number, tuple(names), started=False))
            reason = f"wave {number} not started: {self._reason or 'the run stopped'}"
            reasons.update(dict.fromkeys(names, reason))
        if self.rest:
            covered = sum(len(names) for names in self.waves)
            total = covered + len(self.rest)
            reasons.update(
                dict.fromkeys(self.rest, f"in no wave: the waves take {covered} of {total} tenants")
            )
        return reasons

    def _limit(self, size: int) -> float:
        if isinstance(self.max_failures, float):
            return self.max_failures * size
        return self.max_failures


def _split(waves: Sequence[WaveItem], names: list[str]) -> tuple[list[list[str]], list[str]]:
    """The tenants of each wave (empty ones left out), and the tenants after the last."""
    selected = set(names)
    named: dict[str, int] = {}
    for number, item in enumerate(waves, 1):
        if isinstance(item, (int, float)):
            continue
        for name in item:
            if name not in selected:
                raise ConfigurationError(
                    f"wave {number} names {name!r}, which this run does not select",
                    option="waves",
                )
            if name in named:
                raise ConfigurationError(
                    f"{name!r} is in wave {named[name]} and in wave {number}", option="waves"
                )
            named[name] = number
    remaining = iter([name for name in names if name not in named])
    taken, result = 0, []
    for item in waves:
        if isinstance(item, (int, float)):
            target = item if isinstance(item, int) else math.ceil(item * len(names))
            wave = list(itertools.islice(remaining, max(0, target - taken)))
        else:
            wave = list(dict.fromkeys(item))
        taken += len(wave)
        if wave:
            result.append(wave)
    return result, list(remaining)


def _limit_words(limit: FailureLimit, allowed: float) -> str:
    if isinstance(limit, float):
        return f"{limit:.0%} of the wave, {math.floor(allowed)} tenants"
    return str(limit)


def wave_from_text(text: str) -> WaveItem:
    """One wave as the command line writes it: ``10`` (a count), ``5%`` or ``0.05`` (a
    fraction), else schema names separated by commas (``tenant_demo,tenant_acme``)."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d+(\.\d+)?%", text):
        return float(text[:-1]) / 100
    if re.fullmatch(r"\d*\.\d+", text):
        return float(text)
    return [name.strip() for name in text.split(",") if name.strip()]


def limit_from_text(text: str) -> FailureLimit:
    """``max_failures`` as the command line writes it: ``3`` (a count), ``2%`` or ``0.02``."""
    item = wave_from_text(text)
    if not isinstance(item, (int, float)):
        raise ValueError(f"{text!r} is neither a count (3) nor a fraction (0.02 or 2%)")
    return item
