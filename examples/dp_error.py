"""How much error the differential-privacy mode adds, per release, on the synthetic city.

Prepares a summer quarter of the synthetic ``kortrijk`` scenario once, then makes three
releases a city typically buys (the quarter by zone and municipality of origin, weeks by
zone and arrondissement, days by zone and province) in the differential-privacy mode
at several values of rho (each value is what one release spends). Every noisy release
is compared with the same release at an enormous rho, which equals the exact counts
under the same contribution bounds; what the bounds themselves cut is shown apart. The
k-anonymity release (k = 30, no roll-up) of the same table is shown for comparison:
what share of its cells it withholds.

    python examples/dp_error.py [--scale 0.01] [--days 92] [--repeats 3] [--out out]

The noise is drawn from the operating system's cryptographic generator, so two runs
differ a little; ``--repeats`` averages over several draws.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

import crowdtally as ct
from crowdtally import synth

COUNTRIES = ["FR", "NL", "DE"]
ROAMING_FACTORS = {"*": 1 / 0.3}
K = 30  # the method's default k, the synthetic city's too
EXACT_RHO = 1e18


@dataclass(frozen=True)
class Cut:
    """One release a city buys."""

    name: str
    bucket: str
    level: str


CUTS = (
    Cut("quarter x municipality", "period", "municipality"),
    Cut("weeks x arrondissement", "week", "arrondissement"),
    Cut("days x province", "day", "province"),
)

Key = tuple[str, str, str]


def devices(release: ct.Release) -> dict[Key, int]:
    """Devices of each published (zone, bucket, origin) row."""
    return {
        (row["zone"], row["bucket_start"], row["origin"]): row["devices"]
        for row in pa.table(release)
        .select(["zone", "bucket_start", "origin", "devices"])
        .to_pylist()
        if row["devices"] is not None
    }


@dataclass(frozen=True)
class Error:
    """The error of one noisy release against the exact one."""

    cell_abs: float  # mean |noisy - exact| over origin cells
    cell_within_10pct: float  # share of cells with exact >= K within 10 %
    total_rel: float  # median |noisy - exact| / exact over zone totals with exact > 0


def error(noisy: dict[Key, int], exact: dict[Key, int]) -> Error:
    cells = [(noisy[key], exact[key]) for key in exact if key[2] != "*"]
    large = [(n, e) for n, e in cells if e >= K]
    totals = [(noisy[key], exact[key]) for key in exact if key[2] == "*" and exact[key] > 0]
    return Error(
        cell_abs=statistics.fmean(abs(n - e) for n, e in cells),
        cell_within_10pct=(
            sum(abs(n - e) <= 0.1 * e for n, e in large) / len(large) if large else float("nan")
        ),
        total_rel=statistics.median(abs(n - e) / e for n, e in totals),
    )


def withheld(release: ct.Release, exact: dict[Key, int]) -> tuple[float, float]:
    """Share of the non-empty origin cells and zone totals a k-anonymity release does
    not publish as themselves (suppressed, or pooled into a coarser or residual row)."""
    published = devices(release)
    cells = [key for key in exact if key[2] != "*" and exact[key] > 0]
    totals = [key for key in exact if key[2] == "*" and exact[key] > 0]
    return (
        sum(key not in published for key in cells) / max(len(cells), 1),
        sum(key not in published for key in totals) / max(len(totals), 1),
    )


def percent(share: float) -> str:
    return "-" if math.isnan(share) else f"{100 * share:.0f} %"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01, help="share of the population")
    parser.add_argument("--days", type=int, default=92, help="days from 2026-07-01")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.1, 0.5, 2.0])
    parser.add_argument("--repeats", type=int, default=3, help="noise draws averaged")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    city = synth.scenario(scale=args.scale, days=args.days, seed=2026)
    config = city.config()
    assert config.k == K
    study = ct.Study(city.geography, config)
    prepared = study.prepare(city.pings)
    subscribers = city.subscribers()  # from billing, as the DP mode needs
    leaf_zones = set(city.geography.zones)
    print(f"{city!r}: {prepared.report['devices']:,} devices")

    lines = [
        (
            "| release | rho | sigma (devices) | mean abs. error of a cell "
            f"| cells >= {K} within 10 % | median error of a zone total "
            "| visits cut by the bounds |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for cut in CUTS:

        def dp(rho: float, cut: Cut = cut) -> ct.Release:
            return prepared.release(
                bucket=cut.bucket,
                level=cut.level,
                subscribers=subscribers,
                roaming_factors=ROAMING_FACTORS,
                privacy=ct.DP(rho=rho, countries=COUNTRIES),
            )

        reference = dp(EXACT_RHO)
        exact = devices(reference)
        bounding = reference.report["privacy"]["dropped_by_bounding"]
        kept = sum(
            row["visits"]
            for row in pa.table(reference).select(["zone", "origin", "visits"]).to_pylist()
            if row["origin"] == "*" and row["zone"] in leaf_zones
        )
        cut_share = percent(bounding["visits"] / max(kept + bounding["visits"], 1))
        for rho in args.rho:
            draws = [dp(rho) for _ in range(args.repeats)]
            errors = [error(devices(draw), exact) for draw in draws]
            sigma = draws[0].report["privacy"]["sigma"]["devices"]
            lines.append(
                f"| {cut.name} | {rho:g} | {sigma:.1f} "
                f"| {statistics.fmean(e.cell_abs for e in errors):.1f} "
                f"| {percent(statistics.fmean(e.cell_within_10pct for e in errors))} "
                f"| {percent(statistics.fmean(e.total_rel for e in errors))} | {cut_share} |"
            )
        cells, totals = withheld(
            prepared.release(bucket=cut.bucket, level=cut.level, roll_up=False), exact
        )
        lines.append(
            f"| {cut.name} | k = {K} | - | {percent(cells)} of cells withheld "
            f"| - | {percent(totals)} of totals withheld | - |"
        )
        print(
            f"{cut.name}: {len(exact):,} rows; bounding dropped {bounding['pairs']:,} "
            f"(zone, bucket) pairs and {bounding['visits']:,} visits"
        )
    table = "\n".join(lines)
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dp_error.md").write_text(table + "\n")
    print(f"\nwrote {args.out / 'dp_error.md'} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
