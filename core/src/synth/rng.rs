//! A small, fast, seedable random generator (SplitMix64). Streams are derived from the
//! scenario seed and a person and hour, so any part of a scenario can be generated alone
//! and in any order with the same result.

/// SplitMix64: statistically sound for simulation, one multiply-xorshift per draw.
#[derive(Clone, Debug)]
pub struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(mix(seed))
    }

    /// An independent stream for (seed, a, b), e.g. a person and an hour.
    #[must_use]
    pub fn stream(seed: u64, a: u64, b: u64) -> Self {
        Self(mix(
            mix(seed ^ mix(a.wrapping_add(GOLDEN))) ^ b.wrapping_mul(GOLDEN)
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform integer in `[0, n)` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// An approximately standard normal draw from one 64-bit word: the sum of four
    /// 16-bit uniforms (Irwin–Hall), centred and scaled. Cheap enough for every ping.
    pub fn quick_normal(&mut self) -> f64 {
        let bits = self.next_u64();
        let sum: f64 = (0..4)
            .map(|lane| f64::from((bits >> (16 * lane)) as u16) / 65_536.0)
            .sum();
        (sum - 2.0) * 3.0_f64.sqrt()
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..5).map(|_| Rng::stream(1, 2, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::stream(1, 2, 3).next_u64(),
            Rng::stream(1, 2, 4).next_u64()
        );
        assert_ne!(
            Rng::stream(1, 2, 3).next_u64(),
            Rng::stream(2, 2, 3).next_u64()
        );
    }

    #[test]
    fn uniform_and_below_stay_in_range_and_are_balanced() {
        let mut rng = Rng::new(7);
        let mut counts = [0_u32; 10];
        for _ in 0..100_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let mean: f64 = (0..100_000).map(|_| rng.normal()).sum::<f64>() / 100_000.0;
        assert!(mean.abs() < 0.02, "{mean}");
    }
}
