"""Ingestion throughput from Python: crowdtally against the standard library and h3-py.

Measures, on one synthetic set of hourly pings (one device per 1,000 pings):
- pseudonymization: ``crowdtally.pseudonymize`` against a loop over Python's ``hmac``;
- location: ``crowdtally.prepare`` from lat/lon against h3-py's ``latlng_to_cell`` loop;
and prints wall time, ns per ping and the ratios, plus the process's peak memory.

Run with ``make bench`` (release build) or ``python benches/ingest.py [pings]``.
"""

from __future__ import annotations

import hashlib
import hmac
import resource
import sys
import time

import numpy as np

import crowdtally as ct

KEY = b"benchmark key of 16+ bytes"


def timed(label: str, n: int, work: object) -> float:
    start = time.perf_counter()
    assert callable(work)
    work()
    seconds = time.perf_counter() - start
    print(f"{label:<42} {seconds:8.3f} s  {seconds / n * 1e9:8.1f} ns/ping")
    return seconds


def main(n: int) -> None:
    import h3

    rng = np.random.default_rng(42)
    ids = [f"20601{i // 1000:010d}" for i in range(n)]
    lat = 50.828 + (rng.random(n) - 0.5) * 0.3
    lon = 3.265 + (rng.random(n) - 0.5) * 0.4
    ts = 1_782_864_000 + (np.arange(n) % 1000) * 3600
    geography = ct.Geography.from_tables(
        regions={"region_id": ["BE"], "level": ["country"], "parent_id": [None]},
        region_cells={"cell": [], "region_id": []},
        zones={"zone_id": [], "name": [], "category": []},
        zone_cells={"zone_id": [], "cell": []},
        study_area=["BE"],
    )
    config = ct.Config(key=KEY)
    distinct = sorted(set(ids))
    print(f"{n:,} pings, {len(distinct):,} devices")

    def stdlib_hmac() -> None:
        prefix = b"crowdtally/v1\x002026Q3\x00"
        for subscriber in distinct:
            hmac.new(KEY, prefix + subscriber.encode(), hashlib.sha256).digest()

    ours = timed(
        "pseudonymize distinct ids (crowdtally)",
        len(distinct),
        lambda: ct.pseudonymize(distinct, key=KEY, period_label="2026Q3"),
    )
    theirs = timed("pseudonymize distinct ids (hmac loop)", len(distinct), stdlib_hmac)
    print(f"  ratio {theirs / ours:.1f}x")
    pings = {"subscriber": ids, "ts": ts, "lat": lat, "lon": lon}
    ours = timed(
        "prepare from lat/lon (crowdtally)", n, lambda: ct.prepare(pings, geography, config)
    )
    theirs = timed(
        "latlng_to_cell alone (h3-py loop)",
        n,
        lambda: [h3.latlng_to_cell(a, o, 9) for a, o in zip(lat, lon, strict=True)],
    )
    print(f"  ratio {theirs / ours:.1f}x")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
