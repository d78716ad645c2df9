"""Spend per visitor: card-payment aggregates joined to a release, with the merchants
protected as official statistics protect turnover.

``crowdtally.spend(release, payments, geography, config)`` returns a :class:`Spend`: one
row per release group (zone, bucket) and, by default, per origin row of the release and
per shop category, with the card spend, transactions, merchants and spend per estimated
visitor (with the interval of the visitor estimate)::

    release = crowdtally.analyze(pings, geography, config, bucket="day")
    spend = crowdtally.spend(release, "payments.parquet", geography, config)
    spend.to_pandas()
    spend.report["protection"]  # cells released and withheld, by rule

A spend cell is released only when its visitor row is released, it holds at least
``min_merchants`` merchants (3) and passes the p % rule (``p`` = 10): the merchants after
the two largest hold at least p % of the largest's amount, so that the second largest
cannot learn the largest's turnover to within p % by subtracting its own from the total.
Further cells are withheld until no withheld cell can be computed from the released ones
and their totals. Merchant ids never appear in the table or the report.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crowdtally._crowdtally import (
    Config,
    Geography,
    Study,
    read_parquet_table,
)
from crowdtally._crowdtally import _spend as _spend_table
from crowdtally._crowdtally import write_parquet as _write_parquet
from crowdtally._result import TableWithReport
from crowdtally.release import CrowdtallyWarning, Release

__all__ = ["SPEND_COLUMNS", "Spend", "spend", "spend_of_study"]

SPEND_COLUMNS: tuple[str, ...] = (
    "zone",
    "bucket_start",
    "class",
    "origin",
    "category",
    "spend",
    "transactions",
    "merchants",
    "spend_per_visitor",
    "spend_per_visitor_low",
    "spend_per_visitor_high",
    "suppressed",
)
"""The spend table's columns, in order."""

REPORT_METADATA_KEY = "crowdtally.spend_report"
"""The key of the report (JSON) in a spend file's schema metadata."""

_DEFAULT_BY = ("zone", "category", "bucket", "origin")


class Spend(TableWithReport):
    """A spend table (``.table``) and its report (``.report``: ``parameters``,
    ``payments`` read and dropped by reason, ``protection`` counts by rule,
    ``warnings``, ``caveats``)."""

    __slots__ = ()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Writes the table as Parquet with the report in the file's schema metadata
        (:meth:`Spend.read` restores both). Returns the path."""
        out = Path(os.fspath(path))
        if out.suffix.lower() not in (".parquet", ".pq"):
            raise ValueError(f"a spend table is written as Parquet (.parquet), got {out.name!r}")
        report = json.dumps(self._report, ensure_ascii=False)
        _write_parquet(self._table, out, {REPORT_METADATA_KEY: report})
        return out

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Spend:
        """The spend table written by :meth:`Spend.write`."""
        table, metadata = read_parquet_table(Path(os.fspath(path)), "spend")
        text = metadata.get(REPORT_METADATA_KEY)
        if text is None or tuple(table.column_names) != SPEND_COLUMNS:
            raise ValueError(f"{os.fspath(path)!r} is not a spend table written by Spend.write")
        report: dict[str, Any] = json.loads(text)
        return cls(table, report)

    def __repr__(self) -> str:
        protection = self._report.get("protection", {})
        parameters = self._report.get("parameters", {})
        lines = [
            f"Spend({len(self)} rows; by {', '.join(parameters.get('by', []))}; "
            f"p = {parameters.get('p')} %, at least {parameters.get('min_merchants')} "
            f"merchants; per {parameters.get('class')})",
            f"  cells released {protection.get('released', 0)}, withheld: "
            f"visitor row {protection.get('suppressed_visitor_row', 0)}, "
            f"few merchants {protection.get('suppressed_few_merchants', 0)}, "
            f"dominance {protection.get('suppressed_dominance', 0)}, "
            f"complementary {protection.get('suppressed_complementary', 0)}",
        ]
        lines.extend(f"  warning: {warning}" for warning in self._report.get("warnings", []))
        return "\n".join(lines)


def spend(
    release: Release,
    payments: Any,
    geography: Geography,
    config: Config,
    *,
    by: Sequence[str] = _DEFAULT_BY,
    p: float = 10.0,
    min_merchants: int = 3,
    visitor_class: str | None = None,
) -> Spend:
    """Joins card-payment aggregates to a k-anonymity release and protects them.

    ``payments`` is a table (pyarrow, pandas, polars, DuckDB, a dict of columns) or a
    Parquet path, with the columns ``merchant_id`` (text or integer), ``merchant_cell``
    (an H3 cell) or ``zone`` (a zone id), ``category`` (shop type), ``day`` (local date)
    or ``ts``, ``origin`` (a region id at any level, ``country:XX``, or null; optional),
    ``amount`` (integer cents or a decimal, one currency) and ``transactions``. Bad rows
    are dropped and counted by reason in ``report["payments"]``.

    ``by`` holds ``zone`` and ``bucket`` (the release's groups) and any of ``origin``
    (the release's origin rows) and ``category``. ``visitor_class`` is the release class
    whose visitors divide spend (default ``visitor`` when the release has it).

    Raises:
        crowdtally.ConfigError: a parameter is invalid, or the release is
            differentially private or of another time zone or period.
        crowdtally.InputError: a payments column is missing or of an unusable type.
    """
    return _join(Study(geography, config), release, payments, by, p, min_merchants, visitor_class)


def spend_of_study(
    study: Study,
    release: Release,
    payments: Any,
    *,
    by: Sequence[str] = _DEFAULT_BY,
    p: float = 10.0,
    min_merchants: int = 3,
    visitor_class: str | None = None,
) -> Spend:
    """:func:`spend` for a study (``Study.spend``): the same join and protection."""
    return _join(study, release, payments, by, p, min_merchants, visitor_class)


def _join(
    study: Study,
    release: Release,
    payments: Any,
    by: Sequence[str],
    p: float,
    min_merchants: int,
    visitor_class: str | None,
) -> Spend:
    """The join of :func:`spend` and :func:`spend_of_study`, whose caller is warned."""
    if not isinstance(release, Release):
        raise TypeError(f"release must be a crowdtally.Release, got {type(release).__name__}")
    if isinstance(payments, (str, os.PathLike)):
        where = os.fspath(payments)
        if where.lower().endswith(".csv"):
            raise ValueError(
                f"{where!r} is CSV: read it first (pyarrow.csv.read_csv or "
                "polars.read_csv) and give the table; amounts as integer cents or decimals"
            )
        payments, _ = read_parquet_table(Path(where), "payments")
    table, report = _spend_table(
        study,
        release.table,
        json.dumps(release.report.get("parameters", {})),
        payments,
        by=list(by),
        p=float(p),
        min_merchants=int(min_merchants),
        visitor_class=visitor_class,
    )
    for message in report.get("warnings", []):
        warnings.warn(message, CrowdtallyWarning, stacklevel=3)
    return Spend(table, report)
