"""A release on a cluster: the plan, the per-partition steps and the key sources.

Every measure of the method is a sum over devices, so a release splits at the device::

    driver:   plan = Plan(study, specs)              (checked, ledger included)
              [scan_part on every partition, then plan.with_span(first, last)]
    workers:  map_part     raw pings -> pseudonymous pings (no raw id) + counters
              partition by "device"                   (all of a device's pings together)
              reduce_part  whole devices -> additive partials
              sum by PARTIAL_KEYS                      (GROUP BY keys, SUM values)
    driver:   finish_partials(study, plan, specs, partials)

``crowdtally.spark`` runs these steps on Spark; any engine that can run a Python
function over the Arrow batches of a partition and repartition by a column can run them
too. The result is exactly the release of a single run over the same pings.

The key never travels in the plan. Workers get it by the cluster's own means:
``KeyFromEnv("NAME")`` (an environment variable set on every worker, the default,
``CROWDTALLY_KEY``), ``KeyFromFile(path)`` (a file readable on every worker), or
``ShipKey()``, which sends the key inside the job: only where the engine authenticates
and encrypts its traffic. Every worker checks that its key is the driver's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from crowdtally._crowdtally import (
    Config,
    ConfigError,
    Engine,
    Geography,
    Mapper,
    Plan,
    Reducer,
    Scanner,
    ShippedKey,
    distributed_schemas,
    finish_partials,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PARTIAL_KEYS",
    "PARTIAL_VALUES",
    "KeyFromEnv",
    "KeyFromFile",
    "KeySource",
    "Mapper",
    "Plan",
    "Reducer",
    "Scanner",
    "ShipKey",
    "finish_partials",
    "map_part",
    "profile_part",
    "reduce_part",
    "scan_part",
    "schemas",
]

# The key and value columns of partials (what reducers give): sum the values by the keys.
PARTIAL_KEYS = ("part", "table", "zone", "bucket", "class", "origin", "name")
PARTIAL_VALUES = (
    "devices",
    "visits",
    "dwell_s",
    *(f"band_{band}" for band in range(5)),
    *(f"band_devices_{band}" for band in range(5)),
    "value",
)


def schemas() -> dict[str, pa.Schema]:
    """The Arrow schemas of the steps, by name: ``pseudonymous`` (what ``map_part``
    gives), ``partials`` (what ``reduce_part`` gives), ``span`` (``scan_part``'s), and
    ``devices`` and ``visits`` (``profile_part``'s)."""
    return dict(distributed_schemas())


def _key_error(message: str) -> ConfigError:
    error = ConfigError(f"invalid configuration: `key` {message}")
    error.field = "key"
    return error


class KeySource(Protocol):
    """Where the workers find the key."""

    def for_workers(self, config: Config) -> Any:
        """What is sent to the workers (made on the driver)."""

    def resolve(self) -> bytes | ShippedKey:
        """The key, on a worker."""


@dataclass(frozen=True)
class KeyFromEnv:
    """The key is the value of an environment variable on every worker (its UTF-8
    bytes, as ``Config(key=str)`` reads a text key)."""

    name: str = "CROWDTALLY_KEY"

    def for_workers(self, config: Config) -> KeyFromEnv:
        return self

    def resolve(self) -> bytes:
        value = os.environ.get(self.name)
        if not value:
            raise _key_error(
                f"is read from the environment variable {self.name}, which is not set on "
                "this worker"
            )
        return value.encode()


@dataclass(frozen=True)
class KeyFromFile:
    """The key is the content of a file readable on every worker (its bytes; one
    trailing newline is not part of the key)."""

    path: str

    def for_workers(self, config: Config) -> KeyFromFile:
        return self

    def resolve(self) -> bytes:
        try:
            data = Path(self.path).read_bytes()
        except OSError as error:
            raise _key_error(
                f"is read from {self.path!r}, which this worker cannot read ({error.strerror})"
            ) from None
        return data.removesuffix(b"\n").removesuffix(b"\r")


@dataclass(frozen=True)
class ShipKey:
    """The key travels with the job, to every worker. Its bytes are then in the tasks
    the engine sends: use this only where the engine authenticates its nodes and
    encrypts its traffic and spill (on Spark: ``spark.authenticate``,
    ``spark.network.crypto.enabled``, ``spark.io.encryption.enabled``)."""

    def for_workers(self, config: Config) -> ShippedKey:
        return ShippedKey.of(config)

    def resolve(self) -> bytes:  # pragma: no cover - the shipped key resolves itself
        raise _key_error("is shipped: resolve the ShippedKey made on the driver")


def resolve_key(shipped: Any) -> bytes | ShippedKey:
    """The key on a worker, from what ``KeySource.for_workers`` sent."""
    if isinstance(shipped, ShippedKey):
        return shipped
    resolved: bytes | ShippedKey = shipped.resolve()
    return resolved


def scan_part(
    plan: Plan, geography: Geography, key: bytes | ShippedKey, batches: Iterable[Any]
) -> Iterator[pa.RecordBatch]:
    """The span of a partition's valid pings, as one batch of ``schemas()["span"]``."""
    scanner = Scanner(plan, geography, key)
    for batch in batches:
        scanner.push(batch)
    yield scanner.span_batch()


def map_part(
    plan: Plan, geography: Geography, key: bytes | ShippedKey, batches: Iterable[Any]
) -> Iterator[pa.RecordBatch]:
    """A partition's raw pings, pseudonymized (``schemas()["pseudonymous"]``), then its
    counter rows."""
    mapper = Mapper(plan, geography, key)
    for batch in batches:
        yield from mapper.map(batch)
    yield mapper.finish()


def reduce_part(
    plan: Plan,
    geography: Geography,
    key: bytes | ShippedKey,
    batches: Iterable[Any],
    engine: Engine | None = None,
) -> Iterator[pa.RecordBatch]:
    """A partition's partials (``schemas()["partials"]``): every pseudonymous ping of
    each of its devices must be in it."""
    reducer = Reducer(plan, geography, key, engine=engine)
    for batch in batches:
        reducer.push(batch)
    yield reducer.finish()


def profile_part(
    plan: Plan,
    geography: Geography,
    key: bytes | ShippedKey,
    batches: Iterable[Any],
    engine: Engine | None = None,
    table: Literal["devices", "visits"] = "devices",
) -> pa.RecordBatch:
    """The rows of the devices or visits table (``schemas()[table]``) of a partition's
    devices: every pseudonymous ping of each of them must be in it."""
    reducer = Reducer(plan, geography, key, engine=engine)
    for batch in batches:
        reducer.push(batch)
    return reducer.devices() if table == "devices" else reducer.visits()
