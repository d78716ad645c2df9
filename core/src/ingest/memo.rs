//! A small direct-mapped memo for look-ups that repeat: a phone reports from the same
//! few cells again and again, so remembering the last answer per slot turns most hash
//! probes (or geometry) into one compare. It stores exact keys, so it never changes an
//! answer, only how fast it comes.

/// A direct-mapped cache of `V` by key `K`, with `2^bits` slots. Keep it small enough
/// for the CPU caches: a miss in a large table costs more than the work it saves.
pub(crate) struct Memo<K, V> {
    slots: Vec<Option<(K, V)>>,
    mask: u64,
}

impl<K: Copy + PartialEq, V: Copy> Memo<K, V> {
    pub(crate) fn new(bits: u32) -> Self {
        let size = 1_usize << bits;
        Self {
            slots: vec![None; size],
            mask: (size - 1) as u64,
        }
    }

    /// The value for `key`, whose hash is `hash`, computed by `compute` on a miss.
    #[inline]
    pub(crate) fn get_or(&mut self, key: K, hash: u64, compute: impl FnOnce() -> V) -> V {
        // Fibonacci hashing spreads H3 indexes, whose low bits are often all ones.
        let slot = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40 & self.mask) as usize;
        if let Some((stored, value)) = self.slots[slot]
            && stored == key
        {
            return value;
        }
        let value = compute();
        self.slots[slot] = Some((key, value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn memo_returns_what_compute_returns_for_every_key() {
        let mut memo = Memo::<u64, u64>::new(4);
        let mut computed = 0;
        for round in 0..3 {
            for key in 0..100_u64 {
                let value = memo.get_or(key, key, || {
                    computed += 1;
                    key * 7 + 1
                });
                assert_eq!(value, key * 7 + 1, "round {round}");
            }
        }
        assert!(computed <= 300);
        // Key 0 in an unfilled slot must not be mistaken for a hit.
        let mut fresh = Memo::<u64, u64>::new(2);
        assert_eq!(fresh.get_or(0, 0, || 5), 5);
        // Keys with one hash are told apart.
        let mut colliding = Memo::<(u64, u64), u64>::new(2);
        assert_eq!(colliding.get_or((1, 2), 9, || 12), 12);
        assert_eq!(colliding.get_or((2, 1), 9, || 21), 21);
        // (2, 1) took the slot, so (1, 2) is computed again, not answered with 21.
        assert_eq!(colliding.get_or((1, 2), 9, || 12), 12);
    }
}
