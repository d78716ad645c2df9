"""The module-level shortcuts: ``prepare``, ``profile``, ``visits`` and ``analyze`` are each
one call of :class:`crowdtally.Study`, with the machine settings given as
``engine=crowdtally.Engine(...)`` or, as before, as ``threads=``, ``memory_limit=``,
``spill_dir=`` and ``progress=``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crowdtally._crowdtally import (
    DP,
    Config,
    ConfigError,
    Engine,
    Geography,
    Prepared,
    Progress,
    Study,
    Table,
)
from crowdtally._progress import progress_bar
from crowdtally.release import Release

__all__ = ["analyze", "prepare", "profile", "visits"]

ProgressArg = bool | Callable[[Progress], object] | None


def _engine(
    engine: Engine | None,
    threads: int | None,
    memory_limit: int | str | None,
    spill_dir: str | os.PathLike[str] | None,
    progress: ProgressArg,
) -> Engine | None:
    """The engine of a call: the one given, or one of the separate keywords."""
    separate = (threads, memory_limit, spill_dir) != (None, None, None) or progress not in (
        None,
        False,
    )
    if engine is not None:
        if separate:
            error = ConfigError(
                "invalid configuration: `engine` give the machine settings either as "
                "engine= or as threads=, memory_limit=, spill_dir=, progress=, not both"
            )
            error.field = "engine"
            raise error
        return engine
    if not separate:
        return None
    # The bar is made here so that a warning about tqdm points at the caller.
    bar = progress_bar(stacklevel=4) if progress is True else progress
    return Engine(
        threads=threads,
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=bar if bar is not False else None,
    )


def _study(
    pings: Any, geography: Geography, config: Config, columns: Mapping[str, str] | None
) -> Study:
    """The study of a call: a ``Prepared``'s own, checked against the arguments, or a new
    one."""
    if isinstance(pings, Prepared):
        return pings.study
    return Study(geography, config, columns=dict(columns) if columns is not None else None)


def prepare(
    pings: Any,
    geography: Geography,
    config: Config,
    columns: Mapping[str, str] | None = None,
    *,
    threads: int | None = None,
    progress: ProgressArg = None,
    engine: Engine | None = None,
) -> Prepared:
    """Cleans, pseudonymizes and locates raw pings (method §1-3):
    ``Study(geography, config, columns=columns).prepare(pings, engine=engine)``."""
    study = Study(geography, config, columns=dict(columns) if columns is not None else None)
    return study.prepare(pings, engine=_engine(engine, threads, None, None, progress))


def profile(
    pings: Any,
    geography: Geography,
    config: Config,
    columns: Mapping[str, str] | None = None,
    *,
    threads: int | None = None,
    memory_limit: int | str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: ProgressArg = None,
    engine: Engine | None = None,
) -> Table:
    """Per-device microdata (method §4): ``Study(...).profile(pings, engine=engine)``.
    Pseudonymous, not anonymous: never publish it."""
    study = _checked(_study(pings, geography, config, columns), geography, config)
    return study.profile(pings, engine=_engine(engine, threads, memory_limit, spill_dir, progress))


def visits(
    pings: Any,
    geography: Geography,
    config: Config,
    columns: Mapping[str, str] | None = None,
    *,
    threads: int | None = None,
    memory_limit: int | str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: ProgressArg = None,
    engine: Engine | None = None,
) -> Table:
    """Visits (method §5): ``Study(...).visits(pings, engine=engine)``. Pseudonymous, not
    anonymous: never publish them."""
    study = _checked(_study(pings, geography, config, columns), geography, config)
    return study.visits(pings, engine=_engine(engine, threads, memory_limit, spill_dir, progress))


def analyze(
    pings: Any,
    geography: Geography,
    config: Config,
    bucket: str = "period",
    level: str | None = None,
    classes: str | Sequence[str] = ("visitor",),
    subscribers: Mapping[str, int] | None = None,
    roaming_factors: Mapping[str, float] | None = None,
    *,
    roll_up: bool = True,
    privacy: str | DP | None = None,
    allow_differencing: bool = False,
    columns: Mapping[str, str] | None = None,
    threads: int | None = None,
    memory_limit: int | str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: ProgressArg = None,
    engine: Engine | None = None,
) -> Release:
    """Runs the whole method (§2-9) on pings and returns the protected release:
    ``Study(geography, config, columns=columns).release(pings, ...)``.

    ``pings`` is anything :meth:`crowdtally.Study.prepare` takes: a Parquet path, a glob
    pattern or a list of them (read by the core, no pyarrow needed), an Arrow stream
    (pulled batch by batch), an iterator of Arrow record batches (pulled one by one), a
    pyarrow, pandas, polars or DuckDB table, a dict of columns; or a
    :class:`crowdtally.Prepared` (released with its own study).

    - ``bucket``: ``hour``, ``day``, ``week``, ``month``, ``quarter`` or ``period``
      (local calendar intervals, DST-correct).
    - ``level``: the origin level, a level name of the region tree (default: the leaves).
    - ``classes``: ``visitor`` (default), or its parts ``overnight_visitor`` and
      ``day_visitor``, and ``resident`` and ``regular`` on request.
    - ``subscribers``: the operator's subscribers per leaf region (from billing); by
      default detected as the devices whose home is there.
    - ``roaming_factors``: the expansion factor per roamer country (``{"FR": 3.3}``, and
      ``"*"`` for every other country); rows with roamers of a country without one have
      no estimates.
    - ``roll_up``: pool origin rows below k up the region tree before the residual.
    - ``privacy``: ``"k_anonymity"`` (the default, method §7) or
      ``crowdtally.DP(rho=...)``, the differential-privacy mode (§10), which needs the
      period in the config and ``subscribers`` from billing.
    - ``allow_differencing``: with a ledger in the config, allow a k-anonymity release of
      a period already released with another bucket, level, class set or zone set; the
      ledger and the report record it.
    - ``columns``: your column names for the roles ``subscriber``, ``ts``, ``lat``,
      ``lon``, ``cell``, ``country``.
    - ``engine``: the machine settings, a :class:`crowdtally.Engine`; or, as separate
      keywords, ``threads`` (None or 0: one per core), ``memory_limit`` (bytes or a size
      such as ``"4GiB"``; default half of the machine's memory; pings beyond it are
      spilled to disk by device and analysed shard by shard, with the same result),
      ``spill_dir`` (default: the system's temporary directory; spill files are removed
      when the run ends, also on an error or Ctrl-C) and ``progress`` (``True`` shows a
      progress bar, needs tqdm; or a callable receives every
      :class:`crowdtally.Progress` event; an exception it raises stops the run and is
      raised from here; Ctrl-C stops a run within about a second in any case).

    Raises :class:`crowdtally.ConfigError` (with ``.field``) for an invalid parameter
    before any work, and :class:`crowdtally.InputError` for unreadable pings.
    """
    study = _checked(_study(pings, geography, config, columns), geography, config)
    return study.release(
        pings,
        bucket,
        level,
        classes,
        subscribers,
        roaming_factors,
        roll_up=roll_up,
        privacy=privacy,
        allow_differencing=allow_differencing,
        engine=_engine(engine, threads, memory_limit, spill_dir, progress),
    )


def _checked(study: Study, geography: Geography, config: Config) -> Study:
    """A ``Prepared``'s study, refused when the call names another geography or
    configuration (the pings were located with their own)."""
    Study(geography, config)._check_same(study)
    return study
