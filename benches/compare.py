"""The visitor release through crowdtally, polars and DuckDB: same input, same table?

Generates the synthetic ``kortrijk`` scenario (seed 2026, 92 days from 2026-07-01) at a
scale giving about ``--pings`` pings, writes its pings to Parquet once per position form
(lat/lon, and H3 cells), then runs each engine in its own subprocess, reading the Parquet
file and writing its release table to Parquet:

- ``crowdtally``: ``crowdtally.analyze`` on the Parquet file (read by its own reader);
- ``polars``: the method (shared METHOD.md §2-8, §7 and §8 as revised in 2026-12, with
  crowdtally's readings in docs/METHOD.md) written with polars lazy frames and
  expressions;
- ``duckdb``: the same written in DuckDB SQL with window functions.

The release: bucket ``day``, origin level ``municipality``, class ``visitor``, k = 30,
roll-up on, detected subscribers, roaming factors 1/0.3 for FR, NL and DE. The parent
checks that the tables of every pair of engines are identical: the same columns and
column types, the same rows in the same order (crowdtally's, docs/METHOD.md "Row
order"), every count, flag and null equal, and estimates, which are float sums each
engine adds in its own order, within a relative 1e-12. It says what differs and where
(columns, rows missing or out of order, the first differing rows), prints wall time,
CPU time, peak resident memory and throughput per engine, with ratios to crowdtally,
and exits non-zero when the tables differ.

    python benches/compare.py [--pings 1e7] [--form latlon|cell|both] [--order device|time]
                              [--workdir DIR]
                              [--only crowdtally,polars,duckdb] [--k 30] [--no-floor]
                              [--timeout SECONDS]

An engine stopped by ``--timeout`` or killed (the out-of-memory killer) is reported as
not finished, with the time it ran as a lower bound; the others are still compared.

With lat/lon, it also times h3o alone converting every position on all cores (the
floor of that path, through ``cargo run --release --example scale -- floor``).

The peers use h3-py (``h3.api.numpy_int.latlng_to_cell``, one call per ping, as h3-py 4
has no vectorised form) and Python's ``hmac`` (one call per distinct subscriber) for the
two per-value functions neither polars nor DuckDB has; everything else is theirs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import math
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from crowdtally import Config
    from crowdtally.synth import SyntheticCity

# About 1.0e9 pings per unit of scale over 92 days (measured on the scenario).
PINGS_PER_SCALE = 1.0e9
DAYS = 92
START = "2026-07-01"
SEED = 2026
# The scenario's own key is never shown (Config hides it), so every engine gets this one.
KEY = b"crowdtally benches/compare.py key"
LEVEL = "municipality"
ROAMING_FACTORS = {code: 1 / 0.3 for code in ("FR", "NL", "DE")}
ENGINE_NAMES = ("crowdtally", "polars", "duckdb")
FORMS = ("latlon", "cell")
ORDERS = ("device", "time")

KEYS = ("zone", "bucket_start", "class", "origin")
BANDS = ("band_0_1h", "band_1_2h", "band_2_4h", "band_4_8h", "band_8h_plus")
MEASURES = ("devices", "visits", "dwell_s", *BANDS)
ESTIMATES = ("est_devices", "est_visits", "est_low", "est_high")
COLUMNS = (*KEYS, *MEASURES, "suppressed", *ESTIMATES)
# crowdtally writes these as uint64, `dwell_s` as int64; the peers write the same types.
COUNTS = ("devices", "visits", *BANDS)
# Lower bounds of the dwell bands, seconds (§6).
BAND_FROM = (0, 3_600, 2 * 3_600, 4 * 3_600, 8 * 3_600)
Z_95 = 1.96
# The key of the roaming factor of every country without one of its own (§8).
ANY_COUNTRY = "*"
# Estimates are sums of products of floats, which each engine adds in its own order: they
# agree to a few units in the last place (about 1e-16 relative), not bit for bit. Every
# other value must be equal.
RELATIVE_TOLERANCE = 1e-12

GEOGRAPHY_FILES = ("regions", "region_cells", "zones", "zone_cells")


@dataclasses.dataclass(frozen=True)
class Job:
    """What one engine run reads and writes: file paths and the run's parameters."""

    pings: str
    geography: str
    out: str
    key_hex: str
    period: tuple[str, str]
    tz: str
    period_label: str | None
    home_country: str
    k: int
    max_gap: int
    min_dwell: int
    min_nights: int
    usual_env_min_days: int | None
    study_area: list[str]
    resolution: int
    region_resolution: int
    level: str
    roaming_factors: dict[str, float]

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.key_hex)

    @property
    def dates(self) -> tuple[dt.date, dt.date]:
        return dt.date.fromisoformat(self.period[0]), dt.date.fromisoformat(self.period[1])

    def geography_file(self, name: str) -> str:
        return str(Path(self.geography) / f"{name}.parquet")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Job:
        fields = json.loads(path.read_text())
        fields["period"] = tuple(fields["period"])
        return cls(**fields)


# -- the engines ----------------------------------------------------------------------


def checked_roaming_factors(factors: dict[str, float]) -> dict[str, float]:
    """The roaming factors by upper-cased code (§8): keys are two-letter country codes or
    "*" (every other country), factors at least 1. Anything else is a configuration
    error, raised before any work, as crowdtally raises it."""
    checked: dict[str, float] = {}
    for key, factor in factors.items():
        code = key.strip().upper()
        if not (code == ANY_COUNTRY or (len(code) == 2 and code.isascii() and code.isalpha())):
            raise ValueError(f"roaming_factors: {key!r} is not a two-letter country code or '*'")
        if not (math.isfinite(factor) and factor >= 1):
            raise ValueError(
                f"roaming_factors: the factor of {key!r} is not a number of at least 1: {factor}"
            )
        if code in checked:
            raise ValueError(f"roaming_factors: {code!r} is given twice")
        checked[code] = factor
    return checked


def crowdtally_release(job: Job) -> None:
    """The release by ``crowdtally.analyze``, reading the Parquet files itself."""
    import crowdtally as ct

    geography = ct.Geography.from_tables(
        **{name: job.geography_file(name) for name in GEOGRAPHY_FILES},
        study_area=job.study_area,
        resolution=job.resolution,
    )
    config = ct.Config(
        key=job.key,
        period=job.period,
        tz=job.tz,
        period_label=job.period_label,
        home_country=job.home_country,
        k=job.k,
        max_gap=job.max_gap,
        min_dwell=job.min_dwell,
        min_nights=job.min_nights,
        usual_env_min_days=job.usual_env_min_days,
    )
    release = ct.analyze(
        job.pings,
        geography,
        config,
        bucket="day",
        level=job.level,
        roaming_factors=job.roaming_factors,
    )
    release.write(job.out)


