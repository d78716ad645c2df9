//! Visits and dwell (method §5).
//!
//! For one device and one zone, a visit is a maximal run of consecutive pings in the zone
//! with every gap at most `max_gap`. Its start and end split the time to the neighbouring
//! pings at the midpoint (floored), except across a gap longer than `max_gap`, where
//! nothing is attributed.

/// Visits as columns, grouped by device and, within a device, by start, then zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visits {
    /// The device's index in [`Devices`](super::Devices).
    pub device: Vec<u32>,
    /// The zone's index in [`Geography::zones`](crate::Geography::zones).
    pub zone: Vec<u32>,
    /// Start instant, epoch seconds.
    pub start: Vec<i64>,
    /// End instant, epoch seconds.
    pub end: Vec<i64>,
    min_dwell: i64,
}

impl Visits {
    /// The number of visits.
    #[must_use]
    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// Whether there are no visits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// The dwell of visit `i` in seconds: end − start.
    #[must_use]
    pub fn dwell(&self, i: usize) -> i64 {
        self.end[i] - self.start[i]
    }

    /// Whether visit `i` qualifies: dwell ≥ `min_dwell`.
    #[must_use]
    pub fn qualifies(&self, i: usize) -> bool {
        self.dwell(i) >= self.min_dwell
    }

    /// The `min_dwell` the visits were judged by.
    #[must_use]
    pub fn min_dwell(&self) -> i64 {
        self.min_dwell
    }

    pub(crate) fn set_min_dwell(&mut self, min_dwell: i64) {
        self.min_dwell = min_dwell;
    }

    /// Sorts the visits from `first` on (one device's) by start, then zone.
    pub(crate) fn sort_from(&mut self, first: usize) {
        let mut rows: Vec<(i64, u32, i64)> = (first..self.len())
            .map(|i| (self.start[i], self.zone[i], self.end[i]))
            .collect();
        rows.sort_unstable();
        for (offset, (start, zone, end)) in rows.into_iter().enumerate() {
            self.start[first + offset] = start;
            self.zone[first + offset] = zone;
            self.end[first + offset] = end;
        }
    }

    fn push(&mut self, device: u32, zone: u32, start: i64, end: i64) {
        self.device.push(device);
        self.zone.push(zone);
        self.start.push(start);
        self.end.push(end);
    }
}

/// The visits in progress for one device: one per zone of the current ping.
#[derive(Default)]
pub(super) struct OpenRuns {
    /// (zone, start) of each open run, in increasing zone.
    open: Vec<(u32, i64)>,
    next: Vec<(u32, i64)>,
}

impl OpenRuns {
    pub(super) fn clear(&mut self) {
        self.open.clear();
    }

    /// Advances to a ping at `t` in `zones` (sorted), `previous` being the device's
    /// previous ping time.
    pub(super) fn step(
        &mut self,
        device: u32,
        previous: Option<i64>,
        t: i64,
        zones: &[u32],
        max_gap: i64,
        visits: &mut Visits,
    ) {
        // The gap to the previous ping, when it can carry attribution.
        let bridged = previous.filter(|&p| t - p <= max_gap);
        // Most pings change nothing: outside every zone with no run open, or bridged
        // to the last one in the very zones of the open runs.
        let same_zones = || {
            self.open.len() == zones.len() && self.open.iter().zip(zones).all(|(o, &z)| o.0 == z)
        };
        if (self.open.is_empty() && zones.is_empty()) || (bridged.is_some() && same_zones()) {
            return;
        }
        let midpoint = bridged.map(|p| p + (t - p) / 2);
        self.next.clear();
        let mut zone_iter = zones.iter().copied().peekable();
        for &(zone, start) in &self.open {
            // Zones that start here, before this open zone.
            while let Some(&z) = zone_iter.peek().filter(|&&z| z < zone) {
                self.next.push((z, midpoint.unwrap_or(t)));
                zone_iter.next();
            }
            if bridged.is_some() && zone_iter.peek() == Some(&zone) {
                // The run goes on.
                self.next.push((zone, start));
                zone_iter.next();
                continue;
            }
            // The run ends at the previous ping (plus half the gap if it is bridged).
            let last = previous.unwrap_or(t);
            visits.push(device, zone, start, midpoint.unwrap_or(last));
        }
        for z in zone_iter {
            self.next.push((z, midpoint.unwrap_or(t)));
        }
        std::mem::swap(&mut self.open, &mut self.next);
    }

    /// Ends every open run at the device's last ping.
    pub(super) fn finish(&mut self, device: u32, last: i64, visits: &mut Visits) {
        for &(zone, start) in &self.open {
            visits.push(device, zone, start, last);
        }
        self.open.clear();
    }
}
