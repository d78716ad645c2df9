"""The release on Spark against the single-machine run, on the same Parquet input.

Generates the synthetic ``kortrijk`` scenario at about the requested number of pings over a
summer quarter, writes it as Parquet, then times the day release at the municipality
level on this machine: ``crowdtally.Study.release`` reading the file (every core), then
on a ``local[2]`` session the floor of any Python step (Spark handing every row to a
Python worker as Arrow), the first step alone (read and map to pseudonymous pings) and
the whole ``crowdtally.spark.analyze``, so that the overhead can be placed. The releases
are compared: they must be identical.

    python benches/spark.py [pings] [--partitions N]     (default 1e7 pings, 8 partitions)

Needs pyspark and Java 17 or later (``pip install 'crowdtally[spark]'``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import crowdtally as ct
import crowdtally.spark as cts
from crowdtally import distributed, synth

# About 1.0e9 pings per unit of scale over 92 days (measured on the scenario).
PINGS_PER_SCALE = 1.0e9
KEY = "benchmark key, at least 16 bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pings", nargs="?", type=float, default=1e7)
    parser.add_argument("--partitions", type=int, default=8, help="reducer partitions")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crowdtally-spark-bench-"))
    try:
        same = run(args.pings, args.partitions, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not same:
        sys.exit(1)


def run(pings: float, partitions: int, work: Path) -> bool:
    """Times the runs in `work`; whether the releases are identical."""
    city = synth.scenario(scale=pings / PINGS_PER_SCALE, days=92, seed=2026)
    path = work / "pings.parquet"
    table = pa.table(city.pings)
    pq.write_table(table, path, row_group_size=1 << 20)
    print(f"{city!r}: {table.num_rows:,} pings, {path.stat().st_size / 2**20:,.0f} MiB Parquet")
    del table
    config = ct.Config(key=KEY, period=city.config().period)
    spec = {"bucket": "day", "level": "municipality", "roaming_factors": {"*": 1 / 0.3}}

    start = time.perf_counter()
    (single,) = ct.Study(city.geography, config).releases(str(path), [spec])
    single_s = time.perf_counter() - start
    print(f"single machine (every core): {single_s:.2f} s")

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["CROWDTALLY_KEY"] = KEY
    from pyspark.sql import SparkSession
    from pyspark.sql.pandas.types import from_arrow_schema

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("crowdtally-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "6g")
        .config("spark.local.dir", str(work / "local"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    print(f"Spark session start: {time.perf_counter() - start:.2f} s (not counted below)")
    df = spark.read.parquet(str(path))

    start = time.perf_counter()
    rows = df.count()
    print(f"Spark: read and count {rows:,} rows: {time.perf_counter() - start:.2f} s")

    # The floor of any Python step: Spark hands every row to a Python worker as Arrow.
    def nothing(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield batch.slice(0, 0)

    start = time.perf_counter()
    df.mapInArrow(nothing, df.schema).count()
    handover_s = time.perf_counter() - start
    print(f"Spark: hand every row to Python and back nothing: {handover_s:.2f} s")

    study = ct.Study(city.geography, config)
    plan = distributed.Plan(study, [spec])
    geography = spark.sparkContext.broadcast(city.geography)

    def map_only(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return distributed.map_part(plan, geography.value, KEY.encode(), batches)

    pseudonymous = from_arrow_schema(distributed.schemas()["pseudonymous"])
    mapped = df.mapInArrow(map_only, pseudonymous)
    start = time.perf_counter()
    mapped_rows = mapped.count()
    map_s = time.perf_counter() - start
    print(f"Spark: read and map to {mapped_rows:,} pseudonymous rows: {map_s:.2f} s")

    start = time.perf_counter()
    on_spark = cts.analyze(df, city.geography, config, partitions=partitions, **spec)
    spark_s = time.perf_counter() - start
    print(
        f"Spark local[2], {partitions} partitions, whole release: {spark_s:.2f} s "
        f"({spark_s / single_s:.1f}x the single run)"
    )
    same = pa.table(single).equals(pa.table(on_spark)) and single.report == on_spark.report
    print(f"releases identical: {same}")
    spark.stop()
    return same


if __name__ == "__main__":
    main()
