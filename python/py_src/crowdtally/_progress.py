"""Progress bars for ``progress=True``: one bar for the rows read, then one for the
shards analysed, through tqdm (``tqdm.auto``: a widget in Jupyter, text in a terminal)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crowdtally._crowdtally import Progress


class ProgressBar:
    """Turns :class:`crowdtally.Progress` events into tqdm bars."""

    def __init__(self, tqdm: Any) -> None:
        self._tqdm = tqdm
        self._read: Any = None
        self._analyze: Any = None

    def __call__(self, event: Progress) -> None:
        if event.stage == "read":
            if self._read is None:
                self._read = self._tqdm(
                    total=event.rows_total, unit=" rows", unit_scale=True, desc="read"
                )
            self._read.update(event.rows_read - self._read.n)
            return
        if self._read is not None:
            self._read.close()
            self._read = None
        if self._analyze is None:
            self._analyze = self._tqdm(total=event.shards_total, unit=" shards", desc="analyze")
        self._analyze.update(event.shards_done - self._analyze.n)
        if event.shards_done == event.shards_total:
            self._analyze.close()

    def __del__(self) -> None:
        for bar in (self._read, self._analyze):
            if bar is not None:
                bar.close()


def progress_bar(stacklevel: int = 2) -> ProgressBar | None:
    """A progress bar, or None (with a warning) when tqdm is not installed.

    The compiled functions call it directly (the warning then points at their caller);
    Python wrappers pass one more level per frame of their own (a `warnings.warn`
    stacklevel).
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn(
            "progress=True needs tqdm (pip install 'crowdtally[progress]'); no bar is shown",
            stacklevel=stacklevel,
        )
        return None
    return ProgressBar(tqdm)