def polars_release(job: Job) -> None:
    """The release written with polars: §2 cleaning, §3 pseudonyms, location, §4 homes
    and classes, §5 visits, §6 day buckets, §7 disclosure control (unions of suppressed
    member zones, roll-up, residual, dwell bands on total rows), §8 extrapolation. Lazy
    queries for the per-ping work, eager frames for the small aggregates; Python only for
    the per-value HMAC and H3 calls and the loops over the region tree's levels."""
    import hmac
    from itertools import repeat

    import h3
    import numpy as np
    import polars as pl

    h3i = h3.api.numpy_int  # h3-py's integer API: cells as ints, collections as uint64 arrays
    k, gap, resolution = job.k, job.max_gap, job.resolution
    first_day, end_day = job.dates
    tz = ZoneInfo(job.tz)
    roaming_factors = checked_roaming_factors(job.roaming_factors)

    # -- geography: the region tree as (region, ancestor, distance), itself included -----
    regions = pl.read_parquet(job.geography_file("regions"))
    parent_of = regions.select(ancestor=pl.col("region_id"), parent=pl.col("parent_id"))
    step = regions.select(
        region=pl.col("region_id"), ancestor=pl.col("region_id"), distance=pl.lit(0)
    )
    chain = [step]
    while step.height:
        step = (
            step.join(parent_of, on="ancestor")
            .filter(pl.col("parent").is_not_null())
            .select("region", ancestor=pl.col("parent"), distance=pl.col("distance") + 1)
        )
        chain.append(step)
    ancestors = pl.concat(chain)
    inner = regions["parent_id"].drop_nulls().unique().to_list()
    leaves = regions.filter(~pl.col("region_id").is_in(inner))["region_id"].to_list()
    study_leaves = (
        ancestors.filter(pl.col("region").is_in(leaves), pl.col("ancestor").is_in(job.study_area))
        .get_column("region")
        .unique()
        .to_list()
    )
    tree = regions.select(
        region=pl.col("region_id"), parent=pl.col("parent_id"), population=pl.col("population")
    ).join(ancestors.group_by("region").agg(depth=pl.col("distance").max()), on="region")
    # Origins at the release level: a leaf's ancestor at that level, or the leaf itself.
    level_of = (
        ancestors.join(
            regions.select(ancestor=pl.col("region_id"), level=pl.col("level")), on="ancestor"
        )
        .filter(pl.col("region").is_in(leaves), pl.col("level") == job.level)
        .select(origin=pl.col("region"), level_origin=pl.col("ancestor"))
    )
    region_cells = pl.read_parquet(job.geography_file("region_cells")).select(
        region_cell=pl.col("cell").cast(pl.UInt64), leaf=pl.col("region_id")
    )
    zones = pl.read_parquet(job.geography_file("zones"))
    zone_cells = pl.read_parquet(job.geography_file("zone_cells")).select(
        zone=pl.col("zone_id"), cell=pl.col("cell").cast(pl.UInt64)
    )
    # A category is one more zone: the union of its zones' cells.
    category_cells = (
        zone_cells.join(
            zones.select(zone=pl.col("zone_id"), category=pl.col("category")), on="zone"
        )
        .filter(pl.col("category").is_not_null())
        .select(zone=pl.lit("category:") + pl.col("category"), cell=pl.col("cell"))
        .unique()
    )
    zone_cells = pl.concat([zone_cells, category_cells])
    # Every zone in the zones table's order, then every category some zone names, by name.
    zone_order = pl.concat(
        [
            zones.select(zone=pl.col("zone_id")),
            zones.filter(pl.col("category").is_not_null())
            .select(zone=pl.lit("category:") + pl.col("category"))
            .unique()
            .sort("zone"),
        ]
    )

    # -- §2 cleaning (row rules), in the method's order --------------------------------
    def local_midnight(day: dt.date) -> int:
        # zoneinfo's fold=0 is §1.4's compatible rule (earlier of a fold, forward in a gap).
        return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp())

    scan = pl.scan_parquet(job.pings)
    by_cell = "cell" in scan.collect_schema().names()  # the scenario writes one form or the other
    lat, lon = pl.col("lat"), pl.col("lon")
    position_given = (
        pl.col("cell").is_not_null()
        if by_cell
        else lat.is_finite() & lon.is_finite() & (lat.abs() <= 90) & (lon.abs() <= 180)
    )
    country = pl.col("country").str.strip_chars().str.to_uppercase()
    rows = (
        scan.filter(
            pl.col("subscriber").is_not_null(),  # bad_subscriber (text ids)
            position_given,  # bad_position (an invalid cell is found below)
            pl.col("ts").is_not_null(),  # bad_ts
            pl.col("ts").is_between(local_midnight(first_day), local_midnight(end_day), "left"),
        )
        .with_columns(country=pl.when(country != "").then(country))  # empty is no country
        .collect()
    )

    # -- location: the cell at the analysis resolution (h3-py, one call per value) -------
    if by_cell:
        raw = rows["cell"].unique()

        def at_resolution(cell: int) -> int:
            if not h3i.is_valid_cell(cell) or h3i.get_resolution(cell) < resolution:
                return 0  # bad_position: not a cell, or coarser than the analysis resolution
            return int(h3i.cell_to_parent(cell, resolution))

        located = pl.DataFrame(
            {"cell": raw, "cell9": np.fromiter(map(at_resolution, raw.to_list()), np.uint64)}
        )
        rows = (
            rows.join(located, on="cell")
            .filter(pl.col("cell9") != 0)
            .drop("cell")
            .rename({"cell9": "cell"})
        )
    else:
        located_cells = map(
            h3i.latlng_to_cell, rows["lat"].to_list(), rows["lon"].to_list(), repeat(resolution)
        )
        rows = rows.with_columns(
            cell=pl.Series(np.fromiter(located_cells, np.uint64, count=rows.height))
        )

    # -- §3 pseudonyms: one HMAC-SHA-256 per distinct subscriber with Python's hmac (polars
    # has none). The release depends on pseudonym values only through collisions. --------
    label = job.period_label or f"{first_day.year}Q{(first_day.month - 1) // 3 + 1}"
    prefix = b"crowdtally/v1\x00" + label.encode() + b"\x00"
    key = job.key

    def pseudonym(subscriber: str) -> int:
        digest = hmac.digest(key, prefix + subscriber.encode(), "sha256")
        return int.from_bytes(digest[:8], "big")

    subscribers = rows["subscriber"].unique()
    pseudonyms = pl.DataFrame(
        {
            "subscriber": subscribers,
            "device": pl.Series(map(pseudonym, subscribers.to_list()), dtype=pl.UInt64),
        }
    )

    # -- places: each distinct cell's leaf (through its parent at the region resolution) -
    distinct = rows["cell"].unique()
    places = pl.DataFrame(
        {
            "cell": distinct,
            "region_cell": np.fromiter(
                map(h3i.cell_to_parent, distinct.to_list(), repeat(job.region_resolution)),
                np.uint64,
            ),
        }
    ).join(region_cells, on="region_cell", how="left")

    # -- §2 duplicates: one row per (device, second), the smallest cell, then the smaller
    # country with none last; then the parts of day in local time (§4) --------------------
    local = (
        pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC").dt.convert_time_zone(job.tz)
    )
    hour = pl.col("hour")
    pings = (
        rows.lazy()
        .join(pseudonyms.lazy(), on="subscriber")
        .sort("device", "ts", "cell", "country", nulls_last=True)
        .unique(["device", "ts"], keep="first", maintain_order=True)
        .join(places.lazy().select("cell", "leaf"), on="cell", how="left", maintain_order="left")
        .select(
            "device", "ts", "cell", "leaf", "country", hour=local.dt.hour(), date=local.dt.date()
        )
        # Night of D: [D 22:00, D+1 06:00); daytime of D: [D 06:00, D 22:00). Local hours
        # are exact here: 06:00 and 22:00 are never in a DST change in Europe/Brussels.
        .with_columns(
            night=(hour >= 22) | (hour < 6),
            part_date=pl.when(hour < 6)
            .then(pl.col("date").dt.offset_by("-1d"))
            .otherwise(pl.col("date")),
            prev_ts=pl.col("ts").shift(1).over("device"),
            next_ts=pl.col("ts").shift(-1).over("device"),
        )
        .collect()
        .lazy()
    )
    del rows  # the input rows (gigabytes at 10^8 pings) are not needed past this point

    # -- §4 home, country, presence days, nights in the study area, class, origin --------
    home = (
        pings.filter(pl.col("night"), pl.col("leaf").is_not_null())
        .group_by("device", "leaf")
        .agg(nights=pl.col("part_date").n_unique(), night_pings=pl.len())
        .sort(["device", "nights", "night_pings", "leaf"], descending=[False, True, True, False])
        .group_by("device", maintain_order=True)
        .first()
        .filter(pl.col("nights") >= job.min_nights)
        .select("device", home=pl.col("leaf"))
    )
    device_country = (
        pings.filter(pl.col("country").is_not_null())
        .group_by("device", "country")
        .agg(n=pl.len())
        .sort(["device", "n", "country"], descending=[False, True, False])
        .group_by("device", maintain_order=True)
        .first()
        .select("device", "country")
    )
    in_study = pl.col("leaf").is_in(study_leaves)
    parts_in_study = (
        pings.filter(pl.col("leaf").is_not_null())
        .group_by("device", "night", "part_date", "leaf")
        .agg(n=pl.len())
        .group_by("device", "night", "part_date")
        .agg(
            study=pl.col("n").filter(in_study).sum(),
            elsewhere=pl.col("n").filter(~in_study).max().fill_null(0),
        )
        # Pings in the study area, together, at least as many as in any other one leaf.
        .filter(pl.col("study") >= 1, pl.col("study") >= pl.col("elsewhere"))
        .group_by("device")
        .agg(presence_days=(~pl.col("night")).sum(), study_nights=pl.col("night").sum())
    )
    usual_env = job.usual_env_min_days or max(5, math.ceil((end_day - first_day).days / 4))
    roamer = pl.col("country").is_not_null() & (pl.col("country") != job.home_country)
    devices = (
        pings.select("device")
        .unique()
        .join(home, on="device", how="left")
        .join(device_country, on="device", how="left")
        .join(parts_in_study, on="device", how="left")
        .with_columns(roamer=roamer, home=pl.when(~roamer).then(pl.col("home")))
        .with_columns(
            class_=pl.when(pl.col("home").is_in(study_leaves))
            .then(pl.lit("resident"))
            .when(pl.col("presence_days").fill_null(0) >= usual_env)
            .then(pl.lit("regular"))
            .when(pl.col("study_nights").fill_null(0) >= 1)
            .then(pl.lit("overnight_visitor"))
            .otherwise(pl.lit("day_visitor")),
            origin=pl.when(pl.col("roamer"))
            .then(pl.lit("country:") + pl.col("country"))
            .otherwise(pl.col("home").fill_null("unknown")),
        )
        .collect()
    )

    # -- §5 visits: runs of consecutive pings in a zone with gaps <= max_gap; start and end
    # split the time to the neighbouring pings at the (floored) midpoint ------------------
    ts, prev_ts, next_ts = pl.col("ts"), pl.col("prev_ts"), pl.col("next_ts")
    visits = (
        pings.with_columns(
            enter=pl.when(ts - prev_ts <= gap).then(prev_ts + (ts - prev_ts) // 2).otherwise(ts),
            leave=pl.when(next_ts - ts <= gap).then(ts + (next_ts - ts) // 2).otherwise(ts),
        )
        .join(zone_cells.lazy(), on="cell")
        .sort("device", "zone", "ts")
        # A run goes on when the previous ping in the zone is the device's previous ping.
        .with_columns(
            goes_on=(ts.shift(1).over("device", "zone") == prev_ts) & (ts - prev_ts <= gap)
        )
        .with_columns(run=(~pl.col("goes_on").fill_null(False)).cum_sum())
        .group_by("run")
        .agg(
            pl.col("device").first(),
            pl.col("zone").first(),
            start=pl.col("enter").first(),
            end=pl.col("leave").last(),
        )
        .filter(pl.col("end") - pl.col("start") >= job.min_dwell)  # qualifying visits
        .join(devices.lazy().select("device", "class_", "origin"), on="device")
        .filter(pl.col("class_").is_in(["day_visitor", "overnight_visitor"]))
    )

    # -- §6 day buckets (local days); each visit once per bucket it overlaps -----------
    days = pl.date_range(first_day, end_day, closed="left", eager=True)
    midnights = days.cast(pl.Datetime("us")).dt.replace_time_zone(job.tz)
    next_midnights = days.dt.offset_by("1d").cast(pl.Datetime("us")).dt.replace_time_zone(job.tz)
    buckets = pl.DataFrame(
        {
            "bucket_start": midnights.dt.strftime("%Y-%m-%dT%H:%M:%S%:z"),
            "b0": midnights.dt.epoch("s"),
            "b1": next_midnights.dt.epoch("s"),
        }
    )
    start, end = pl.col("start"), pl.col("end")
    band_of_dwell = pl.sum_horizontal(
        (end - start >= lower).cast(pl.Int32) for lower in BAND_FROM[1:]
    )
    # Kept per (visit, bucket) with its device: step 2 and step 6 count distinct devices
    # of parts of a group (suppressed member zones, dwell bands), which no per-origin sum
    # gives.
    visit_buckets = (
        # Overlap: start < b1 and end > b0, or b0 <= start < b1 for a zero-length visit.
        visits.with_columns(last=pl.max_horizontal(end - 1, start))
        .join_where(buckets.lazy(), pl.col("b0") <= pl.col("last"), pl.col("b1") > start)
        .select(
            "zone",
            "bucket_start",
            "device",
            "origin",
            starts_here=start >= pl.col("b0"),  # start < b1 holds for every bucket joined
            band=band_of_dwell,
            dwell_s=pl.min_horizontal(end, "b1") - pl.max_horizontal(start, "b0"),
        )
        .collect()
    )
    starts_here, band = pl.col("starts_here"), pl.col("band")
    cells = visit_buckets.group_by("zone", "bucket_start", "origin").agg(
        devices=pl.col("device").n_unique(),
        visits=starts_here.sum(),
        dwell_s=pl.col("dwell_s").sum(),
        **{name: (starts_here & (band == i)).sum() for i, name in enumerate(BANDS)},
    )
    # Per group and band: the distinct devices with a visit counted in it (step 6).
    band_devices = (
        visit_buckets.filter(starts_here)
        .group_by("zone", "bucket_start", "band")
        .agg(band_devices=pl.col("device").n_unique())
    )

    # -- §8 factors: population / detected subscribers, pooled up the tree where zero ----
    detected = (
        devices.filter(~pl.col("roamer"), pl.col("home").is_not_null())
        .group_by(leaf=pl.col("home"))
        .agg(subscribers=pl.len())
    )
    pooled = (
        tree.filter(pl.col("region").is_in(leaves), pl.col("population").is_not_null())
        .select(leaf=pl.col("region"), population=pl.col("population"))
        .join(detected, on="leaf", how="left")
        .join(ancestors.rename({"region": "leaf"}), on="leaf")
        .group_by("ancestor")
        .agg(pl.col("population").sum(), pl.col("subscribers").fill_null(0).sum())
        .filter(pl.col("subscribers") > 0)
        # A factor below 1 (more subscribers than inhabitants) is clamped to 1.
        .with_columns(factor=pl.max_horizontal(pl.col("population") / pl.col("subscribers"), 1.0))
    )
    root = tree.filter(pl.col("parent").is_null())["region"].item()
    national = pooled.filter(pl.col("ancestor") == root).select(
        origin=pl.lit("unknown"), factor="factor"
    )
    # country:XX: its own roaming factor, else the one of "*", else none.
    roaming = (
        devices.filter(pl.col("roamer"))
        .select(pl.col("origin").unique())
        .with_columns(
            factor=pl.col("origin")
            .str.strip_prefix("country:")
            .replace_strict(
                {code: f for code, f in roaming_factors.items() if code != ANY_COUNTRY},
                default=pl.lit(roaming_factors.get(ANY_COUNTRY), dtype=pl.Float64),
                return_dtype=pl.Float64,
            )
        )
    )
    factors = pl.concat(
        [
            ancestors.filter(pl.col("region").is_in(leaves))
            .join(pooled, on="ancestor")
            .sort("region", "distance")
            .group_by("region", maintain_order=True)
            .first()
            .select(origin=pl.col("region"), factor=pl.col("factor")),
            national,
            roaming,
        ]
    )
    f = pl.col("factor")
    sums = [pl.col(name).sum() for name in (*MEASURES, "est_d", "est_v", "var")]
    sums.append(pl.col("missing").any())
    group = ["zone", "bucket_start"]
    # Leaf rows with their estimate sums, rolled to the release level.
    level_rows = (
        cells.join(factors, on="origin", how="left")
        .with_columns(
            est_d=(pl.col("devices") * f).fill_null(0.0),
            est_v=(pl.col("visits") * f).fill_null(0.0),
            var=(pl.col("devices") * f * (f - 1)).fill_null(0.0),
            missing=f.is_null(),
        )
        .join(level_of, on="origin", how="left")
        .with_columns(origin=pl.coalesce("level_origin", "origin"))
        .group_by(*group, "origin")
        .agg(sums)
    )

    # -- §7 disclosure control --------------------------------------------------------
    # Step 1: a group below k is its suppressed total row alone.
    totals = level_rows.group_by(group).agg(sums)
    # Step 2: a category group goes too when the devices of its suppressed member zones
    # (distinct over those members) number 1 to k - 1.
    category_of = zones.filter(pl.col("category").is_not_null()).select(
        member=pl.col("zone_id"), zone=pl.lit("category:") + pl.col("category")
    )
    suppressed_members = totals.filter(pl.col("devices") < k).select(
        member=pl.col("zone"), bucket_start="bucket_start"
    )
    unions_suppressed = (
        visit_buckets.select(member=pl.col("zone"), bucket_start="bucket_start", device="device")
        .join(suppressed_members, on=["member", "bucket_start"])
        .join(category_of, on="member")
        .group_by(group)
        .agg(hidden=pl.col("device").n_unique())
        .filter(pl.col("hidden").is_between(1, k - 1))
    )
    shown = totals.filter(pl.col("devices") >= k).join(unions_suppressed, on=group, how="anti")
    rows_in = level_rows.join(shown.select(group), on=group)
    # Step 3: origin rows of k devices or more are released as they are.
    released = [rows_in.filter(pl.col("devices") >= k)]
    small = rows_in.filter(pl.col("devices") < k)
    residual = [small.filter(pl.col("origin") == "unknown")]
    # Step 4, roll-up: region rows below k pool into other:<parent>, deepest level first.
    pools = (
        small.join(tree.select("region", "parent"), left_on="origin", right_on="region")
        .drop("origin")
        .rename({"parent": "pool"})
    )
    residual.append(pools.filter(pl.col("pool").is_null()).drop("pool"))
    pools = pools.filter(pl.col("pool").is_not_null()).join(
        tree.select(pool=pl.col("region"), depth=pl.col("depth")), on="pool"
    )
    for depth in range(tree.select(pl.col("depth").max()).item(), -1, -1):
        level_pools = pools.filter(pl.col("depth") == depth).group_by(*group, "pool").agg(sums)
        released.append(
            level_pools.filter(pl.col("devices") >= k)
            .with_columns(origin=pl.lit("other:") + pl.col("pool"))
            .drop("pool")
        )
        up = (
            level_pools.filter(pl.col("devices") < k)
            .join(tree.select(pool=pl.col("region"), parent=pl.col("parent")), on="pool")
            .drop("pool")
        )
        residual.append(up.filter(pl.col("parent").is_null()).drop("parent"))
        pools = pl.concat(
            [
                pools.filter(pl.col("depth") != depth),
                up.filter(pl.col("parent").is_not_null())
                .rename({"parent": "pool"})
                .join(tree.select(pool=pl.col("region"), depth=pl.col("depth")), on="pool"),
            ],
            how="diagonal",
        )
    # country:XX rows below k pool into other:abroad, their own top.
    abroad = small.filter(pl.col("origin").str.starts_with("country:")).group_by(group).agg(sums)
    released.append(
        abroad.filter(pl.col("devices") >= k).with_columns(origin=pl.lit("other:abroad"))
    )
    residual.append(abroad.filter(pl.col("devices") < k))
    origin_rows = pl.concat(released, how="diagonal")
    rest = pl.concat(residual, how="diagonal").group_by(group).agg(sums)
    # Step 5, residual: below k, the smallest released rows (ties by origin) move in until k.
    moved = (
        origin_rows.join(
            rest.filter(pl.col("devices").is_between(1, k - 1)).select(
                *group, short=k - pl.col("devices")
            ),
            on=group,
        )
        .sort(*group, "devices", "origin")
        .filter(pl.col("devices").cum_sum().over(group) - pl.col("devices") < pl.col("short"))
        .drop("short")
    )
    origin_rows = origin_rows.join(
        moved.select(*group, "origin"), on=[*group, "origin"], how="anti"
    )
    rest = pl.concat([rest, moved.drop("origin")], how="diagonal").group_by(group).agg(sums)
    origin_rows = pl.concat(
        [origin_rows, rest.filter(pl.col("devices") > 0).with_columns(origin=pl.lit("other"))],
        how="diagonal",
    )
    # Step 6, dwell bands, on total rows only: a band of 1 to k - 1 devices is withheld; a
    # lone withheld band takes with it the released non-empty band of fewest visits (the
    # lower on a tie), or all five when there is none. Worked band by band, long form.
    visits_in_band = pl.col("visits_in_band")
    withheld = pl.col("band_devices").fill_null(0).is_between(1, k - 1)
    candidate = ~withheld & (visits_in_band > 0)
    complement = candidate & (candidate.cum_sum().over(group) == 1)
    lone = withheld.sum().over(group) == 1
    hidden = withheld | (lone & (complement | ~complement.any().over(group)))
    total_bands = (
        pl.concat(
            shown.select(*group, band=pl.lit(i), visits_in_band=pl.col(name))
            for i, name in enumerate(BANDS)
        )
        .join(band_devices, on=[*group, "band"], how="left")
        .sort(*group, "visits_in_band", "band")
        .with_columns(released=pl.when(~hidden).then(visits_in_band))
        .group_by(group)
        .agg(
            **{
                name: pl.col("released").filter(pl.col("band") == i).first()
                for i, name in enumerate(BANDS)
            }
        )
    )
    total_rows = shown.drop(BANDS).join(total_bands, on=group).with_columns(origin=pl.lit("*"))
    origin_rows = origin_rows.with_columns(pl.lit(None).alias(name) for name in BANDS)

    # -- §8 estimates and the interval; suppressed groups keep their total row alone ---
    half = Z_95 * pl.col("var").clip(lower_bound=0.0).sqrt()
    kept = pl.when(~pl.col("missing"))
    table = pl.concat(
        [
            pl.concat([total_rows, origin_rows], how="diagonal_relaxed").with_columns(
                suppressed=pl.lit(False),
                est_devices=kept.then(pl.col("est_d")),
                est_visits=kept.then(pl.col("est_v")),
                est_low=kept.then(pl.max_horizontal(pl.col("devices"), pl.col("est_d") - half)),
                est_high=kept.then(pl.col("est_d") + half),
            ),
            zone_order.join(buckets.select("bucket_start"), how="cross")
            .join(shown.select(group), on=group, how="anti")
            .with_columns(origin=pl.lit("*"), suppressed=pl.lit(True)),
        ],
        how="diagonal_relaxed",
    )
    # Row order and column types of the release (docs/METHOD.md, "Row order"): zones in
    # the zones table's order, then categories by name; days in time; the total row
    # first, then the origins in byte order.
    (
        table.join(zone_order.with_row_index("zone_rank"), on="zone")
        .join(buckets.select("bucket_start", "b0"), on="bucket_start")
        .sort("zone_rank", "b0", pl.col("origin") != "*", "origin")
        .select(
            "zone",
            "bucket_start",
            pl.lit("visitor").alias("class"),
            "origin",
            pl.col(*COUNTS).cast(pl.UInt64),
            pl.col("dwell_s").cast(pl.Int64),
            "suppressed",
            pl.col(*ESTIMATES).cast(pl.Float64),
        )
        .select(COLUMNS)
        .write_parquet(job.out)
    )


def duckdb_release(job: Job) -> None:
    """The release written in DuckDB SQL: the same steps as the polars version, as
    temporary tables built with joins, aggregates and window functions. Python registers
    the per-value HMAC and H3 functions (vectorised Arrow UDFs) and runs the loop over the
    region tree's levels."""
    import hmac
    from itertools import repeat

    import duckdb
    import duckdb.func
    import h3
    import numpy as np
    import pyarrow as pa

    h3i = h3.api.numpy_int  # h3-py's integer API: cells as ints, collections as uint64 arrays
    k, gap, resolution = job.k, job.max_gap, job.resolution
    first_day, end_day = job.dates
    roaming_factors = checked_roaming_factors(job.roaming_factors)
    con = duckdb.connect()

    def run(script: str, **parameters: Any) -> None:
        # DuckDB binds parameters in a script's last statement only: run them one by one.
        for statement in re.split(r";\s*\n", script):
            if statement.strip():
                names = set(re.findall(r"\$(\w+)", statement))
                con.execute(statement, {name: parameters[name] for name in names} or None)

    # -- the per-value functions SQL lacks: HMAC-SHA-256 and H3 (Python, one call each) -
    label = job.period_label or f"{first_day.year}Q{(first_day.month - 1) // 3 + 1}"
    prefix = b"crowdtally/v1\x00" + label.encode() + b"\x00"
    key = job.key

    def pseudonym(subscribers: Any) -> Any:
        # Called on distinct subscribers only. The release depends on pseudonym values only
        # through collisions.
        return pa.array(
            [
                int.from_bytes(hmac.digest(key, prefix + s.encode(), "sha256")[:8], "big")
                for s in subscribers.to_pylist()
            ],
            pa.uint64(),
        )

    def latlng_to_cell(lat: Any, lon: Any) -> Any:
        cells = map(h3i.latlng_to_cell, lat.to_pylist(), lon.to_pylist(), repeat(resolution))
        return pa.array(np.fromiter(cells, np.uint64, count=len(lat)))

    def at_resolution(cells: Any) -> Any:
        def one(cell: int) -> int:
            if not h3i.is_valid_cell(cell) or h3i.get_resolution(cell) < resolution:
                return 0  # bad_position: not a cell, or coarser than the analysis resolution
            return int(h3i.cell_to_parent(cell, resolution))

        return pa.array(np.fromiter(map(one, cells.to_pylist()), np.uint64, count=len(cells)))

    def region_cell(cells: Any) -> Any:
        parents = map(h3i.cell_to_parent, cells.to_pylist(), repeat(job.region_resolution))
        return pa.array(np.fromiter(parents, np.uint64, count=len(cells)))

    functions: list[tuple[str, Callable[..., Any], list[Any]]] = [
        ("pseudonym", pseudonym, ["varchar"]),
        ("latlng_to_cell", latlng_to_cell, ["double", "double"]),
        ("cell_at_resolution", at_resolution, ["ubigint"]),
        ("region_cell", region_cell, ["ubigint"]),
    ]
    for name, function, parameters in functions:
        con.create_function(name, function, parameters, "ubigint", type=duckdb.func.ARROW)

    # -- geography: the tree as (region, ancestor, distance), leaves, zones ------------
    files = {f"{name}_file": job.geography_file(name) for name in GEOGRAPHY_FILES}
    run(
        """
        CREATE TEMP TABLE regions AS SELECT region_id, level, parent_id, population
        FROM read_parquet($regions_file);
        CREATE TEMP TABLE region_cells AS
        SELECT cell::UBIGINT AS region_cell, region_id AS leaf
        FROM read_parquet($region_cells_file);
        CREATE TEMP TABLE zones AS SELECT zone_id, category FROM read_parquet($zones_file);
        -- Every zone with its position in the zones table, then every category some zone
        -- names (no position: after the zones, by name).
        CREATE TEMP TABLE zone_order AS
        SELECT zone_id AS zone, file_row_number AS position
        FROM read_parquet($zones_file, file_row_number = true)
        UNION ALL
        SELECT DISTINCT 'category:' || category, NULL FROM zones WHERE category IS NOT NULL;
        -- A category is one more zone: the union of its zones' cells.
        CREATE TEMP TABLE zone_cells AS
        SELECT zone_id AS zone, cell::UBIGINT AS cell FROM read_parquet($zone_cells_file)
        UNION
        SELECT 'category:' || z.category, c.cell::UBIGINT
        FROM read_parquet($zone_cells_file) c JOIN zones z USING (zone_id)
        WHERE z.category IS NOT NULL;
        """,
        **files,
    )
    run(
        """
        CREATE TEMP TABLE ancestors AS
        WITH RECURSIVE up(region, ancestor, distance) AS (
            SELECT region_id, region_id, 0 FROM regions
            UNION ALL
            SELECT up.region, r.parent_id, up.distance + 1
            FROM up JOIN regions r ON r.region_id = up.ancestor
            WHERE r.parent_id IS NOT NULL
        )
        SELECT * FROM up;
        CREATE TEMP TABLE tree AS
        SELECT r.region_id AS region, r.parent_id AS parent, r.population, d.depth,
               r.region_id NOT IN (SELECT parent_id FROM regions WHERE parent_id IS NOT NULL)
                   AS is_leaf
        FROM regions r
        JOIN (SELECT region, max(distance) AS depth FROM ancestors GROUP BY region) d
            ON d.region = r.region_id;
        CREATE TEMP TABLE study_leaves AS
        SELECT DISTINCT a.region AS leaf FROM ancestors a JOIN tree t ON t.region = a.region
        WHERE t.is_leaf AND list_contains($study_area, a.ancestor);
        -- Origins at the release level: a leaf's ancestor at that level, or the leaf itself.
        CREATE TEMP TABLE level_of AS
        SELECT a.region AS origin, a.ancestor AS level_origin
        FROM ancestors a JOIN tree t ON t.region = a.region
        JOIN regions r ON r.region_id = a.ancestor
        WHERE t.is_leaf AND r.level = $level;
        """,
        study_area=job.study_area,
        level=job.level,
    )

    # -- §2 cleaning (row rules in the method's order), location, §3 pseudonyms --------
    def local_midnight(day: dt.date) -> int:
        # zoneinfo's fold=0 is §1.4's compatible rule (earlier of a fold, forward in a gap).
        return int(dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(job.tz)).timestamp())

    schema = con.execute("SELECT * FROM read_parquet($p) LIMIT 0", {"p": job.pings}).description
    columns = {column[0] for column in schema}
    by_cell = "cell" in columns  # the scenario writes one form or the other
    position = (
        "cell IS NOT NULL"
        if by_cell
        else "isfinite(lat) AND isfinite(lon) AND abs(lat) <= 90 AND abs(lon) <= 180"
    )
    run(
        f"""
        CREATE TEMP TABLE kept AS
        SELECT subscriber, ts, {"cell" if by_cell else "lat, lon"},
               nullif(upper(trim(country)), '') AS country  -- empty is no country
        FROM read_parquet($pings)
        WHERE subscriber IS NOT NULL         -- bad_subscriber (text ids)
          AND {position}                     -- bad_position (an invalid cell: below)
          AND ts IS NOT NULL                 -- bad_ts
          AND ts >= $since AND ts < $until   -- outside_period
        """,
        pings=job.pings,
        since=local_midnight(first_day),
        until=local_midnight(end_day),
    )
    if by_cell:
        located = """
            SELECT k.subscriber, k.ts, c.cell, k.country FROM kept k
            JOIN (SELECT cell AS raw, cell_at_resolution(cell) AS cell
                  FROM (SELECT DISTINCT cell FROM kept)) c ON c.raw = k.cell
            WHERE c.cell <> 0
        """
    else:
        located = "SELECT subscriber, ts, latlng_to_cell(lat, lon) AS cell, country FROM kept"
    run(
        f"""
        CREATE TEMP TABLE deduplicated AS
        WITH located AS ({located}),
        pseudonyms AS (
            SELECT subscriber, pseudonym(subscriber) AS device
            FROM (SELECT DISTINCT subscriber FROM kept)
        )
        SELECT device, ts, cell, country FROM located JOIN pseudonyms USING (subscriber)
        -- Duplicates of (device, second): the smallest cell, then the smaller country,
        -- none last.
        QUALIFY row_number() OVER (PARTITION BY device, ts ORDER BY cell, country NULLS LAST) = 1
        """
    )
    run(
        """
        CREATE TEMP TABLE places AS
        SELECT p.cell, rc.leaf
        FROM (SELECT cell, region_cell(cell) AS region_cell
              FROM (SELECT DISTINCT cell FROM deduplicated)) p
        LEFT JOIN region_cells rc USING (region_cell);
        -- Night of D: [D 22:00, D+1 06:00); daytime of D: [D 06:00, D 22:00). Local hours
        -- are exact here: 06:00 and 22:00 are never in a DST change in Europe/Brussels.
        CREATE TEMP TABLE pings AS
        SELECT device, ts, cell, leaf, country,
               hour(local) >= 22 OR hour(local) < 6 AS night,
               CASE WHEN hour(local) < 6 THEN local::DATE - 1 ELSE local::DATE END AS part_date,
               lag(ts) OVER w AS prev_ts, lead(ts) OVER w AS next_ts
        FROM (SELECT d.*, p.leaf, timezone($tz, to_timestamp(d.ts)) AS local
              FROM deduplicated d LEFT JOIN places p USING (cell))
        WINDOW w AS (PARTITION BY device ORDER BY ts);
        """,
        tz=job.tz,
    )

    # -- §4 home, country, presence days, nights in the study area, class, origin --------
    usual_env = job.usual_env_min_days or max(5, math.ceil((end_day - first_day).days / 4))
    run(
        """
        CREATE TEMP TABLE devices AS
        WITH night_leaves AS (
            SELECT device, leaf, count(DISTINCT part_date) AS nights, count(*) AS night_pings
            FROM pings WHERE night AND leaf IS NOT NULL GROUP BY ALL
        ),
        homes AS (
            SELECT device, leaf AS home FROM night_leaves
            QUALIFY row_number() OVER (
                PARTITION BY device ORDER BY nights DESC, night_pings DESC, leaf) = 1
                AND nights >= $min_nights
        ),
        countries AS (
            SELECT device, country FROM (
                SELECT device, country, count(*) AS n FROM pings
                WHERE country IS NOT NULL GROUP BY ALL)
            QUALIFY row_number() OVER (PARTITION BY device ORDER BY n DESC, country) = 1
        ),
        parts AS (
            SELECT device, night, part_date,
                   coalesce(sum(n) FILTER (WHERE in_study), 0) AS study,
                   coalesce(max(n) FILTER (WHERE NOT in_study), 0) AS elsewhere
            FROM (SELECT device, night, part_date, leaf, count(*) AS n,
                         leaf IN (SELECT leaf FROM study_leaves) AS in_study
                  FROM pings WHERE leaf IS NOT NULL GROUP BY ALL)
            GROUP BY ALL
        ),
        presence AS (
            -- Pings in the study area, together, at least as many as in any other one leaf.
            SELECT device, count(*) FILTER (WHERE NOT night) AS presence_days,
                   count(*) FILTER (WHERE night) AS study_nights
            FROM parts WHERE study >= 1 AND study >= elsewhere GROUP BY device
        ),
        profiles AS (
            SELECT d.device, c.country,
                   coalesce(c.country <> $home_country, false) AS roamer,
                   h.home, coalesce(p.presence_days, 0) AS presence_days,
                   coalesce(p.study_nights, 0) AS study_nights
            FROM (SELECT DISTINCT device FROM pings) d
            LEFT JOIN homes h USING (device) LEFT JOIN countries c USING (device)
            LEFT JOIN presence p USING (device)
        )
        SELECT device, roamer, CASE WHEN roamer THEN NULL ELSE home END AS home,
               CASE WHEN NOT roamer AND home IN (SELECT leaf FROM study_leaves) THEN 'resident'
                    WHEN presence_days >= $usual_env THEN 'regular'
                    WHEN study_nights >= 1 THEN 'overnight_visitor'
                    ELSE 'day_visitor' END AS class,
               CASE WHEN roamer THEN 'country:' || country ELSE coalesce(home, 'unknown') END
                   AS origin
        FROM profiles
        """,
        min_nights=job.min_nights,
        home_country=job.home_country,
        usual_env=usual_env,
    )

    # -- §5 visits: runs of consecutive pings in a zone with gaps <= max_gap; start and end
    # split the time to the neighbouring pings at the (floored) midpoint ------------------
    run(
        f"""
        CREATE TEMP TABLE visits AS
        WITH in_zone AS (
            SELECT z.zone, p.device, p.ts, p.prev_ts,
                   CASE WHEN p.ts - p.prev_ts <= {gap}
                        THEN p.prev_ts + (p.ts - p.prev_ts) // 2 ELSE p.ts END AS enter,
                   CASE WHEN p.next_ts - p.ts <= {gap}
                        THEN p.ts + (p.next_ts - p.ts) // 2 ELSE p.ts END AS leave,
                   lag(p.ts) OVER (PARTITION BY p.device, z.zone ORDER BY p.ts) AS prev_in_zone
            FROM pings p JOIN zone_cells z USING (cell)
        ),
        runs AS (
            -- A run goes on when the previous ping in the zone is the device's previous ping.
            SELECT *, sum(CASE WHEN prev_in_zone = prev_ts AND ts - prev_ts <= {gap}
                               THEN 0 ELSE 1 END)
                          OVER (PARTITION BY device, zone ORDER BY ts) AS run
            FROM in_zone
        )
        SELECT v.zone, v.device, v.start, v."end", d.origin
        FROM (SELECT zone, device, arg_min(enter, ts) AS start, arg_max(leave, ts) AS "end"
              FROM runs GROUP BY zone, device, run) v
        JOIN devices d USING (device)
        WHERE v."end" - v.start >= {job.min_dwell}  -- qualifying visits
          AND d.class IN ('day_visitor', 'overnight_visitor')
        """
    )

    # -- §6 day buckets (local days); each visit once per bucket it overlaps -----------
    counted_in_band = ",\n".join(
        f"count(*) FILTER (WHERE starts_here AND band = {i}) AS {name}"
        for i, name in enumerate(BANDS)
    )
    band = " + ".join(f'(v."end" - v.start >= {lower})::INT' for lower in BAND_FROM[1:])
    run(
        f"""
        CREATE TEMP TABLE buckets AS
        SELECT b0, b1,
               strftime(timezone($tz, to_timestamp(b0)), '%Y-%m-%dT%H:%M:%S')
               || CASE WHEN offset_s < 0 THEN '-' ELSE '+' END
               || printf('%02d:%02d', abs(offset_s) // 3600, abs(offset_s) % 3600 // 60)
                   AS bucket_start
        FROM (
            SELECT b0, b1,
                   epoch(timezone($tz, to_timestamp(b0)))::BIGINT - b0 AS offset_s
            FROM (
                SELECT epoch(timezone($tz, day))::BIGINT AS b0,
                       epoch(timezone($tz, day + INTERVAL 1 DAY))::BIGINT AS b1
                FROM generate_series($first::TIMESTAMP, $end::TIMESTAMP - INTERVAL 1 DAY,
                                     INTERVAL 1 DAY) AS days(day)
            )
        );
        -- Kept per (visit, bucket) with its device: step 2 and step 6 count distinct
        -- devices of parts of a group (suppressed member zones, dwell bands), which no
        -- per-origin sum gives.
        CREATE TEMP TABLE visit_buckets AS
        SELECT v.zone, b.bucket_start, v.device, v.origin,
               v.start >= b.b0 AS starts_here,  -- start < b1 holds for every bucket joined
               {band} AS band,
               least(v."end", b.b1) - greatest(v.start, b.b0) AS dwell_s
        FROM visits v JOIN buckets b
        -- Overlap: start < b1 and end > b0, or b0 <= start < b1 for a zero-length visit.
        ON b.b0 <= greatest(v."end" - 1, v.start) AND b.b1 > v.start;
        CREATE TEMP TABLE cells AS
        SELECT zone, bucket_start, origin,
               count(DISTINCT device) AS devices,
               count(*) FILTER (WHERE starts_here) AS visits,
               sum(dwell_s) AS dwell_s,
               {counted_in_band}
        FROM visit_buckets
        GROUP BY zone, bucket_start, origin;
        -- Per group and band: the distinct devices with a visit counted in it (step 6).
        CREATE TEMP TABLE band_devices AS
        SELECT zone, bucket_start, band, count(DISTINCT device) AS band_devices
        FROM visit_buckets WHERE starts_here
        GROUP BY zone, bucket_start, band;
        """,
        first=first_day.isoformat(),
        end=end_day.isoformat(),
        tz=job.tz,
    )

    # -- §8 factors: population / detected subscribers, pooled up the tree where zero ----
    run(
        """
        CREATE TEMP TABLE pooled AS
        SELECT a.ancestor, sum(t.population) AS population,
               sum(coalesce(s.subscribers, 0)) AS subscribers
        FROM tree t
        JOIN ancestors a ON a.region = t.region
        LEFT JOIN (SELECT home AS region, count(*) AS subscribers FROM devices
                   WHERE NOT roamer AND home IS NOT NULL GROUP BY home) s ON s.region = t.region
        WHERE t.is_leaf AND t.population IS NOT NULL
        GROUP BY a.ancestor
        HAVING sum(coalesce(s.subscribers, 0)) > 0;
        CREATE TEMP TABLE roaming AS
        SELECT unnest($codes::VARCHAR[]) AS code, unnest($factors::DOUBLE[]) AS factor;
        -- A leaf or pooled factor below 1 (more subscribers than inhabitants) is clamped
        -- to 1; country:XX takes its own roaming factor, else the one of '*', else none.
        CREATE TEMP TABLE factors AS
        SELECT a.region AS origin,
               greatest(arg_min(p.population / p.subscribers, a.distance), 1.0) AS factor
        FROM ancestors a JOIN tree t ON t.region = a.region
        JOIN pooled p ON p.ancestor = a.ancestor
        WHERE t.is_leaf GROUP BY a.region
        UNION ALL
        SELECT 'unknown', greatest(p.population / p.subscribers, 1.0)
        FROM pooled p JOIN tree t ON t.region = p.ancestor WHERE t.parent IS NULL
        UNION ALL
        SELECT d.origin, coalesce(own.factor, any_country.factor)
        FROM (SELECT DISTINCT origin FROM devices WHERE roamer) d
        LEFT JOIN roaming own ON d.origin = 'country:' || own.code
        LEFT JOIN roaming any_country ON any_country.code = '*';
        """,
        codes=list(roaming_factors),
        factors=list(roaming_factors.values()),
    )
    sums = ", ".join(
        [f"sum({name})::BIGINT AS {name}" for name in MEASURES]
        + [f"sum({name}) AS {name}" for name in ("est_d", "est_v", "var")]
        + ["bool_or(missing) AS missing"]
    )
    measures = ", ".join([*MEASURES, "est_d", "est_v", "var", "missing"])
    run(
        f"""
        -- Leaf rows with their estimate sums, rolled to the release level.
        CREATE TEMP TABLE level_rows AS
        SELECT zone, bucket_start, coalesce(l.level_origin, c.origin) AS origin, {sums}
        FROM (SELECT c.*, coalesce(c.devices * f.factor, 0) AS est_d,
                     coalesce(c.visits * f.factor, 0) AS est_v,
                     coalesce(c.devices * f.factor * (f.factor - 1), 0) AS var,
                     f.factor IS NULL AS missing
              FROM cells c LEFT JOIN factors f USING (origin)) c
        LEFT JOIN level_of l USING (origin)
        GROUP BY ALL;

        -- §7 disclosure control
        -- Step 1: a group below k is its suppressed total row alone.
        CREATE TEMP TABLE totals AS
        SELECT zone, bucket_start, {sums} FROM level_rows GROUP BY ALL;
        -- Step 2: a category group goes too when the devices of its suppressed member zones
        -- (distinct over those members) number 1 to k - 1.
        CREATE TEMP TABLE unions_suppressed AS
        SELECT 'category:' || z.category AS zone, o.bucket_start
        FROM visit_buckets o
        JOIN zones z ON z.zone_id = o.zone
        JOIN totals member ON member.zone = o.zone AND member.bucket_start = o.bucket_start
        WHERE z.category IS NOT NULL AND member.devices < {k}
        GROUP BY ALL
        HAVING count(DISTINCT o.device) BETWEEN 1 AND {k - 1};
        CREATE TEMP TABLE shown AS
        SELECT * FROM totals ANTI JOIN unions_suppressed USING (zone, bucket_start)
        WHERE devices >= {k};
        CREATE TEMP TABLE small AS
        SELECT r.* FROM level_rows r JOIN shown USING (zone, bucket_start) WHERE r.devices < {k};
        -- Step 3: origin rows of k devices or more are released as they are.
        CREATE TEMP TABLE released AS
        SELECT r.* FROM level_rows r JOIN shown USING (zone, bucket_start) WHERE r.devices >= {k};
        -- Step 4, roll-up: region rows below k pool into other:<parent>, deepest level first.
        CREATE TEMP TABLE pools AS
        SELECT zone, bucket_start, t.parent AS pool, {measures}
        FROM small s JOIN tree t ON t.region = s.origin WHERE t.parent IS NOT NULL;
        CREATE TEMP TABLE residual AS
        SELECT zone, bucket_start, {measures} FROM small WHERE origin = 'unknown'
        UNION ALL
        SELECT zone, bucket_start, {measures}
        FROM small s JOIN tree t ON t.region = s.origin WHERE t.parent IS NULL;
        """
    )
    (max_depth,) = con.execute("SELECT max(depth) FROM tree").fetchone() or (0,)
    for depth in range(max_depth, -1, -1):
        run(
            f"""
            CREATE OR REPLACE TEMP TABLE level_pools AS
            SELECT zone, bucket_start, pool, t.parent, {sums}
            FROM pools JOIN tree t ON t.region = pool WHERE t.depth = {depth}
            GROUP BY ALL;
            DELETE FROM pools WHERE pool IN (SELECT region FROM tree WHERE depth = {depth});
            INSERT INTO released BY NAME
            SELECT * EXCLUDE (pool, parent), 'other:' || pool AS origin
            FROM level_pools WHERE devices >= {k};
            INSERT INTO pools BY NAME
            SELECT * EXCLUDE (pool, parent), parent AS pool
            FROM level_pools WHERE devices < {k} AND parent IS NOT NULL;
            INSERT INTO residual BY NAME
            SELECT * EXCLUDE (pool, parent) FROM level_pools
            WHERE devices < {k} AND parent IS NULL;
            """
        )
    band_columns = ", ".join(BANDS)
    band_names = ", ".join(f"({i}, '{name}')" for i, name in enumerate(BANDS))
    released_bands = ",\n".join(
        f"max(visits) FILTER (WHERE band = {i} AND NOT hidden) AS {name}"
        for i, name in enumerate(BANDS)
    )
    run(
        f"""
        -- country:XX rows below k pool into other:abroad, their own top.
        CREATE TEMP TABLE abroad AS
        SELECT zone, bucket_start, {sums} FROM small
        WHERE starts_with(origin, 'country:') GROUP BY ALL;
        INSERT INTO released BY NAME
        SELECT *, 'other:abroad' AS origin FROM abroad WHERE devices >= {k};
        INSERT INTO residual BY NAME SELECT * FROM abroad WHERE devices < {k};
        -- Step 5, residual: below k, the smallest released rows (ties by origin) move in
        -- until k.
        CREATE TEMP TABLE moved AS
        SELECT * EXCLUDE (short, before) FROM (
            SELECT r.*, {k} - o.devices AS short,
                   coalesce(sum(r.devices) OVER (
                       PARTITION BY zone, bucket_start ORDER BY r.devices, r.origin
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
            FROM released r
            JOIN (SELECT zone, bucket_start, sum(devices) AS devices FROM residual GROUP BY ALL
                  HAVING sum(devices) BETWEEN 1 AND {k - 1}) o USING (zone, bucket_start)
        ) WHERE before < short;
        DELETE FROM released r USING moved m
        WHERE r.zone = m.zone AND r.bucket_start = m.bucket_start AND r.origin = m.origin;
        INSERT INTO residual BY NAME SELECT * EXCLUDE (origin) FROM moved;
        INSERT INTO released BY NAME
        SELECT zone, bucket_start, 'other' AS origin, {sums} FROM residual
        GROUP BY ALL HAVING sum(devices) > 0;

        -- Step 6, dwell bands, on total rows only: a band of 1 to k - 1 devices is
        -- withheld; a lone withheld band takes with it the released non-empty band of
        -- fewest visits (the lower on a tie), or all five when there is none.
        CREATE TEMP TABLE total_bands AS
        WITH by_band AS (
            SELECT u.zone, u.bucket_start, n.band, u.visits,
                   coalesce(d.band_devices, 0) BETWEEN 1 AND {k - 1} AS withheld
            FROM (UNPIVOT (SELECT zone, bucket_start, {band_columns} FROM shown)
                  ON {band_columns} INTO NAME name VALUE visits) u
            JOIN (VALUES {band_names}) n(band, name) USING (name)
            LEFT JOIN band_devices d USING (zone, bucket_start, band)
        ),
        marked AS (
            SELECT *, count(*) FILTER (WHERE withheld) OVER same_group = 1 AS lone,
                   NOT withheld AND visits > 0 AS candidate
            FROM by_band
            WINDOW same_group AS (PARTITION BY zone, bucket_start)
        ),
        ranked AS (
            SELECT *, candidate AND row_number() OVER (
                PARTITION BY zone, bucket_start, candidate ORDER BY visits, band) = 1
                AS complement
            FROM marked
        )
        SELECT zone, bucket_start, {released_bands}
        FROM (
            SELECT *, withheld OR (lone AND (complement OR NOT bool_or(complement) OVER (
                PARTITION BY zone, bucket_start))) AS hidden
            FROM ranked
        )
        GROUP BY zone, bucket_start;
        """
    )

    # -- §8 estimates and the interval; suppressed groups keep their total row alone ---
    half = f"{Z_95} * sqrt(greatest(var, 0))"
    typed_measures = ", ".join(
        f"{name}::{'UBIGINT' if name in COUNTS else 'BIGINT'} AS {name}" for name in MEASURES
    )
    run(
        f"""
        CREATE TEMP TABLE release AS
        WITH shown_rows AS (
            SELECT s.* EXCLUDE ({band_columns}), b.* EXCLUDE (zone, bucket_start),
                   '*' AS origin
            FROM shown s JOIN total_bands b USING (zone, bucket_start)
            UNION ALL BY NAME
            -- Bands are a breakdown of the group: origin rows have none (step 6).
            SELECT * EXCLUDE ({band_columns}) FROM released
        ),
        release_rows AS (
            SELECT zone, bucket_start, origin, {", ".join(MEASURES)}, false AS suppressed,
                   CASE WHEN NOT missing THEN est_d END AS est_devices,
                   CASE WHEN NOT missing THEN est_v END AS est_visits,
                   CASE WHEN NOT missing THEN greatest(devices, est_d - {half}) END AS est_low,
                   CASE WHEN NOT missing THEN est_d + {half} END AS est_high
            FROM shown_rows
            UNION ALL BY NAME
            SELECT zone, bucket_start, '*' AS origin, true AS suppressed
            FROM zone_order CROSS JOIN buckets
            ANTI JOIN shown USING (zone, bucket_start)
        )
        -- Row order of the release (docs/METHOD.md, "Row order"): zones in the zones
        -- table's order, then categories by name; days in time; the total row first,
        -- then the origins in byte order.
        SELECT zone, bucket_start, 'visitor' AS class, origin, {typed_measures}, suppressed,
               est_devices, est_visits, est_low, est_high
        FROM release_rows JOIN zone_order USING (zone) JOIN buckets USING (bucket_start)
        ORDER BY position NULLS LAST, zone, b0, origin <> '*', origin
        """
    )
    con.table("release").write_parquet(job.out)


ENGINES: dict[str, Callable[[Job], None]] = {
    "crowdtally": crowdtally_release,
    "polars": polars_release,
    "duckdb": duckdb_release,
}
# Imported before the clock starts, so that each engine's time is its work.
ENGINE_IMPORTS = {
    "crowdtally": ("crowdtally",),
    "polars": ("polars", "h3", "numpy"),
    "duckdb": ("duckdb", "h3", "numpy", "pyarrow"),
}


# -- inputs: pings and geography in the workdir ---------------------------------------


def write_pings(directory: Path, target: int, form: str, order: str) -> Path:
    """Writes the scenario's pings once per (size, form, order); later runs reuse the
    file. ``order="time"`` sorts the rows by time, as an operator's event export comes:
    consecutive rows are pings of different devices far apart."""
    from crowdtally import synth

    pings = directory / "pings.parquet"
    stamp = directory / "scenario.json"
    scale = target / PINGS_PER_SCALE
    wanted = {
        "scale": scale,
        "days": DAYS,
        "start": START,
        "seed": SEED,
        "cells": form == "cell",
        "order": order,
    }
    if pings.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return pings
    city = synth.scenario(scale=scale, days=DAYS, start=START, seed=SEED, cells=form == "cell")
    print(f"writing {city!r} ({form}, {order} order) to {directory}", flush=True)
    city.write_parquet(directory)
    if order == "time":
        import pyarrow.parquet as pq

        table = pq.read_table(pings)
        pq.write_table(table.sort_by("ts"), pings, row_group_size=1 << 20)
        del table
    stamp.write_text(json.dumps(wanted) + "\n")
    return pings


@dataclasses.dataclass(frozen=True)
class GeographyTables:
    """The four tables of ``Geography.from_tables`` (pyarrow tables) and its arguments."""

    tables: dict[str, Any]
    study_area: list[str]
    resolution: int
    region_resolution: int

    def write(self, directory: Path) -> Path:
        import pyarrow.parquet as pq

        directory.mkdir(parents=True, exist_ok=True)
        for name in GEOGRAPHY_FILES:
            pq.write_table(self.tables[name], directory / f"{name}.parquet")
        return directory


def scenario_geography(city: SyntheticCity) -> GeographyTables:
    """The scenario's own geography, through ``Geography.to_tables()``."""
    import pyarrow as pa

    geography = city.geography
    return GeographyTables(
        tables={name: pa.table(table) for name, table in geography.to_tables().items()},
        study_area=geography.study_area,
        resolution=geography.resolution,
        region_resolution=geography.region_resolution or geography.resolution,
    )


def write_jobs(
    directory: Path, pings: Path, geography: Path, tables: GeographyTables, config: Config, k: int
) -> dict[str, Path]:
    """Writes one job file per engine; returns their paths."""
    assert config.period is not None, "the scenario's configuration names its period"
    jobs = {}
    for engine in ENGINE_NAMES:
        job = Job(
            pings=str(pings),
            geography=str(geography),
            out=str(directory / f"release-{engine}.parquet"),
            key_hex=KEY.hex(),
            period=config.period,
            tz=config.tz,
            period_label=config.period_label,
            home_country=config.home_country,
            k=k,
            max_gap=config.max_gap,
            min_dwell=config.min_dwell,
            min_nights=config.min_nights,
            usual_env_min_days=config.usual_env_min_days,
            study_area=tables.study_area,
            resolution=tables.resolution,
            region_resolution=tables.region_resolution,
            level=LEVEL,
            roaming_factors=ROAMING_FACTORS,
        )
        jobs[engine] = directory / f"job-{engine}.json"
        job.save(jobs[engine])
    return jobs


# -- one engine per subprocess --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measurement:
    engine: str
    form: str
    pings: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    # Why the engine did not finish (timed out, killed); empty when it did. Its wall time
    # is then how long it ran: a lower bound.
    unfinished: str = ""


def child(engine: str, job_file: Path) -> int:
    """Runs one engine (``--engine``): prints wall time, CPU time (all threads) and the
    process's peak resident memory as JSON."""
    job = Job.load(job_file)
    for module in ENGINE_IMPORTS[engine]:
        importlib.import_module(module)
    # For an engine stopped before it ends: when its work began (imports excluded).
    print(json.dumps({"working_since": time.time()}), flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    ENGINES[engine](job)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib()}))
    return 0


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB. Linux keeps ``ru_maxrss`` across
    fork and exec, so a child started by a parent that once held more would report the
    parent's peak; ``VmHWM`` is the peak of this program's own address space."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_engine(
    engine: str, form: str, job_file: Path, pings: int, timeout: float | None
) -> Measurement:
    """Runs one engine in a child process. An engine that runs past `timeout` seconds
    or is killed by a signal (the kernel's out-of-memory killer sends SIGKILL) is
    reported as unfinished rather than failing the comparison."""
    command = [sys.executable, __file__, "--engine", engine, "--job", str(job_file)]

    def unfinished(output: str | bytes | None, why: str) -> Measurement:
        # The time it worked, from the child's note of when its work began.
        text = output.decode() if isinstance(output, bytes) else output or ""
        notes = [line for line in text.splitlines() if line.startswith('{"working_since"')]
        began = json.loads(notes[0])["working_since"] if notes else time.time()
        return Measurement(engine, form, pings, time.time() - began, math.nan, math.nan, why)

    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        return unfinished(stopped.stdout, f"stopped after --timeout {timeout:g} s")
    if done.returncode < 0:
        signal = -done.returncode
        why = " (the out-of-memory killer sends 9)" if signal == 9 else ""
        return unfinished(done.stdout, f"killed by signal {signal}{why}")
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{engine} ({form}) failed with exit status {done.returncode}")
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    return Measurement(engine=engine, form=form, pings=pings, **numbers)


