"""Synthetic city scenarios with ground truth.

Nobody may share real subscriber pings, so crowdtally ships a generator whose truth is
known: a country of about 60 municipalities around Kortrijk, a dozen zones in the city,
and people with daily routines (residents, students, commuters, day visitors, tourists,
roamers and everybody else), of whom only the operator's customers produce pings.

    from crowdtally import synth

    city = synth.scenario(persons=20_000, days=28, seed=1)
    prepared = crowdtally.prepare(city.pings, city.geography, city.config())
    city.truth["persons"]  # true role, class, origin and home of every person

From the command line, ``python -m crowdtally.synth --persons 100000 --out data/``
writes ``pings.parquet``, ``truth_persons.parquet`` and ``truth_zone_days.parquet``
(this needs pyarrow).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from crowdtally._crowdtally import Config, Geography, Scenario, Table

__all__ = ["SyntheticCity", "main", "scenario"]


class SyntheticCity:
    """A generated scenario: ``pings``, ``geography``, ``config()`` and ``truth``."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario

    @property
    def scenario(self) -> Scenario:
        """The compiled generator."""
        return self._scenario

    @property
    def geography(self) -> Geography:
        """The study geography (municipalities, zones, study area ``kortrijk``)."""
        return self._scenario.geography

    @property
    def people(self) -> int:
        """How many people are simulated (customers or not)."""
        return self._scenario.people

    @property
    def period(self) -> tuple[str, str]:
        """The study period (first date, day after the last)."""
        return self._scenario.period

    @cached_property
    def pings(self) -> Table:
        """Every observed ping, as one Arrow-exportable table."""
        return self._scenario.pings()

    @cached_property
    def truth(self) -> dict[str, Table]:
        """The truth: ``persons`` (role, true class, origin, home of every person) and
        ``zone_days`` (person, zone and local date of every true visit)."""
        return self._scenario.truth()

    @cached_property
    def payments(self) -> dict[str, Any]:
        """Card payments of the city's people, driven by their true visits: ``merchants``
        (id, cell, zone and shop category of every merchant: the operator's eyes only),
        ``payments`` (per merchant, day and cardholder origin, as card schemes deliver
        them: the input of :func:`crowdtally.spend`) and ``spend_by_zone`` (the true
        card spend in cents of each zone over the period)."""
        return self._scenario.payments()

    def true_visitors(self) -> dict[str, int]:
        """The true number of distinct visitors (people, customers or not, whose class on
        their true trajectory is a day or overnight visitor) of each zone over the
        period, by zone id: what a release of the period estimates. Needs pyarrow."""
        import pyarrow as pa
        import pyarrow.compute as pc

        persons = pa.table(self.truth["persons"]).select(["person", "class"])
        classes = pa.array(["day_visitor", "overnight_visitor"])
        visitors = persons.filter(pc.is_in(persons["class"], classes))
        zone_days = pa.table(self.truth["zone_days"])
        zone_days = zone_days.set_column(1, "zone", pc.cast(zone_days["zone"], pa.string()))
        visited = zone_days.join(visitors.select(["person"]), "person", join_type="inner")
        counts = visited.group_by("zone").aggregate([("person", "count_distinct")])
        return dict(
            zip(
                counts["zone"].to_pylist(),
                counts["person_count_distinct"].to_pylist(),
                strict=True,
            )
        )

    def subscribers(self) -> dict[str, int]:
        """The operator's customers per municipality where they live, as its billing
        counts them: the ``subscribers=`` of a release, known without reading the pings
        (the differential-privacy mode needs them so)."""
        return self._scenario.subscribers()

    def config(self) -> Config:
        """A run configuration: the scenario's period and a key derived from its seed."""
        return self._scenario.config()

    def iter_batches(self, people_per_batch: int = 10_000) -> Iterator[Table]:
        """The pings in batches of people, generated one batch at a time."""
        return iter(self._scenario.iter_batches(people_per_batch))

    def write_parquet(self, directory: str | Path, people_per_batch: int = 10_000) -> Path:
        """Writes ``pings.parquet`` (batch by batch), ``truth_persons.parquet`` and
        ``truth_zone_days.parquet`` into ``directory``. Needs pyarrow."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as missing:  # pragma: no cover - pyarrow is a test dependency
            raise ImportError("write_parquet needs pyarrow: pip install pyarrow") from missing
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        writer = None
        try:
            for batch in self.iter_batches(people_per_batch):
                table = pa.table(batch)
                if writer is None:
                    writer = pq.ParquetWriter(out / "pings.parquet", table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        for name, table in self.truth.items():
            pq.write_table(pa.table(table), out / f"truth_{name}.parquet")
        return out

    def __repr__(self) -> str:
        return f"SyntheticCity({self._scenario!r})"


def scenario(
    preset: str = "kortrijk",
    persons: int | None = None,
    days: int = 92,
    start: str | dt.date = "2026-07-01",
    seed: int = 0,
    **overrides: Any,
) -> SyntheticCity:
    """Generates a synthetic city.

    ``persons`` sets the number of people simulated (about; the default scale is one
    thousandth of the full population, whose summer quarter has about 1.8 million
    visitors). Any other parameter of the generator can be overridden by name:
    ``scale``, ``municipalities``, ``roaming_share``, ``ping_interval``, ``jitter``,
    ``missing_rate``, ``position_error_m``, ``null_subscriber_rate``,
    ``bad_position_rate``, ``duplicate_rate``, ``outside_period_rate``, ``shuffle``,
    ``integer_ids``, ``cells``, ``tz``.
    """
    parameters: dict[str, Any] = {
        "preset": preset,
        "days": days,
        "start": start.isoformat() if isinstance(start, dt.date) else start,
        "seed": seed,
        **overrides,
    }
    if persons is not None:
        if persons <= 0:
            raise ValueError("persons must be positive")
        probe = Scenario(**{**parameters, "scale": 1e-6})
        parameters["scale"] = persons / probe.people_at_full_scale
    return SyntheticCity(Scenario(**parameters))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crowdtally.synth``: writes a scenario's pings and truth as Parquet."""
    parser = argparse.ArgumentParser(prog="python -m crowdtally.synth", description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the Parquet files")
    parser.add_argument("--persons", type=int, default=None, help="people to simulate")
    parser.add_argument("--scale", type=float, default=None, help="share of full scale")
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--start", default="2026-07-01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells", action="store_true", help="H3 cells instead of lat/lon")
    parser.add_argument("--integer-ids", action="store_true", help="integer subscriber ids")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"cells": args.cells, "integer_ids": args.integer_ids}
    if args.scale is not None:
        overrides["scale"] = args.scale
    city = scenario(
        persons=args.persons, days=args.days, start=args.start, seed=args.seed, **overrides
    )
    out = city.write_parquet(args.out)
    print(f"{city!r}: {len(city.truth['persons'])} people written to {out}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
