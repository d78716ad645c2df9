//! Cleaning and locating (method §2): each row of a batch is kept, located in its cell at
//! the analysis resolution, or dropped under the first reason that applies, chunk by
//! chunk on the run's threads.

use std::sync::Arc;

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use super::columns::{PositionColumns, RawPosition, TsColumn};
use super::memo::Memo;
use crate::calendar::Calendar;
use crate::error::Result;
use crate::geo::{CellLocator, CellRaster};
use crate::report::{DropReason, Dropped};
use crate::workers::{Kept, Threads};

/// What one worker locates positions with: for lat/lon, the cell locator (its raster
/// shared by the run's workers), a chunk's points at once; for given cells, a memo of
/// each cell's validation and parent (a city's pings come from a few thousand cells).
/// Both only ever give h3o's cell.
pub(crate) struct PositionCache {
    locator: CellLocator,
    cells: Memo<u64, Option<u64>>,
    /// A chunk's lat/lon positions and their cells.
    lat: Vec<f64>,
    lon: Vec<f64>,
    located: Vec<u64>,
}

/// The rows of a chunk of a batch that survive the per-row rules, located, in row
/// order; and what the others were dropped for.
#[derive(Default)]
pub(crate) struct KeptRows {
    /// Each kept row's place in the batch.
    pub(crate) rows: Vec<u32>,
    /// Each kept row's subscriber number.
    pub(crate) subscriber: Vec<u32>,
    pub(crate) ts: Vec<i64>,
    pub(crate) cell: Vec<u64>,
    /// Rows dropped, by reason (every reason but `duplicate`, which needs all rows).
    pub(crate) dropped: Dropped,
    /// The first and last instant kept.
    pub(crate) span: Option<(i64, i64)>,
}

/// What cleaning and locating a batch's rows needs: where, with what, and which rows to
/// skip.
pub(crate) struct Cleaning<'b> {
    pub(crate) threads: &'b Threads,
    pub(crate) caches: &'b Kept<PositionCache>,
    /// The lat/lon raster the workers' locators share.
    pub(crate) raster: &'b Arc<CellRaster>,
    pub(crate) resolution: Resolution,
    pub(crate) positions: &'b PositionColumns,
    pub(crate) ts: &'b TsColumn,
    pub(crate) calendar: &'b Calendar,
    /// The given period's bounds in epoch seconds, `[from, until)`.
    pub(crate) window: Option<(i64, i64)>,
    /// Each row's subscriber number, `None` for a bad subscriber.
    pub(crate) numbers: &'b [Option<u32>],
    pub(crate) opted_out: &'b [bool],
}

