"""A table with its report: what the spend table and the risk audit share."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from crowdtally.release import ArrowStreamTable


class TableWithReport:
    """A table (``.table``, anything exporting ``__arrow_c_stream__``) and its report
    (``.report``, a plain dict)."""

    __slots__ = ("_report", "_table")

    def __init__(self, table: ArrowStreamTable, report: dict[str, Any]) -> None:
        if not hasattr(table, "__arrow_c_stream__"):
            raise TypeError(
                f"table must export __arrow_c_stream__ (Arrow PyCapsule interface), "
                f"got {type(table).__name__}"
            )
        if not isinstance(report, dict):
            raise TypeError(f"report must be a dict, got {type(report).__name__}")
        self._table = table
        self._report = report

    @property
    def table(self) -> ArrowStreamTable:
        """The table (exports ``__arrow_c_stream__``)."""
        return self._table

    @property
    def report(self) -> dict[str, Any]:
        """The report, a plain dict."""
        return self._report

    def __len__(self) -> int:
        return len(self._table)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The table through the Arrow PyCapsule interface."""
        return self._table.__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> Any:
        """The table as a ``pyarrow.Table`` (needs pyarrow)."""
        return importlib.import_module("pyarrow").table(self._table)

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (needs pyarrow and pandas)."""
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_polars(self) -> pl.DataFrame:
        """The table as a polars DataFrame (needs polars)."""
        frame: pl.DataFrame = importlib.import_module("polars").DataFrame(self._table)
        return frame
