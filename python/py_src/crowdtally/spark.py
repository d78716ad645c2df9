"""The same release on a Spark cluster (``pip install 'crowdtally[spark]'``; Spark 4 needs
Java 17 or later).

``crowdtally.spark.analyze(df, geography, config, ...)`` takes the same release arguments
as ``crowdtally.analyze`` and gives the same ``Release``, table and report, computed by
the executors::

    df.mapInArrow(map)                    raw pings -> pseudonymous pings (no raw id)
      .repartition(partitions, "device")  every ping of a device in one partition
      .mapInArrow(reduce)                 whole devices -> additive partials
      .groupBy(keys).sum(values)          partials of all reducers
    finish on the driver                  disclosure control or noise, extrapolation,
                                          report, ledger

When the configuration gives no period, a first pass over ``df`` finds it (the data's
span, §1.4): give the period to save that pass. Raw subscriber ids never leave the first
step; the key never travels with the job unless ``key=ShipKey()`` says so. By default the
executors read it from the environment variable ``CROWDTALLY_KEY`` (``KeyFromEnv``);
``KeyFromFile(path)`` reads it from a file on every executor. Each executor checks that
its key is the driver's.

Executors need crowdtally installed (a venv-pack archive or an image; see the
project's docs/SPARK.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import crowdtally._crowdtally as native
from crowdtally._crowdtally import (
    DP,
    Config,
    Engine,
    Geography,
    Plan,
    ReleaseSpec,
    Study,
    finish_partials,
)
from crowdtally.distributed import (
    PARTIAL_KEYS,
    PARTIAL_VALUES,
    KeyFromEnv,
    KeySource,
    map_part,
    reduce_part,
    resolve_key,
    scan_part,
    schemas,
)
from crowdtally.release import Release

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["analyze", "releases"]


def _spark_schema(arrow: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow)


def _output_schema(df: DataFrame, arrow: pa.Schema) -> pa.Schema:
    """The Arrow schema Spark expects back from a ``mapInArrow`` whose schema is
    ``arrow``: with the session's choice of large string types."""
    from pyspark.sql.pandas.types import to_arrow_schema

    large = df.sparkSession.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
    return to_arrow_schema(_spark_schema(arrow), prefers_large_types=large == "true")


def _reducer_engine(memory_limit: int | str | None) -> Engine:
    """The settings of a reducer on an executor: the task's cores, a spill directory of
    Spark's, and the given memory budget."""
    from pyspark import TaskContext

    context = TaskContext.get()
    threads = context.cpus() if context is not None else 1
    local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")
    spill_dir = next((d for d in local_dirs if d), tempfile.gettempdir())
    return Engine(threads=threads, memory_limit=memory_limit, spill_dir=spill_dir)


_WORKER_ERROR = re.compile(r"^crowdtally\.(\w+Error): (.*)$", re.MULTILINE)
_FIELD = re.compile(r"`([^`]+)`")


@contextlib.contextmanager
def _worker_errors() -> Iterator[None]:
    """Raises a crowdtally error that an executor raised as itself (with its `.field`),
    rather than as Spark's wrapper of it."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as error:
        found = _WORKER_ERROR.findall(str(error))
        kind = getattr(native, found[-1][0], None) if found else None
        if kind is None or not issubclass(kind, native.CrowdtallyError):
            raise
        message = found[-1][1]
        raised = kind(message)
        field = _FIELD.search(message)
        raised.field = field.group(1) if field else None
        raise raised from error


def releases(
    df: DataFrame,
    geography: Geography,
    config: Config,
    specs: Sequence[ReleaseSpec | Mapping[str, Any]],
    *,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> list[Release]:
    """Several releases of the pings of a Spark DataFrame, read once: the releases
    ``crowdtally.Study(geography, config).releases(pings, specs)`` gives.

    ``key`` says where the executors find the key (default ``KeyFromEnv()``, the
    environment variable ``CROWDTALLY_KEY``). ``partitions`` is the number of reducer
    partitions (default ``spark.sql.shuffle.partitions``); ``columns`` maps roles to
    column names as in ``Study``; ``reducer_memory`` is each reducer's memory budget
    (default: crowdtally's default budget, which spills beyond it)."""
    study = Study(geography, config, columns=dict(columns) if columns is not None else None)
    spec_list = list(specs)
    # The releases are checked, the ledger included, before any data are read.
    plan = Plan(study, spec_list)
    input_kind = plan.input_kind(study, _arrow_schema(df))
    shipped = (key if key is not None else KeyFromEnv()).for_workers(config)
    sc = df.sparkSession.sparkContext
    shared = sc.broadcast(geography)
    all_schemas = schemas()

    if plan.needs_scan():
        scan_plan = plan

        def scan(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            yield from scan_part(scan_plan, shared.value, resolve_key(shipped), batches)

        with _worker_errors():
            spans = df.mapInArrow(scan, _spark_schema(all_schemas["span"])).collect()
        firsts = [row["first"] for row in spans if row["first"] is not None]
        lasts = [row["last"] for row in spans if row["last"] is not None]
        plan = plan.with_span(min(firsts, default=None), max(lasts, default=None))

    final_plan = plan
    pseudonymous = _output_schema(df, all_schemas["pseudonymous"])
    partials = _output_schema(df, all_schemas["partials"])

    def map_pings(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        key_bytes = resolve_key(shipped)
        for batch in map_part(final_plan, shared.value, key_bytes, batches):
            yield batch.cast(pseudonymous)

    def reduce_pings(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        engine = _reducer_engine(reducer_memory)
        key_bytes = resolve_key(shipped)
        for batch in reduce_part(final_plan, shared.value, key_bytes, batches, engine):
            yield batch.cast(partials)

    from pyspark.sql import functions

    count = partitions or int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
    mapped = df.mapInArrow(map_pings, _spark_schema(all_schemas["pseudonymous"]))
    reduced = mapped.repartition(count, "device").mapInArrow(
        reduce_pings, _spark_schema(all_schemas["partials"])
    )
    summed = reduced.groupBy(*PARTIAL_KEYS).agg(
        *(functions.sum(name).alias(name) for name in PARTIAL_VALUES)
    )
    with _worker_errors():
        table = summed.toArrow()
    shared.unpersist()
    return finish_partials(study, final_plan, spec_list, [table], input_kind)


def analyze(
    df: DataFrame,
    geography: Geography,
    config: Config,
    bucket: str = "period",
    level: str | None = None,
    classes: str | Sequence[str] | None = None,
    subscribers: Mapping[str, int] | None = None,
    roaming_factors: Mapping[str, float] | None = None,
    *,
    roll_up: bool = True,
    privacy: str | DP | None = None,
    allow_differencing: bool = False,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> Release:
    """The release of the pings of a Spark DataFrame: what ``crowdtally.analyze`` gives
    for the same pings and arguments, computed by the executors. See ``releases`` for
    ``key``, ``partitions``, ``columns`` and ``reducer_memory``."""
    spec = ReleaseSpec(
        bucket,
        level,
        classes,
        subscribers,
        roaming_factors,
        roll_up=roll_up,
        privacy=privacy,
        allow_differencing=allow_differencing,
    )
    (release,) = releases(
        df,
        geography,
        config,
        [spec],
        key=key,
        partitions=partitions,
        columns=columns,
        reducer_memory=reducer_memory,
    )
    return release


def _arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)