# -- comparison -----------------------------------------------------------------------


def compare_releases(tables: dict[str, Path], shown: int = 10) -> tuple[bool, list[str]]:
    """Compares the release tables of every pair of engines. Identical means: the same
    column names, order and types; the same rows (each key once) in the same order; every
    count, flag and null equal; estimates within a relative ``RELATIVE_TOLERANCE``.
    Returns whether all are identical, and lines saying so or what differs and where
    (the first differing rows of each pair)."""
    names = list(tables)
    lines: list[str] = []
    identical, rows, largest = True, 0, 0.0
    for i, base in enumerate(names):
        for other in names[i + 1 :]:
            comparison = compare_pair(base, tables[base], other, tables[other], shown)
            rows, largest = comparison.rows, max(largest, comparison.largest_relative)
            if comparison.problems:
                identical = False
                lines.append(f"{other} differs from {base}:")
                lines.extend(f"  {problem}" for problem in comparison.problems)
            else:
                lines.append(f"{other} and {base} are identical")
    if identical:
        return True, [
            f"the release tables of {', '.join(names)} are identical: {rows:,} rows in the "
            "same order, the same column types, every count, flag and null equal, estimates "
            f"within a relative {largest:.1e} of each other (allowed: {RELATIVE_TOLERANCE:g})"
        ]
    return False, lines


