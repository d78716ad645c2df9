"""How unique are pseudonymous traces? The re-identification risk of the microdata.

``prepare``, ``profile`` and ``visits`` give pseudonymous microdata: no name, no phone
number, but a trace. ``crowdtally.risk(prepared)`` measures, on the operator's own data
and before anything leaves the secure room, how many devices a few facts single out:

- **unicity** (de Montjoye et al. 2013): for p places and times drawn at random from a
  device's own trace (``spatial`` ``cell``, ``zone`` or ``region:<level>``; ``temporal``
  ``hour``, ``day`` or ``part`` of day), the share of devices that are the only ones
  whose trace holds all p, with a 95 % interval when devices are sampled;
- **home-work anonymity** (Golle and Partridge 2009): the share of devices alone (and in
  groups smaller than k) with their pair of home region and most frequent weekday
  daytime region, at each level of the region tree;
- **visit patterns**: the share of devices alone with their set of (zone, day) visits.

::

    prepared = study.prepare(pings)
    audit = crowdtally.risk(prepared, points=(1, 2, 3, 4), spatial="cell", temporal="hour")
    audit.to_pandas()
    audit.plot()  # unicity against the number of points

    # Pings larger than memory: read shard by shard, as a release reads them.
    audit = crowdtally.risk("pings/*.parquet", geography, config, engine=engine)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crowdtally._crowdtally import Config, Engine, Geography, Prepared, Study
from crowdtally._crowdtally import _risk as _risk_table
from crowdtally._result import TableWithReport
from crowdtally._util import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RISK_COLUMNS", "Risk", "risk"]

RISK_COLUMNS: tuple[str, ...] = (
    "measure",
    "granularity",
    "points",
    "devices",
    "unique",
    "share_unique",
    "share_low",
    "share_high",
    "below_k",
)
"""The risk table's columns, in order."""


class Risk(TableWithReport):
    """The audit's table (``.table``: one row per number of points of unicity, per level
    of home-work anonymity, and one of visit patterns) and its report (``.report``:
    parameters, devices measured and sampled, devices with too few points, and the
    sizes of the home-work anonymity sets)."""

    __slots__ = ()

    def rows(self) -> list[dict[str, Any]]:
        """The table's rows as dicts (needs pyarrow)."""
        rows: list[dict[str, Any]] = self.to_arrow().to_pylist()
        return rows

    def unicity(self) -> dict[int, float]:
        """The share of devices singled out by each number of points."""
        return {
            int(row["points"]): float(row["share_unique"])
            for row in self.rows()
            if row["measure"] == "unicity" and row["devices"] > 0
        }

    def plot(self) -> Figure:
        """Unicity against the number of points, with its interval (needs matplotlib)."""
        require("matplotlib", "plotting", "plot")
        from matplotlib.figure import Figure

        rows = [row for row in self.rows() if row["measure"] == "unicity" and row["devices"]]
        figure = Figure(figsize=(7, 4), layout="constrained")
        axes = figure.add_subplot()
        points = [row["points"] for row in rows]
        shares = [100 * row["share_unique"] for row in rows]
        low = [100 * (row["share_unique"] - row["share_low"]) for row in rows]
        high = [100 * (row["share_high"] - row["share_unique"]) for row in rows]
        axes.errorbar(points, shares, yerr=[low, high], marker="o", capsize=4)
        parameters = self._report.get("parameters", {})
        axes.set_xlabel(
            f"places and times known ({parameters.get('spatial')} by {parameters.get('temporal')})"
        )
        axes.set_ylabel("devices singled out (%)")
        axes.set_ylim(0, 100)
        axes.set_xticks(points)
        axes.set_title("How many of a device's own points single it out")
        return figure

    def __repr__(self) -> str:
        parameters = self._report.get("parameters", {})
        lines = [
            f"Risk({self._report.get('devices', 0)} devices; points "
            f"{parameters.get('spatial')} by {parameters.get('temporal')}; "
            f"k = {parameters.get('k')})"
        ]
        try:
            rows = self.rows()
        except ImportError:
            return lines[0]
        for row in rows:
            what = (
                f"{row['points']} points"
                if row["measure"] == "unicity"
                else f"{row['measure']} ({row['granularity']})"
            )
            lines.append(
                f"  {what}: {100 * row['share_unique']:.1f} % of {row['devices']} devices "
                "singled out"
            )
        return "\n".join(lines)


def risk(
    pings: Prepared | Any,
    geography: Geography | None = None,
    config: Config | None = None,
    *,
    points: Sequence[int] = (1, 2, 3, 4, 5),
    spatial: str = "cell",
    temporal: str = "hour",
    samples: int | None = None,
    seed: int = 0,
    k: int | None = None,
    engine: Engine | None = None,
) -> Risk:
    """Measures how unique the pings' traces are (see the module's doc).

    ``pings`` is a :class:`crowdtally.Prepared`, which carries its geography and
    configuration (``geography`` and ``config`` may then be given for symmetry with the
    other verbs, and must be those it was prepared with, compared by their
    descriptions), or raw pings as ``analyze`` takes them (tables, Parquet paths,
    iterators of batches) with their ``geography`` and ``config``: these are read shard
    by shard within ``engine``'s memory budget, each shard's points waiting in its spill
    directory, for inputs larger than memory. Both give the same numbers.

    ``samples`` devices are drawn for unicity (default: every device), reproducibly for
    a ``seed``. ``k`` is the anonymity-set size counted as at risk (default: the
    configuration's k).

    Raises:
        crowdtally.ConfigError: a parameter is invalid (naming it).
        ValueError: ``geography`` or ``config`` are not the ones the pings were prepared
            with (by their descriptions, which do not show the key).
        TypeError: raw pings without their ``geography`` and ``config``.
    """
    keywords: dict[str, Any] = {
        "points": [int(p) for p in points],
        "spatial": spatial,
        "temporal": temporal,
        "samples": samples,
        "seed": seed,
        "k": k,
    }
    if not isinstance(pings, Prepared):
        if geography is None or config is None:
            raise TypeError(
                "pings that are not a crowdtally.Prepared need their geography and config: "
                f"crowdtally.risk(pings, geography, config), got {type(pings).__name__} alone"
            )
        table, report = _risk_table(
            pings, study=Study(geography, config), engine=engine, **keywords
        )
        return Risk(table, report)
    study = pings.study
    # Compared by their descriptions: a geography or configuration of another study
    # differs there, and the pings' own are the ones measured in any case.
    if geography is not None and repr(geography) != repr(study.geography):
        raise ValueError("geography is not the one the pings were prepared with")
    if config is not None and repr(config) != repr(study.config):
        raise ValueError("config is not the one the pings were prepared with")
    table, report = _risk_table(pings, **keywords)
    return Risk(table, report)