impl Cleaning<'_> {
    /// The rows of one chunk of a batch.
    const CHUNK_ROWS: usize = 1 << 12;

    /// Each chunk's kept rows, handed to `consume` in row order on the calling thread.
    /// With threads, chunks are cleaned and located on the pool while `consume` appends
    /// the earlier ones: only what needs the run's state (country numbers) is serial.
    pub(crate) fn in_chunks(&self, mut consume: impl FnMut(KeptRows) -> Result<()>) -> Result<()> {
        let rows = self.numbers.len();
        match self.threads {
            Threads::Own(pool) if rows > Self::CHUNK_ROWS => {
                pool.in_place_scope(|scope| self.pipelined(scope, &mut consume))
            }
            Threads::Global if rows > Self::CHUNK_ROWS => {
                rayon::in_place_scope(|scope| self.pipelined(scope, &mut consume))
            }
            _ => consume(self.chunk(0..rows)),
        }
    }

    fn chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let rows = self.numbers.len();
        (0..rows)
            .step_by(Self::CHUNK_ROWS)
            .map(move |start| start..(start + Self::CHUNK_ROWS).min(rows))
    }

    /// Spawns every chunk on `scope`, then consumes them in order as they arrive.
    fn pipelined<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        consume: &mut impl FnMut(KeptRows) -> Result<()>,
    ) -> Result<()> {
        let (sender, receiver) = std::sync::mpsc::channel();
        for range in self.chunks() {
            let sender = sender.clone();
            scope.spawn(move |_| {
                // The receiver is gone only when `consume` failed.
                let _ = sender.send((range.start, self.chunk(range)));
            });
        }
        drop(sender);
        let mut arrived = FxHashMap::default();
        for range in self.chunks() {
            let kept = loop {
                if let Some(kept) = arrived.remove(&range.start) {
                    break kept;
                }
                // Every sender is gone when a worker panicked: the scope re-raises it.
                let Ok((start, kept)) = receiver.recv() else {
                    return Ok(());
                };
                arrived.insert(start, kept);
            };
            consume(kept)?;
        }
        Ok(())
    }

    /// The rows of `range` that survive the per-row rules, each dropped under the first
    /// rule it breaks (§2's order).
    fn chunk(&self, range: std::ops::Range<usize>) -> KeptRows {
        let mut cache = self.caches.lend(|| PositionCache {
            locator: CellLocator::with_raster(Arc::clone(self.raster)),
            cells: Memo::new(12),
            lat: Vec::new(),
            lon: Vec::new(),
            located: Vec::new(),
        });
        // The chunk's lat/lon positions are located together, so that the memory reads
        // of far-apart points overlap (rows in time order are far apart).
        cache.lat.clear();
        cache.lon.clear();
        for row in range.clone() {
            if let RawPosition::LatLon(lat, lon) = self.positions.raw(row) {
                cache.lat.push(lat);
                cache.lon.push(lon);
            }
        }
        let PositionCache {
            locator,
            lat,
            lon,
            located,
            ..
        } = &mut *cache;
        locator.cell_bits(lat, lon, located);
        let mut next_located = 0;
        let mut resolver = self.calendar.resolver();
        let on_calendar = crate::calendar::instant_range();
        let mut kept = KeptRows {
            rows: Vec::with_capacity(range.len()),
            subscriber: Vec::with_capacity(range.len()),
            ts: Vec::with_capacity(range.len()),
            cell: Vec::with_capacity(range.len()),
            ..KeptRows::default()
        };
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for row in range {
            let position = self.positions.raw(row);
            let located = if let RawPosition::LatLon(..) = position {
                next_located += 1;
                Some(cache.located[next_located - 1])
            } else {
                None
            };
            let Some(number) = self.numbers[row] else {
                kept.dropped.add(DropReason::BadSubscriber, 1);
                continue;
            };
            if self.opted_out[number as usize] {
                kept.dropped.add(DropReason::OptOut, 1);
                continue;
            }
            let cell = match located {
                Some(bits) => (bits != 0).then_some(bits),
                None => locate(position, self.resolution, &mut cache.cells),
            };
            let Some(cell) = cell else {
                kept.dropped.add(DropReason::BadPosition, 1);
                continue;
            };
            // An instant the calendar cannot date (typically milliseconds read as
            // seconds) is no usable time: kept, it would wreck the derived period.
            let Some(instant) = self
                .ts
                .instant(row, &mut resolver)
                .filter(|t| on_calendar.contains(t))
            else {
                kept.dropped.add(DropReason::BadTs, 1);
                continue;
            };
            if let Some((from, until)) = self.window
                && !(from..until).contains(&instant)
            {
                kept.dropped.add(DropReason::OutsidePeriod, 1);
                continue;
            }
            first = first.min(instant);
            last = last.max(instant);
            kept.rows.push(row as u32);
            kept.subscriber.push(number);
            kept.ts.push(instant);
            kept.cell.push(cell);
        }
        kept.span = (first <= last).then_some((first, last));
        kept
    }
}

/// The cell at the analysis resolution of a given cell, or `None` for `bad_position`
/// (lat/lon positions are located a chunk at a time).
fn locate(
    position: RawPosition,
    resolution: Resolution,
    cells: &mut Memo<u64, Option<u64>>,
) -> Option<u64> {
    match position {
        RawPosition::Cell(raw) => cells.get_or(raw, raw, || {
            let cell = CellIndex::try_from(raw).ok()?;
            if cell.resolution() < resolution {
                return None;
            }
            cell.parent(resolution).map(u64::from)
        }),
        RawPosition::LatLon(..) | RawPosition::Bad => None,
    }
}