@dataclasses.dataclass(frozen=True)
class PairComparison:
    # Rows of the first table.
    rows: int
    # What differs, with the first differing rows; empty when the tables are identical.
    problems: list[str]
    # The largest relative difference of an estimate between rows of the same key.
    largest_relative: float


def compare_pair(
    base_name: str, base_path: Path, name: str, path: Path, shown: int
) -> PairComparison:
    """Compares one engine's release table (``name``) with another's (``base_name``)."""
    import polars as pl

    base, other = pl.read_parquet(base_path), pl.read_parquet(path)
    problems: list[str] = []
    for engine, frame in ((base_name, base), (name, other)):
        # §6 fixes the first columns; columns for people (names, a timestamp) may follow.
        if tuple(frame.columns[: len(COLUMNS)]) != COLUMNS:
            problems.append(f"{engine} has the columns {frame.columns}, not {list(COLUMNS)}")
    if problems:
        return PairComparison(base.height, problems, math.nan)
    base, other = base.select(COLUMNS), other.select(COLUMNS)
    types = [
        f"{column} {base.schema[column]} vs {other.schema[column]}"
        for column in COLUMNS
        if base.schema[column] != other.schema[column]
    ]
    if types:
        problems.append(f"column types differ ({base_name} vs {name}): {', '.join(types)}")
    for engine, frame in ((base_name, base), (name, other)):
        repeated = frame.filter(frame.select(KEYS).is_duplicated())
        if repeated.height:
            example = " ".join(str(value) for value in repeated.row(0)[: len(KEYS)])
            problems.append(
                f"{engine} has {repeated.height} rows whose key is not unique, e.g. {example}"
            )

    def comparable(frame: pl.DataFrame) -> pl.DataFrame:
        # Common types, so that a difference of type does not hide differences of value.
        return frame.with_columns(
            pl.col(*KEYS).cast(pl.String),
            pl.col(*MEASURES).cast(pl.Int64),
            pl.col("suppressed").cast(pl.Boolean),
            pl.col(*ESTIMATES).cast(pl.Float64),
        ).with_row_index("position", offset=1)  # row numbers from 1

    joined = comparable(base).join(
        comparable(other), on=KEYS, how="full", coalesce=True, suffix="_other", nulls_equal=True
    )
    in_base, in_other = pl.col("position").is_not_null(), pl.col("position_other").is_not_null()
    in_both = in_base & in_other
    differs = {
        column: ~pl.col(column).eq_missing(pl.col(f"{column}_other"))
        for column in (*MEASURES, "suppressed")
    }
    relative: dict[str, pl.Expr] = {}
    for column in ESTIMATES:
        a, b = pl.col(column), pl.col(f"{column}_other")
        relative[column] = ((a - b).abs() / pl.max_horizontal(a.abs(), b.abs())).fill_nan(0.0)
        differs[column] = a.is_null().ne(b.is_null()) | (relative[column] > RELATIVE_TOLERANCE)
    flagged = joined.with_columns(
        **{f"{column}_differs": in_both & expr.fill_null(False) for column, expr in differs.items()}
    )
    largest = flagged.filter(in_both).select(pl.max_horizontal(*relative.values()).max()).item()

    only_base, only_other = flagged.filter(~in_other), flagged.filter(~in_base)
    if only_base.height:
        problems.append(f"{only_base.height} rows only in {base_name}")
    if only_other.height:
        problems.append(f"{only_other.height} rows only in {name}")
    by_column = [
        f"{column} in {count}"
        for column in differs
        if (count := flagged.get_column(f"{column}_differs").sum())
    ]
    if by_column:
        problems.append(f"values differ in rows of the same key: {', '.join(by_column)}")
    # Row order: the rows both tables hold, in the first table's order, must come in
    # the same order in the second.
    key_text = pl.concat_str(*KEYS, separator=" ")
    out_of_order = (
        flagged.filter(in_both)
        .sort("position")
        .with_columns(
            key=key_text,
            previous_key=key_text.shift(1),
            previous_position_other=pl.col("position_other").shift(1),
        )
        .filter(pl.col("position_other") < pl.col("previous_position_other"))
    )
    if out_of_order.height:
        row = out_of_order.row(0, named=True)
        problems.append(
            f"rows in another order ({out_of_order.height} places): {row['key']} comes "
            f"after {row['previous_key']} in {base_name} (rows {row['position']:,} and "
            f"{row['position'] - 1:,}), before it in {name} (rows "
            f"{row['position_other']:,} and {row['previous_position_other']:,})"
        )

    any_value_differs = pl.any_horizontal(pl.col(f"{column}_differs") for column in differs)
    differing = pl.concat(
        [flagged.filter(any_value_differs).sort("position"), only_base, only_other]
    ).unique(subset=KEYS, keep="first", maintain_order=True)
    if differing.height:
        problems.append(
            f"the first of the {differing.height} differing rows ({base_name} vs {name}):"
        )
    for row in differing.head(shown).iter_rows(named=True):
        key = " ".join(str(row[column]) for column in KEYS)
        if row["position_other"] is None:
            problems.append(f"  {key}: only in {base_name}")
        elif row["position"] is None:
            problems.append(f"  {key}: only in {name}")
        else:
            values = [
                f"{column} {row[column]!r} vs {row[f'{column}_other']!r}"
                for column in differs
                if row[f"{column}_differs"]
            ]
            problems.append(f"  {key}: {', '.join(values)}")
    return PairComparison(base.height, problems, largest or 0.0)


