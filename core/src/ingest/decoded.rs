//! Decoded pings: the rows of the input that passed every per-row rule of §2, as compact
//! columns (18 bytes a ping), before pseudonyms, grouping by device and de-duplication.

/// Instants in epoch seconds, 4 bytes each while they fall in 1970–2106 (the low 32
/// bits; every phone's clock), 6 bytes each once one does not: the high bits are kept
/// only from then on, for every row.
#[derive(Default)]
pub(crate) struct Seconds {
    low: Vec<u32>,
    /// The high bits (as a signed number) of each row, or empty while they are all 0.
    high: Vec<i16>,
}

impl Seconds {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            low: Vec::with_capacity(rows),
            high: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.low.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.low.capacity()
    }

    pub(crate) fn clear(&mut self) {
        self.low.clear();
        self.high.clear();
    }

    pub(crate) fn reserve(&mut self, rows: usize) {
        self.low.reserve(rows);
        if !self.high.is_empty() {
            self.high.reserve(rows);
        }
    }

    /// The instant of row `row`.
    #[inline]
    pub(crate) fn get(&self, row: usize) -> i64 {
        let high = self.high.get(row).copied().unwrap_or(0);
        (i64::from(high) << 32) | i64::from(self.low[row])
    }

    /// Every row's instant, in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// Appends an instant within the calendar's range (|instant| < 2^47).
    #[inline]
    pub(crate) fn push(&mut self, instant: i64) {
        let high = (instant >> 32) as i16;
        if high != 0 || !self.high.is_empty() {
            // From the first row that needs them, every row has its high bits.
            self.high.resize(self.low.len(), 0);
            self.high.push(high);
        }
        self.low.push(instant as u32);
    }

    pub(crate) fn extend_from_slice(&mut self, instants: &[i64]) {
        if self.high.is_empty() && instants.iter().all(|&t| t >> 32 == 0) {
            self.low.extend(instants.iter().map(|&t| t as u32));
        } else {
            for &instant in instants {
                self.push(instant);
            }
        }
    }
}

/// Pings that survived the per-row rules, before de-duplication.
#[derive(Default)]
pub(crate) struct Decoded {
    pub(crate) subscriber: Vec<u32>,
    pub(crate) ts: Seconds,
    pub(crate) cell: Vec<u64>,
    pub(crate) country: Vec<u16>,
}

impl Decoded {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            subscriber: Vec::with_capacity(rows),
            ts: Seconds::with_capacity(rows),
            cell: Vec::with_capacity(rows),
            country: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Room for `rows` more rows; within a budget (`capacity`: the rows the buffer may
    /// hold before the run moves them on), the buffer is sized once for all of them, so
    /// that it never doubles past its share (pages are only resident once written).
    pub(crate) fn reserve_for(&mut self, rows: usize, capacity: Option<usize>) {
        let wanted = match capacity {
            Some(limit) if self.ts.capacity() == 0 => limit + rows,
            _ => rows,
        };
        self.subscriber.reserve(wanted);
        self.ts.reserve(wanted);
        self.cell.reserve(wanted);
        self.country.reserve(wanted);
    }

    pub(crate) fn clear(&mut self) {
        self.subscriber.clear();
        self.ts.clear();
        self.cell.clear();
        self.country.clear();
    }

    /// The rows of `from` listed in `parts`, in that order.
    pub(crate) fn gather(from: &Self, parts: &[&[u32]]) -> Self {
        let mut gathered = Self::with_capacity(parts.iter().map(|rows| rows.len()).sum());
        for &row in parts.iter().copied().flatten() {
            gathered.push_row(from, row as usize);
        }
        gathered
    }

    pub(crate) fn push_row(&mut self, from: &Self, row: usize) {
        self.subscriber.push(from.subscriber[row]);
        self.ts.push(from.ts.get(row));
        self.cell.push(from.cell[row]);
        self.country.push(from.country[row]);
    }
}

#[cfg(test)]
mod tests {
    use super::Seconds;

    proptest::proptest! {
        /// Any instants of the calendar's range come back as pushed, one by one or by
        /// slices, whether or not one before needed the high bits.
        #[test]
        fn seconds_keep_every_instant(
            instants in proptest::collection::vec(
                proptest::prop_oneof![
                    crate::calendar::instant_range(),
                    0_i64..1 << 32,
                    1_780_000_000_i64..1_790_000_000,
                    proptest::strategy::Just((1_i64 << 32) - 1),
                    proptest::strategy::Just(1_i64 << 32),
                    proptest::strategy::Just(-1_i64),
                ],
                0..60,
            ),
            cut in 0_usize..60,
        ) {
            let cut = cut.min(instants.len());
            let mut one_by_one = Seconds::default();
            let mut by_slices = Seconds::default();
            for &instant in &instants {
                one_by_one.push(instant);
            }
            by_slices.extend_from_slice(&instants[..cut]);
            by_slices.extend_from_slice(&instants[cut..]);
            for seconds in [&one_by_one, &by_slices] {
                proptest::prop_assert_eq!(seconds.iter().collect::<Vec<_>>(), instants.clone());
                // Four bytes a row as long as every instant is in 1970–2106.
                let narrow = instants.iter().all(|&t| (0..1_i64 << 32).contains(&t));
                proptest::prop_assert_eq!(seconds.high.is_empty(), narrow);
            }
        }
    }
}
