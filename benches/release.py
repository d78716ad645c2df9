"""The release end to end from Python: raw pings (lat/lon, IMSI-like text ids, dirty rows
included) of the synthetic ``kortrijk`` scenario to the protected, extrapolated table.

Generates the scenario at a scale giving about the requested number of pings over a
summer quarter, holds its pings as one Arrow table, then times ``crowdtally.analyze``
(bucket ``day``, origin level ``municipality``) and prints pings per second and the
process's peak resident memory before and after the run. Then times three tables
(period, day, hour) released three ways: three ``analyze`` calls, one ``Study.releases``
reading the pings once, and one ``Study.prepare`` followed by ``Prepared.releases``.

Run with ``make bench`` (release build) or ``python benches/release.py [pings]``.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable

import pyarrow as pa

import crowdtally as ct
from crowdtally import synth

# About 1.0e9 pings per unit of scale over 92 days (measured on the scenario).
PINGS_PER_SCALE = 1.0e9


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(target: int) -> None:
    city = synth.scenario(scale=target / PINGS_PER_SCALE, days=92, seed=2026)
    pings = pa.table(city.pings)
    n = pings.num_rows
    print(f"{city!r}: {n:,} pings, {pings.nbytes / 2**20:,.0f} MiB as Arrow")
    before = peak_rss_mib()
    start = time.perf_counter()
    cpu_start = time.process_time()
    release = ct.analyze(
        pings,
        city.geography,
        city.config(),
        bucket="day",
        level="municipality",
        roaming_factors={code: 1 / 0.3 for code in ("FR", "NL", "DE")},
    )
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    after = peak_rss_mib()
    print(f"{release!r}")
    print(
        f"analyze: {seconds:.2f} s wall, {cpu:.2f} s CPU, {n / seconds / 1e6:.2f} M pings/s, "
        f"{seconds / n * 1e9:.0f} ns/ping"
    )
    print(
        f"peak resident memory: {before:,.0f} MiB with the input held, "
        f"{after:,.0f} MiB after analyze (+{after - before:,.0f} MiB)"
    )
    three_tables(city, pings)


def three_tables(city: synth.SyntheticCity, pings: pa.Table) -> None:
    """Three tables of one quarter: each method's wall time, and the tables equal."""
    factors = {"*": 1 / 0.3}
    buckets = ("period", "day", "hour")
    study = ct.Study(city.geography, city.config())
    timed: dict[str, tuple[float, list[ct.Release]]] = {}

    def run(name: str, make: Callable[[], list[ct.Release]]) -> None:
        start = time.perf_counter()
        releases = make()
        timed[name] = (time.perf_counter() - start, releases)

    run(
        "three analyze calls",
        lambda: [
            ct.analyze(pings, city.geography, city.config(), b, roaming_factors=factors)
            for b in buckets
        ],
    )
    specs = [ct.ReleaseSpec(bucket=b, roaming_factors=factors) for b in buckets]
    run("Study.releases (one reading)", lambda: study.releases(pings, specs))
    run("Study.prepare + Prepared.releases", lambda: study.prepare(pings).releases(specs))
    baseline_seconds, baseline = timed["three analyze calls"]
    for name, (seconds, releases) in timed.items():
        same = all(
            pa.table(a).equals(pa.table(b)) and a.report == b.report
            for a, b in zip(releases, baseline, strict=True)
        )
        print(
            f"{name}: {seconds:.2f} s ({baseline_seconds / seconds:.2f}x the three calls), "
            f"tables {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000)