def warm_page_cache(path: Path) -> None:
    """Reads a file once, so that no engine pays for the disk and the first one run is
    timed like the others."""
    with path.open("rb") as file:
        while file.read(1 << 24):
            pass


def h3o_floor(pings: Path) -> float:
    """The floor of the lat/lon path: seconds for h3o alone to convert every position of
    the file to a cell on all cores (the ``scale`` example's ``floor``, a release build)."""
    command = ["cargo", "run", "--release", "--quiet", "--example", "scale", "--"]
    done = subprocess.run(
        [*command, "floor", str(pings)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit("the h3o floor could not be measured")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def print_table(measurements: Sequence[Measurement]) -> None:
    base = {m.form: m for m in measurements if m.engine == "crowdtally"}
    print(
        f"{'engine':<11} {'form':<7} {'pings':>11} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} "
        f"{'M pings/s':>10} {'wall x':>7} {'CPU x':>7} {'RSS x':>7}"
    )
    for m in measurements:
        if m.unfinished:
            # The child's process and time end with it: only a bound on the wall time.
            line = f"{m.engine:<11} {m.form:<7} {m.pings:>11,} {'>' + format(m.wall_s, '.2f'):>8}"
            ref = base.get(m.form)
            if ref is not None:
                line += f"  wall x > {m.wall_s / ref.wall_s:.2f}"
            print(f"{line}  did not finish: {m.unfinished}")
            continue
        line = (
            f"{m.engine:<11} {m.form:<7} {m.pings:>11,} {m.wall_s:>8.2f} {m.cpu_s:>8.2f} "
            f"{m.peak_rss_mib:>9,.0f} {m.pings / m.wall_s / 1e6:>10.2f}"
        )
        ref = base.get(m.form)
        if ref is not None:
            line += (
                f" {m.wall_s / ref.wall_s:>7.2f} {m.cpu_s / ref.cpu_s:>7.2f}"
                f" {m.peak_rss_mib / ref.peak_rss_mib:>7.2f}"
            )
        print(line)
    print(
        "ratios: engine / crowdtally (above 1 is slower or larger). Times are the engine's "
        "work, from reading Parquet to writing the release (imports done before); CPU counts "
        "every thread; peak RSS is the engine's whole process (interpreter and imports too)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pings", type=float, default=1e7, help="about this many pings")
    parser.add_argument("--form", choices=(*FORMS, "both"), default="both")
    parser.add_argument(
        "--order",
        choices=ORDERS,
        default="device",
        help="row order of the pings: device by device as generated, or by time (an "
        "operator's export)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/crowdtally-compare"), help="data and results"
    )
    parser.add_argument("--only", default=",".join(ENGINE_NAMES), help="engines to run")
    parser.add_argument("--k", type=int, default=30, help="the disclosure threshold")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds after which an engine is stopped and reported as unfinished",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip timing h3o alone on the lat/lon positions (needs cargo)",
    )
    parser.add_argument("--engine", choices=ENGINE_NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine is not None:
        return child(args.engine, args.job)

    engines = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(engines) - set(ENGINE_NAMES))
    if unknown or not engines:
        parser.error(f"--only takes engines among {', '.join(ENGINE_NAMES)}")
    import pyarrow.parquet as pq

    from crowdtally import synth

    target = int(args.pings)
    # Generating a scenario's people is quick; its pings are generated only when written.
    city = synth.scenario(scale=target / PINGS_PER_SCALE, days=DAYS, start=START, seed=SEED)
    tables = scenario_geography(city)
    geography = tables.write(args.workdir / f"geography-{target}")
    forms = FORMS if args.form == "both" else (args.form,)
    measurements: list[Measurement] = []
    floors: dict[str, float] = {}
    failed = False
    differing: list[str] = []  # forms whose release tables differ between engines
    for form in forms:
        suffix = "" if args.order == "device" else f"-{args.order}"
        directory = args.workdir / f"{form}-{target}{suffix}"
        directory.mkdir(parents=True, exist_ok=True)
        pings = write_pings(directory, target, form, args.order)
        jobs = write_jobs(directory, pings, geography, tables, city.config(), args.k)
        rows = pq.read_metadata(pings).num_rows
        warm_page_cache(pings)
        outputs = {}
        for engine in engines:
            print(f"running {engine} on {rows:,} pings ({form})", flush=True)
            measurement = run_engine(engine, form, jobs[engine], rows, args.timeout)
            measurements.append(measurement)
            if not measurement.unfinished:
                outputs[engine] = Path(Job.load(jobs[engine]).out)
        if form == "latlon" and args.floor:
            floors[form] = h3o_floor(pings)
        if len(outputs) > 1:
            identical, lines = compare_releases(outputs)
            failed = failed or not identical
            verdict = "identical" if identical else "DIFFER"
            print(f"{form}: release tables {verdict}")
            print("\n".join(f"  {line}" for line in lines), flush=True)
            if not identical:
                differing.append(form)
    print()
    print(f"rows in {args.order} order")
    print_table(measurements)
    ours = {m.form: m for m in measurements if m.engine == "crowdtally" and not m.unfinished}
    if len(ours) == 2:
        print(
            f"crowdtally with lat/lon: {ours['latlon'].wall_s / ours['cell'].wall_s:.2f}x the "
            f"wall time and {ours['latlon'].cpu_s / ours['cell'].cpu_s:.2f}x the CPU time of "
            "the same pings with a cell column"
        )
    for form, seconds in floors.items():
        run = next(m for m in measurements if m.engine == "crowdtally" and m.form == form)
        print(
            f"h3o floor ({form}): {seconds:.2f} s to convert every position with h3o on all "
            f"cores; crowdtally end to end is {run.wall_s / seconds:.2f}x the floor"
        )
    if differing:
        print(f"the release tables DIFFER between engines ({', '.join(differing)}): see above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
