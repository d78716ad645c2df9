//! Exact discrete Gaussian noise for the differential-privacy mode.
//!
//! This module owns the noise a private release adds to its counts: integers from the discrete
//! Gaussian N_Z(0, σ²), P(x) ∝ exp(−x²/2σ²), with σ² = Δ² / (2ρ_measure), drawn by Algorithms
//! 1–3 of Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential Privacy" (2020)
//! from the operating system's cryptographic generator. There is no seed; only the crate's
//! tests pass another [`RandomSource`].
//!
//! Sampling is exact. An f64 is a dyadic rational, so σ² is kept as a reduced fraction of
//! integers, and every random decision compares uniform random integers (drawn by rejection, so
//! without modulo bias) with exact rationals; no float takes part. The acceptance fraction of
//! Algorithm 3 has a few hundred bits for a typical decimal ρ, so the fast path brackets it
//! between 64-bit fixed-point bounds in `u128`, rounded outwards at every step: a random prefix
//! outside the bracket decides exactly, and one inside it (with probability below 2^−50 for
//! exponents below 2^10) is finished with `num-bigint` on the exact fraction.

use std::fmt;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{ToPrimitive, Zero};

/// How many bytes [`OsRandom`] asks the operating system for at a time.
const BUFFER_BYTES: usize = 4096;

/// The largest Laplace scale `t` of the fixed-width path: with `t ≤ 2^62`, every candidate
/// `u + t·v` (with `u < t` and a `u64` count `v`) fits an `i128`.
const FAST_SCALE_LIMIT: u64 = 1 << 62;

/// The outcome of a random draw: the value, or the failure of the random source.
type Drawn<T> = Result<T, RandomnessError>;

/// A source of uniformly random bytes.
pub(crate) trait RandomSource {
    /// Fills `bytes` with independent, uniformly random bytes.
    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), RandomnessError>;
}

/// The operating system's random number generator failed, so no noise could be drawn.
#[derive(Debug)]
pub(crate) struct RandomnessError {
    /// What `getrandom` reported.
    source: getrandom::Error,
}

impl fmt::Display for RandomnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the operating system's random number generator failed")
    }
}

impl std::error::Error for RandomnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<getrandom::Error> for RandomnessError {
    fn from(source: getrandom::Error) -> Self {
        Self { source }
    }
}

/// Random bytes from the operating system (`getrandom`), read 4 KiB at a time so that a
/// sample, which needs a few dozen bytes, does not cost a system call.
///
/// Bytes are zeroed in the buffer as they are handed out, so none is ever handed out twice.
/// `Debug` shows no bytes.
pub(crate) struct OsRandom {
    /// Bytes read from the operating system; those before `next` are already handed out.
    buffer: Box<[u8; BUFFER_BYTES]>,
    /// Index of the first byte not yet handed out (`BUFFER_BYTES` when empty).
    next: usize,
}

impl OsRandom {
    /// An empty generator; the first [`RandomSource::fill`] reads from the operating system.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self {
            buffer: Box::new([0; BUFFER_BYTES]),
            next: BUFFER_BYTES,
        }
    }
}

impl fmt::Debug for OsRandom {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("OsRandom").finish_non_exhaustive()
    }
}

impl RandomSource for OsRandom {
    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), RandomnessError> {
        let mut filled = 0;
        while filled < bytes.len() {
            if self.next == BUFFER_BYTES {
                getrandom::fill(&mut self.buffer[..])?;
                self.next = 0;
            }
            let count = (bytes.len() - filled).min(BUFFER_BYTES - self.next);
            let handed_out = &mut self.buffer[self.next..self.next + count];
            bytes[filled..filled + count].copy_from_slice(handed_out);
            handed_out.fill(0);
            self.next += count;
            filled += count;
        }
        Ok(())
    }
}

/// The noise scale σ² = Δ² / (2ρ) as an exact fraction, with everything the discrete Gaussian
/// sampler derives from it.
#[derive(Clone, Debug)]
pub(crate) struct NoiseScale {
    /// σ²'s numerator `n`, in lowest terms with `variance_denominator`.
    variance_numerator: BigUint,
    /// σ²'s denominator `d`, at least 1.
    variance_denominator: BigUint,
    /// The discrete Laplace scale `t = floor(σ) + 1` (1 when σ² = 0).
    laplace_scale: BigUint,
    /// `t·d`, which turns a candidate `y` into the exponent's numerator `(y·t·d − n)²`.
    laplace_scale_times_denominator: BigUint,
    /// `2·n·d·t²`, the denominator of the acceptance exponent
    /// `(y − σ²/t)² / (2σ²) = (y·t·d − n)² / (2·n·d·t²)`.
    exponent_denominator: BigUint,
    /// Fixed-width bounds for the common case; `None` when σ² = 0 or `t > 2^62`.
    fast: Option<FastPath>,
}

/// Precomputed fixed-point brackets that bound the acceptance exponent in `u128` arithmetic.
#[derive(Clone, Debug)]
struct FastPath {
    /// The Laplace scale `t` (at most 2^62).
    laplace_scale: u64,
    /// `floor(c·2^64)` for the centre `c = σ²/t` of the acceptance exponent.
    center_low: u128,
    /// `ceil(c·2^64)`.
    center_high: u128,
    /// `floor(h·2^inverse_shift)` for `h = 1/(2σ²)`, in `[2^63, 2^64)`.
    inverse_low: u128,
    /// `ceil(h·2^inverse_shift)`, at most 2^64.
    inverse_high: u128,
    /// The binary exponent that brings `h` into `[2^63, 2^64)`.
    inverse_shift: i64,
}

impl NoiseScale {
    /// The scale for squared sensitivity `delta_squared` (Δ²) and zero-concentrated privacy
    /// parameter `rho` (ρ): σ² = Δ² / (2ρ), exactly. `None` when ρ is not finite or not
    /// positive. Δ² = 0 gives a scale whose samples are all 0.
    #[must_use]
    pub(crate) fn new(delta_squared: u128, rho: f64) -> Option<Self> {
        if !rho.is_finite() || rho <= 0.0 {
            return None;
        }
        // ρ = mantissa·2^exponent exactly, so σ² = Δ²·2^(−exponent−1) / mantissa.
        let (mantissa, exponent) = dyadic_parts(rho);
        let mut numerator = BigUint::from(delta_squared);
        let mut denominator = BigUint::from(mantissa);
        let power_of_two = -(i64::from(exponent) + 1);
        numerator <<= power_of_two.max(0);
        denominator <<= (-power_of_two).max(0);
        let common = numerator.gcd(&denominator);
        numerator /= &common;
        denominator /= &common;

        // floor(sqrt(n/d)) = floor(sqrt(floor(n/d))), so t needs only integer square roots.
        let laplace_scale = (&numerator / &denominator).sqrt() + 1u32;
        let laplace_scale_times_denominator = &laplace_scale * &denominator;
        let exponent_denominator =
            (&numerator * &laplace_scale_times_denominator * &laplace_scale) << 1u32;
        let fast = (!numerator.is_zero())
            .then(|| FastPath::new(&numerator, &denominator, &laplace_scale))
            .flatten();
        Some(Self {
            variance_numerator: numerator,
            variance_denominator: denominator,
            laplace_scale,
            laplace_scale_times_denominator,
            exponent_denominator,
            fast,
        })
    }

    /// σ as a float, for reports only; sampling never uses it.
    #[must_use]
    pub(crate) fn sigma(&self) -> f64 {
        let (numerator, numerator_exponent) = leading_bits_f64(&self.variance_numerator);
        let (denominator, denominator_exponent) = leading_bits_f64(&self.variance_denominator);
        // σ² can exceed f64's range (up to about 2^1201) while σ cannot, so the (even) power
        // of two is halved before it is applied.
        let half_exponent = (numerator_exponent - denominator_exponent) / 2;
        (numerator / denominator).sqrt()
            * 2f64.powi(i32::try_from(half_exponent).unwrap_or(i32::MAX))
    }

    /// One draw from the discrete Gaussian N_Z(0, σ²) (CKS Algorithm 3). A draw beyond the
    /// range of `i64`, which takes σ of the order of 2^60 or more, saturates.
    pub(crate) fn sample(&self, rng: &mut impl RandomSource) -> Result<i64, RandomnessError> {
        if self.variance_numerator.is_zero() {
            return Ok(0);
        }
        let Some(fast) = &self.fast else {
            return self.sample_exact(rng);
        };
        loop {
            let candidate = sample_discrete_laplace(rng, fast.laplace_scale)?;
            if self.accept_fast(fast, rng, candidate.unsigned_abs())? {
                return Ok(saturating_i64(candidate));
            }
        }
    }

    /// `value` plus one draw of noise, saturating at the ends of `i64`.
    pub(crate) fn add_noise(
        &self,
        value: i64,
        rng: &mut impl RandomSource,
    ) -> Result<i64, RandomnessError> {
        Ok(value.saturating_add(self.sample(rng)?))
    }

    /// CKS Algorithm 3 entirely in `num-bigint`, for any scale.
    fn sample_exact<R: RandomSource>(&self, rng: &mut R) -> Drawn<i64> {
        loop {
            let (negative, magnitude) = sample_discrete_laplace_big(rng, &self.laplace_scale)?;
            if self.accept_exact(rng, &magnitude)? {
                // A magnitude beyond i128 saturates i64 all the same.
                let magnitude = magnitude.to_i128().unwrap_or(i128::MAX);
                let signed = if negative { -magnitude } else { magnitude };
                return Ok(saturating_i64(signed));
            }
        }
    }

    /// The numerator `(y·t·d − n)²` of the acceptance exponent for a candidate of magnitude `y`.
    fn exponent_numerator(&self, magnitude: &BigUint) -> BigUint {
        let scaled = magnitude * &self.laplace_scale_times_denominator;
        let distance = if scaled >= self.variance_numerator {
            scaled - &self.variance_numerator
        } else {
            &self.variance_numerator - scaled
        };
        &distance * &distance
    }

    /// Bernoulli(exp(−(y − σ²/t)² / 2σ²)) on the exact fraction.
    fn accept_exact<R: RandomSource>(&self, rng: &mut R, magnitude: &BigUint) -> Drawn<bool> {
        let numerator = self.exponent_numerator(magnitude);
        bernoulli_exp_minus_ratio(rng, &numerator, &self.exponent_denominator)
    }

    /// Bernoulli(exp(−γ)) for the acceptance exponent γ, deciding from the fixed-point bracket
    /// of γ whenever it suffices and from the exact fraction otherwise.
    fn accept_fast<R: RandomSource>(
        &self,
        fast: &FastPath,
        rng: &mut R,
        magnitude: u128,
    ) -> Drawn<bool> {
        let Some((low, high)) = fast.exponent_bounds(magnitude) else {
            return self.accept_exact(rng, &BigUint::from(magnitude));
        };
        let whole = low >> 64;
        if high >> 64 != whole {
            // The bracket straddles an integer, so floor(γ) is not known from it.
            return self.accept_exact(rng, &BigUint::from(magnitude));
        }
        for _ in 0..whole {
            if !bernoulli_exp_minus_one(rng)? {
                return Ok(false);
            }
        }
        // The fractional part f of γ lies in [fraction_low, fraction_high] / 2^64. A uniform
        // u in [0, 1) is drawn 64 bits at a time: its prefix p places it in [p, p + 1) / 2^64,
        // which decides u < f outright unless p lies in [fraction_low, fraction_high).
        let (fraction_low, fraction_high) = (low as u64, high as u64);
        let mut exact_remainder: Option<BigUint> = None;
        bernoulli_exp_minus_fraction(rng, |rng| {
            let mut prefix = [0; 8];
            rng.fill(&mut prefix)?;
            let prefix = u64::from_le_bytes(prefix);
            if prefix < fraction_low {
                return Ok(true);
            }
            if prefix >= fraction_high {
                return Ok(false);
            }
            let remainder = exact_remainder.get_or_insert_with(|| {
                self.exponent_numerator(&BigUint::from(magnitude)) % &self.exponent_denominator
            });
            below_fraction_after_prefix(rng, prefix, remainder, &self.exponent_denominator)
        })
    }
}

impl FastPath {
    /// The brackets for σ² = `numerator / denominator` > 0 with Laplace scale `laplace_scale`,
    /// or `None` when `t > 2^62`.
    fn new(numerator: &BigUint, denominator: &BigUint, laplace_scale: &BigUint) -> Option<Self> {
        let scale = laplace_scale
            .to_u64()
            .filter(|&scale| scale <= FAST_SCALE_LIMIT)?;
        // c = σ²/t = n/(t·d) < σ < t ≤ 2^62, so c·2^64 fits a u128.
        let (center, center_exact) =
            shifted_quotient(numerator, &(laplace_scale * denominator), 64);
        let center_low = center.to_u128()?;
        // h = 1/(2σ²) = d/(2n). With a = bits(d) and b = bits(2n), h·2^(63−a+b) lies in
        // (2^62, 2^64); one more doubling brings it into [2^63, 2^64) when needed.
        let twice_numerator = numerator << 1u32;
        let mut inverse_shift = 63 - i64::try_from(denominator.bits()).ok()?
            + i64::try_from(twice_numerator.bits()).ok()?;
        let (mut inverse, mut inverse_exact) =
            shifted_quotient(denominator, &twice_numerator, inverse_shift);
        if inverse.bits() < 64 {
            inverse_shift += 1;
            (inverse, inverse_exact) =
                shifted_quotient(denominator, &twice_numerator, inverse_shift);
        }
        let inverse_low = inverse.to_u128()?;
        Some(Self {
            laplace_scale: scale,
            center_low,
            center_high: center_low + u128::from(!center_exact),
            inverse_low,
            inverse_high: inverse_low + u128::from(!inverse_exact),
            inverse_shift,
        })
    }

    /// Integers `low ≤ γ·2^64 ≤ high` for the acceptance exponent γ = (y − c)²·h of a candidate
    /// of magnitude `y`, or `None` when `y ≥ 2^64` or γ ≥ 2^64. Every step rounds the lower
    /// bound down and the upper bound up, so the bracket always holds the exact value; each
    /// truncation to 63 significant bits widens it by a relative 2^−62 at most.
    fn exponent_bounds(&self, magnitude: u128) -> Option<(u128, u128)> {
        let point = u128::from(u64::try_from(magnitude).ok()?) << 64;
        // |y − c|·2^64. The centre's bracket is at most one unit wide and `point` is an
        // integer, so `point` never falls strictly inside it.
        let (distance_low, distance_high) = if point >= self.center_high {
            (point - self.center_high, point - self.center_low)
        } else {
            (self.center_low - point, self.center_high - point)
        };
        let (distance_low, distance_high, distance_shift) = narrow(distance_low, distance_high);
        // Both factors are now at most 2^63, so the squares fit.
        let (square_low, square_high, square_shift) =
            narrow(distance_low * distance_low, distance_high * distance_high);
        // At most 2^63 · 2^64.
        let (product_low, product_high) = (
            square_low * self.inverse_low,
            square_high * self.inverse_high,
        );
        // γ·2^64 = (|y − c|·2^64)² · h · 2^−64.
        let exponent =
            2 * i64::from(distance_shift) + i64::from(square_shift) - self.inverse_shift - 64;
        if exponent >= 0 {
            let shift = u32::try_from(exponent).ok()?;
            if shift > product_high.leading_zeros() {
                return None;
            }
            Some((product_low << shift, product_high << shift))
        } else {
            let shift = u32::try_from(-exponent).unwrap_or(u32::MAX);
            Some((
                product_low.checked_shr(shift).unwrap_or(0),
                shift_right_ceil(product_high, shift),
            ))
        }
    }
}

/// `value = mantissa · 2^exponent` exactly, for a finite `value` ≥ 0.
fn dyadic_parts(value: f64) -> (u64, i32) {
    const FRACTION_BITS: u32 = 52;
    let bits = value.to_bits();
    let biased_exponent = ((bits >> FRACTION_BITS) & 0x7ff) as i32;
    let fraction = bits & ((1 << FRACTION_BITS) - 1);
    if biased_exponent == 0 {
        // Subnormal: no implicit leading bit.
        (fraction, -1074)
    } else {
        (fraction | (1 << FRACTION_BITS), biased_exponent - 1075)
    }
}

/// `(floor(numerator · 2^shift / denominator), whether the division was exact)`.
fn shifted_quotient(numerator: &BigUint, denominator: &BigUint, shift: i64) -> (BigUint, bool) {
    let (dividend, divisor) = if shift >= 0 {
        (numerator << shift, denominator.clone())
    } else {
        (numerator.clone(), denominator << -shift)
    };
    let (quotient, remainder) = dividend.div_rem(&divisor);
    (quotient, remainder.is_zero())
}

/// `value` as `(its leading 63 or 64 bits as f64, the even power of two they stand for)`.
fn leading_bits_f64(value: &BigUint) -> (f64, i64) {
    let excess = value.bits().saturating_sub(64).next_multiple_of(2);
    let leading = (value >> excess).to_u64().unwrap_or(u64::MAX);
    (leading as f64, excess as i64)
}

/// `(floor(low / 2^shift), ceil(high / 2^shift), shift)` for the smallest `shift` that leaves
/// the upper bound at most 2^63: a bracket cut to 63 significant bits, rounded outwards.
fn narrow(low: u128, high: u128) -> (u128, u128, u32) {
    let shift = (u128::BITS - high.leading_zeros()).saturating_sub(63);
    (low >> shift, shift_right_ceil(high, shift), shift)
}

/// `ceil(value / 2^shift)`.
fn shift_right_ceil(value: u128, shift: u32) -> u128 {
    let truncated = value.checked_shr(shift).unwrap_or(0);
    let dropped_bits = truncated.checked_shl(shift).unwrap_or(0) != value;
    truncated + u128::from(dropped_bits)
}

/// `value` saturated to the range of `i64`.
fn saturating_i64(value: i128) -> i64 {
    value.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

/// A uniformly random integer in `[0, bound)`, for `bound ≥ 1`: draws just enough bytes to
/// cover `bound − 1`, masks them to its bit length and retries when the result is too large
/// (less than half the time), so there is no modulo bias.
fn uniform_below<R: RandomSource>(rng: &mut R, bound: u64) -> Drawn<u64> {
    debug_assert!(bound >= 1, "the range [0, 0) is empty");
    if bound <= 1 {
        return Ok(0);
    }
    let bits = u64::BITS - (bound - 1).leading_zeros();
    let byte_count = bits.div_ceil(8) as usize;
    let mask = u64::MAX >> (u64::BITS - bits);
    let mut bytes = [0; 8];
    loop {
        rng.fill(&mut bytes[..byte_count])?;
        let candidate = u64::from_le_bytes(bytes) & mask;
        if candidate < bound {
            return Ok(candidate);
        }
    }
}

/// [`uniform_below`] for a bound of any size.
fn uniform_below_big<R: RandomSource>(rng: &mut R, bound: &BigUint) -> Drawn<BigUint> {
    if let Some(bound) = bound.to_u64() {
        return uniform_below(rng, bound).map(BigUint::from);
    }
    let bits = (bound - 1u32).bits();
    let byte_count = bits.div_ceil(8) as usize;
    let top_mask = u8::MAX >> (byte_count as u64 * 8 - bits);
    let mut bytes = vec![0; byte_count];
    loop {
        rng.fill(&mut bytes)?;
        // Little-endian: the last byte is the most significant.
        bytes[byte_count - 1] &= top_mask;
        let candidate = BigUint::from_bytes_le(&bytes);
        if candidate < *bound {
            return Ok(candidate);
        }
    }
}

/// Bernoulli(`numerator / denominator`), for `denominator ≥ 1`.
fn bernoulli_ratio<R: RandomSource>(
    rng: &mut R,
    numerator: &BigUint,
    denominator: &BigUint,
) -> Drawn<bool> {
    Ok(uniform_below_big(rng, denominator)? < *numerator)
}

/// Whether a uniform `u` in `[0, 1)` whose first 64 bits are `prefix` lies below
/// `remainder / denominator`: with `u = (prefix + u′) / 2^64` for a fresh uniform `u′`, that is
/// `u′ < (remainder·2^64 − prefix·denominator) / denominator`.
fn below_fraction_after_prefix<R: RandomSource>(
    rng: &mut R,
    prefix: u64,
    remainder: &BigUint,
    denominator: &BigUint,
) -> Drawn<bool> {
    let scaled = remainder << 64u32;
    let offset = denominator * prefix;
    if scaled <= offset {
        return Ok(false);
    }
    let excess = scaled - offset;
    if excess >= *denominator {
        return Ok(true);
    }
    bernoulli_ratio(rng, &excess, denominator)
}

/// Bernoulli(exp(−γ)) for γ in `[0, 1]`, given a `coin` that lands true with probability γ
/// (CKS Algorithm 1 for γ ≤ 1). Round `k` needs Bernoulli(γ/k), drawn as Bernoulli(1/k) and
/// the coin together, so γ is never divided.
fn bernoulli_exp_minus_fraction<R: RandomSource>(
    rng: &mut R,
    mut coin: impl FnMut(&mut R) -> Drawn<bool>,
) -> Drawn<bool> {
    let mut k: u64 = 1;
    loop {
        let success = (k == 1 || uniform_below(rng, k)? == 0) && coin(rng)?;
        if !success {
            return Ok(k % 2 == 1);
        }
        k += 1;
    }
}

/// Bernoulli(exp(−1)).
fn bernoulli_exp_minus_one<R: RandomSource>(rng: &mut R) -> Drawn<bool> {
    bernoulli_exp_minus_fraction(rng, |_| Ok(true))
}

/// Bernoulli(exp(−γ)) for γ = `numerator / denominator` ≥ 0 (CKS Algorithm 1): floor(γ)
/// draws of Bernoulli(exp(−1)), all of which must succeed, then one of exp(−frac(γ)).
fn bernoulli_exp_minus_ratio<R: RandomSource>(
    rng: &mut R,
    numerator: &BigUint,
    denominator: &BigUint,
) -> Drawn<bool> {
    let (mut whole, remainder) = numerator.div_rem(denominator);
    // Each round fails with probability 1 − 1/e, so even a huge floor(γ) costs a few rounds.
    while !whole.is_zero() {
        if !bernoulli_exp_minus_one(rng)? {
            return Ok(false);
        }
        whole -= 1u32;
    }
    bernoulli_exp_minus_fraction(rng, |rng| bernoulli_ratio(rng, &remainder, denominator))
}

/// The number of successes of Bernoulli(exp(−1)) before its first failure: geometric with
/// ratio exp(−1). (A run of 2^64 successes does not happen.)
fn geometric_count<R: RandomSource>(rng: &mut R) -> Drawn<u64> {
    let mut count = 0;
    while bernoulli_exp_minus_one(rng)? {
        count += 1;
    }
    Ok(count)
}

/// A discrete Laplace draw, P(y) ∝ exp(−|y|/scale), for an integer `scale` in `[1, 2^62]`
/// (CKS Algorithm 2 with s = 1): `y = ±(u + scale·v)` with `u` uniform below `scale` kept with
/// probability exp(−u/scale), `v` geometric with ratio exp(−1), and −0 rejected.
fn sample_discrete_laplace<R: RandomSource>(rng: &mut R, scale: u64) -> Drawn<i128> {
    debug_assert!((1..=FAST_SCALE_LIMIT).contains(&scale), "scale {scale}");
    loop {
        let offset = uniform_below(rng, scale)?;
        // offset/scale < 1: Algorithm 1 needs only its branch for γ ≤ 1.
        if !bernoulli_exp_minus_fraction(rng, |rng| Ok(uniform_below(rng, scale)? < offset))? {
            continue;
        }
        let count = geometric_count(rng)?;
        let magnitude = i128::from(offset) + i128::from(scale) * i128::from(count);
        let negative = uniform_below(rng, 2)? == 1;
        if negative && magnitude == 0 {
            continue;
        }
        return Ok(if negative { -magnitude } else { magnitude });
    }
}

/// [`sample_discrete_laplace`] for a scale of any size, as `(negative, magnitude)`.
fn sample_discrete_laplace_big<R: RandomSource>(
    rng: &mut R,
    scale: &BigUint,
) -> Drawn<(bool, BigUint)> {
    loop {
        let offset = uniform_below_big(rng, scale)?;
        if !bernoulli_exp_minus_ratio(rng, &offset, scale)? {
            continue;
        }
        let magnitude = offset + scale * geometric_count(rng)?;
        let negative = uniform_below(rng, 2)? == 1;
        if negative && magnitude.is_zero() {
            continue;
        }
        return Ok((negative, magnitude));
    }
}

#[cfg(test)]
/// SplitMix64: the test-only hook that fixes the randomness, so the statistical tests give
/// the same verdict on every run. Production code only ever sees [`OsRandom`].
pub(crate) struct SeededRandom {
    state: u64,
}

#[cfg(test)]
impl SeededRandom {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }
}

#[cfg(test)]
impl RandomSource for SeededRandom {
    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), RandomnessError> {
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Draws per goodness-of-fit test.
    const SAMPLES: usize = 100_000;

    fn scale(delta_squared: u128, rho: f64) -> NoiseScale {
        NoiseScale::new(delta_squared, rho).expect("a finite, positive rho")
    }

    fn histogram(draws: impl Iterator<Item = i64>) -> BTreeMap<i64, u64> {
        let mut counts = BTreeMap::new();
        for draw in draws {
            *counts.entry(draw).or_insert(0) += 1;
        }
        counts
    }

    /// The pmf of N_Z(0, σ²), normalised by summing over ±support, and that support, beyond
    /// which the mass is far below f64 precision.
    fn gaussian_pmf(sigma: f64) -> (impl Fn(i64) -> f64, i64) {
        let support = (40.0 * sigma).ceil() as i64 + 10;
        let weight = move |x: i64| (-(x as f64).powi(2) / (2.0 * sigma * sigma)).exp();
        let normalizer: f64 = (-support..=support).map(weight).sum();
        (move |x| weight(x) / normalizer, support)
    }

    /// Pearson's χ² of `counts` against a symmetric pmf that is negligible beyond ±`support`,
    /// and the pass threshold df + 6·sqrt(2·df). Each central value is its own bin while its
    /// expected count is at least 5; the two tails are pooled into one bin each, also with an
    /// expected count of at least 5.
    fn chi_squared(
        counts: &BTreeMap<i64, u64>,
        pmf: impl Fn(i64) -> f64,
        support: i64,
    ) -> (f64, f64) {
        let total = counts.values().sum::<u64>() as f64;
        let expected_above = |edge: i64| total * (edge + 1..=support).map(&pmf).sum::<f64>();
        let mut edge = 0;
        while total * pmf(edge + 1) >= 5.0 {
            edge += 1;
        }
        while expected_above(edge) < 5.0 {
            edge -= 1;
        }
        let tail_expected = expected_above(edge);
        let mut statistic = 0.0;
        let mut bins = 0u32;
        let mut add = |observed: u64, expected: f64| {
            statistic += (observed as f64 - expected).powi(2) / expected;
            bins += 1;
        };
        for value in -edge..=edge {
            add(counts.get(&value).copied().unwrap_or(0), total * pmf(value));
        }
        add(
            counts.range(..-edge).map(|(_, count)| count).sum(),
            tail_expected,
        );
        add(
            counts.range(edge + 1..).map(|(_, count)| count).sum(),
            tail_expected,
        );
        let degrees_of_freedom = f64::from(bins - 1);
        (
            statistic,
            degrees_of_freedom + 6.0 * (2.0 * degrees_of_freedom).sqrt(),
        )
    }

    /// Draws `SAMPLES` values and checks that they fit N_Z(0, σ²) and do not fit the same
    /// shape with σ × 0.7 or σ × 1.3.
    fn assert_discrete_gaussian(
        sigma: f64,
        seed: u64,
        mut draw: impl FnMut(&mut SeededRandom) -> Result<i64, RandomnessError>,
    ) {
        let mut rng = SeededRandom::new(seed);
        let counts = histogram((0..SAMPLES).map(|_| draw(&mut rng).expect("seeded draws succeed")));
        let (pmf, support) = gaussian_pmf(sigma);
        let (statistic, threshold) = chi_squared(&counts, pmf, support);
        assert!(
            statistic < threshold,
            "σ = {sigma}: χ² = {statistic:.1} ≥ {threshold:.1}"
        );
        for factor in [0.7, 1.3] {
            let (pmf, support) = gaussian_pmf(sigma * factor);
            let (statistic, threshold) = chi_squared(&counts, pmf, support);
            assert!(
                statistic > threshold,
                "σ = {sigma} × {factor}: χ² = {statistic:.1} ≤ {threshold:.1} did not reject"
            );
        }
    }

    fn assert_fits(delta_squared: u128, rho: f64, seed: u64) {
        let scale = scale(delta_squared, rho);
        assert!(scale.fast.is_some());
        assert_discrete_gaussian(scale.sigma(), seed, |rng| scale.sample(rng));
    }

    #[test]
    fn fits_unit_variance() {
        assert_fits(1, 0.5, 1);
    }

    #[test]
    fn fits_non_integer_rational_variance() {
        assert_fits(3, 0.35, 2);
    }

    #[test]
    fn fits_sigma_near_25() {
        assert_fits(1, 0.0008, 3);
    }

    #[test]
    fn fits_sigma_near_1000() {
        assert_fits(1, 5e-7, 4);
    }

    #[test]
    fn exact_path_fits() {
        for (delta_squared, rho, seed) in [(1, 0.5, 5), (3, 0.35, 6)] {
            let scale = scale(delta_squared, rho);
            assert_discrete_gaussian(scale.sigma(), seed, |rng| scale.sample_exact(rng));
        }
    }

    #[test]
    fn widened_brackets_fall_back_to_the_exact_fraction() {
        // A lower bound on 1/(2σ²) a quarter too small leaves floor(γ) unknown for many
        // candidates and puts many 64-bit prefixes inside the bracket, so both exact fallbacks
        // run often; the output must not change.
        for (delta_squared, rho, seed) in [(1, 0.5, 16), (3, 0.35, 17)] {
            let mut scale = scale(delta_squared, rho);
            let fast = scale.fast.as_mut().expect("fast path");
            fast.inverse_low -= 1 << 61;
            let sigma = scale.sigma();
            assert_discrete_gaussian(sigma, seed, |rng| scale.sample(rng));
        }
    }

    #[test]
    fn a_prefix_inside_the_bracket_is_finished_exactly() {
        const DRAWS: u32 = 30_000;
        let mut rng = SeededRandom::new(18);
        let (one, three) = (BigUint::from(1u32), BigUint::from(3u32));
        // 2^64/3 = p + 1/3, so u < 1/3 for u in [p, p + 1)/2^64 with probability 1/3.
        let prefix = u64::MAX / 3;
        let below = |rng: &mut SeededRandom, prefix| {
            below_fraction_after_prefix(rng, prefix, &one, &three).unwrap()
        };
        assert!((0..100).all(|_| below(&mut rng, prefix - 1)));
        assert!((0..100).all(|_| !below(&mut rng, prefix + 1)));
        let hits = (0..DRAWS).filter(|_| below(&mut rng, prefix)).count() as f64;
        let band = 6.0 * (f64::from(DRAWS) * 2.0 / 9.0).sqrt();
        assert!((hits - f64::from(DRAWS) / 3.0).abs() < band, "{hits}");
    }

    #[test]
    fn discrete_laplace_fits() {
        for (laplace_scale, seed) in [(1u64, 7), (3, 8)] {
            let decay = (-1.0 / laplace_scale as f64).exp();
            let pmf = |y: i64| (1.0 - decay) / (1.0 + decay) * decay.powi(y.abs() as i32);
            let support = 60 * laplace_scale as i64;
            let mut rng = SeededRandom::new(seed);
            let draws =
                (0..SAMPLES).map(|_| sample_discrete_laplace(&mut rng, laplace_scale).unwrap());
            let counts = histogram(draws.map(|draw| draw as i64));
            let (statistic, threshold) = chi_squared(&counts, pmf, support);
            assert!(
                statistic < threshold,
                "t = {laplace_scale}: χ² = {statistic:.1}"
            );
            let big_scale = BigUint::from(laplace_scale);
            let counts = histogram((0..SAMPLES).map(|_| {
                let (negative, magnitude) =
                    sample_discrete_laplace_big(&mut rng, &big_scale).unwrap();
                let magnitude = magnitude.to_i64().expect("a small draw");
                if negative { -magnitude } else { magnitude }
            }));
            let (statistic, threshold) = chi_squared(&counts, pmf, support);
            assert!(
                statistic < threshold,
                "big t = {laplace_scale}: χ² = {statistic:.1}"
            );
        }
    }

    #[test]
    fn parity_and_moments_do_not_depend_on_the_input() {
        const DRAWS: usize = 20_000;
        let mut rng = SeededRandom::new(9);
        for (delta_squared, rho) in [
            (1, 0.5),
            (4, 0.5),
            (3, 0.35),
            (u128::MAX, 1.7 * 2f64.powi(121)),
        ] {
            let scale = scale(delta_squared, rho);
            let variance = scale.sigma().powi(2);
            for value in [0, 1] {
                let noisy: Vec<i64> = (0..DRAWS)
                    .map(|_| scale.add_noise(value, &mut rng).unwrap())
                    .collect();
                let odd = noisy
                    .iter()
                    .filter(|noisy| noisy.rem_euclid(2) == 1)
                    .count() as f64;
                let half = DRAWS as f64 / 2.0;
                let band = 6.0 * (DRAWS as f64 * 0.25).sqrt();
                assert!(
                    (odd - half).abs() < band,
                    "σ² = {variance}, value {value}: {odd} odd"
                );
                let noise: Vec<f64> = noisy.iter().map(|noisy| (noisy - value) as f64).collect();
                let mean = noise.iter().sum::<f64>() / DRAWS as f64;
                let spread = noise.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / DRAWS as f64;
                assert!(
                    mean.abs() < 6.0 * (variance / DRAWS as f64).sqrt(),
                    "mean {mean}"
                );
                assert!(
                    (0.9..1.1).contains(&(spread / variance)),
                    "variance {spread} vs {variance}"
                );
            }
        }
    }

    #[test]
    fn bernoulli_exp_minus_matches_exp() {
        const DRAWS: u32 = 100_000;
        let mut rng = SeededRandom::new(10);
        // The same fractions, in lowest terms and widened by about 2^158 so that the uniform
        // draws leave u64.
        let widen = BigUint::from(3u32).pow(100);
        for (numerator, denominator) in [(0u32, 1u32), (1, 3), (1, 1), (5, 2), (7, 1)] {
            let expected = (-f64::from(numerator) / f64::from(denominator)).exp();
            let band = 6.0 * (expected * (1.0 - expected) / f64::from(DRAWS)).sqrt();
            let mut frequency = |numerator: &BigUint, denominator: &BigUint| {
                let hits = (0..DRAWS)
                    .filter(|_| {
                        bernoulli_exp_minus_ratio(&mut rng, numerator, denominator).unwrap()
                    })
                    .count();
                hits as f64 / f64::from(DRAWS)
            };
            let (numerator, denominator) = (BigUint::from(numerator), BigUint::from(denominator));
            let small = frequency(&numerator, &denominator);
            let big = frequency(&(&widen * &numerator), &(&widen * &denominator));
            for frequency in [small, big] {
                assert!(
                    (frequency - expected).abs() <= band,
                    "γ = {numerator}/{denominator}: {frequency} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn uniform_below_covers_exactly_its_range() {
        let mut rng = SeededRandom::new(11);
        for bound in [1u64, 2, 3, 5, 7, 8, 10, 255, 256, 257, 1000] {
            let mut seen = vec![false; bound as usize];
            for _ in 0..20 * bound {
                let value = uniform_below(&mut rng, bound).unwrap();
                assert!(value < bound);
                seen[value as usize] = true;
            }
            assert!(seen.iter().all(|&seen| seen), "bound {bound}");
        }
        assert!((0..100).all(|_| uniform_below(&mut rng, 1).unwrap() == 0));
        let big_seven = BigUint::from(7u32);
        let sevens: Vec<_> = (0..200)
            .map(|_| uniform_below_big(&mut rng, &big_seven).unwrap())
            .collect();
        assert!((0..7u32).all(|value| sevens.contains(&BigUint::from(value))));
        assert!((0..100).all(|_| uniform_below(&mut rng, u64::MAX).unwrap() < u64::MAX));
    }

    #[test]
    fn uniform_below_big_handles_bounds_beyond_64_bits() {
        let mut rng = SeededRandom::new(12);
        let bound = (BigUint::from(3u32) << 70u32) + 1u32;
        let two_thirds = BigUint::from(1u32) << 71u32;
        let mut upper_third = 0;
        for _ in 0..3_000 {
            let value = uniform_below_big(&mut rng, &bound).unwrap();
            assert!(value < bound);
            upper_third += u32::from(value >= two_thirds);
        }
        // Binomial(3000, 1/3): mean 1000, standard deviation about 26.
        assert!((850..1150).contains(&upper_third), "{upper_third}");
        let just_past_u64 = BigUint::from(u64::MAX) + 2u32;
        let values: Vec<_> = (0..200)
            .map(|_| uniform_below_big(&mut rng, &just_past_u64).unwrap())
            .collect();
        assert!(values.iter().all(|value| *value < just_past_u64));
        assert!(values.iter().any(|value| value.bits() == 64));
    }

    #[test]
    fn scale_is_exact_and_validated() {
        let nine = scale(9, 0.5);
        assert_eq!(nine.variance_numerator, BigUint::from(9u32));
        assert_eq!(nine.variance_denominator, BigUint::from(1u32));
        assert_eq!(nine.laplace_scale, BigUint::from(4u32));
        assert!((nine.sigma() - 3.0).abs() < 1e-12);

        // 0.35 is m·2^−54 with m an integer, so σ² = 3/(2·0.35) = 3·2^53/m, in lowest terms.
        let mantissa = BigUint::from((0.35 * 2f64.powi(54)) as u64);
        let odd = scale(3, 0.35);
        assert_eq!(
            &odd.variance_numerator * &mantissa,
            (&odd.variance_denominator * 3u32) << 53u32
        );
        assert_eq!(
            odd.variance_numerator.gcd(&odd.variance_denominator),
            BigUint::from(1u32)
        );
        assert_eq!(odd.laplace_scale, BigUint::from(3u32));
        assert!((odd.sigma() - (3.0f64 / 0.7).sqrt()).abs() < 1e-12);

        // t is the smallest integer with t² > σ², on both sides of a perfect square.
        assert_eq!(scale(4, 0.5).laplace_scale, BigUint::from(3u32));
        assert_eq!(
            scale(4, 0.500_000_000_000_000_1).laplace_scale,
            BigUint::from(2u32)
        );

        for rho in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(NoiseScale::new(9, rho).is_none(), "ρ = {rho}");
        }
        let widest = scale(u128::MAX, f64::from_bits(1));
        assert!(widest.sigma().is_finite() && widest.sigma() > 2f64.powi(600));
    }

    #[test]
    fn zero_sensitivity_adds_no_noise() {
        let mut rng = SeededRandom::new(13);
        let zero = scale(0, 0.1);
        assert!(zero.sigma().abs() < f64::MIN_POSITIVE);
        assert!((0..1_000).all(|_| zero.sample(&mut rng).unwrap() == 0));
        assert_eq!(zero.add_noise(42, &mut rng).unwrap(), 42);
    }

    #[test]
    fn huge_scales_sample_on_the_big_path() {
        let mut rng = SeededRandom::new(14);
        // σ² ≈ 2^127 · 10^30, beyond u128, and σ far beyond i64: every draw saturates.
        let huge = scale(u128::MAX, 1e-30);
        assert!((&huge.variance_numerator / &huge.variance_denominator).bits() > 128);
        assert!(huge.fast.is_none());
        let draws: Vec<i64> = (0..200).map(|_| huge.sample(&mut rng).unwrap()).collect();
        assert!(
            draws
                .iter()
                .all(|&draw| draw == i64::MAX || draw == i64::MIN)
        );
        assert!(draws.contains(&i64::MAX) && draws.contains(&i64::MIN));
        // i64::MAX plus a saturated draw is either still i64::MAX or i64::MAX + i64::MIN.
        assert!([i64::MAX, -1].contains(&huge.add_noise(i64::MAX, &mut rng).unwrap()));

        // σ² ≈ 5·10^−301: the exponent leaves the fixed-point range, and every draw is 0.
        let tiny = scale(1, 1e300);
        assert!((0..100).all(|_| tiny.sample(&mut rng).unwrap() == 0));

        // σ = 10^12 still takes the fast path, with exponents of several hundred bits.
        let wide = scale(1, 5e-25);
        assert!(wide.fast.is_some());
        let draws: Vec<f64> = (0..5_000)
            .map(|_| wide.sample(&mut rng).unwrap() as f64)
            .collect();
        let variance = draws.iter().map(|draw| draw * draw).sum::<f64>() / draws.len() as f64;
        assert!((0.85..1.15).contains(&(variance / 1e24)), "{variance}");
    }

    #[test]
    fn fast_bounds_bracket_the_exact_exponent() {
        let mut rng = SeededRandom::new(15);
        let cases = [
            (1, 0.5),
            (3, 0.35),
            (2, 0.1),
            (1, 0.0008),
            (1, 5e-7),
            (7, 1e-3),
            (1, 1e6),
            (1, 5e-25),
            (u128::MAX, 1.7 * 2f64.powi(121)),
        ];
        for (delta_squared, rho) in cases {
            let scale = scale(delta_squared, rho);
            let fast = scale.fast.as_ref().expect("fast path");
            let laplace_scale = u128::from(fast.laplace_scale);
            let center = fast.center_low >> 64;
            let magnitudes = (0..64)
                .chain(center.saturating_sub(3)..center + 4)
                .chain((0..200).map(|_| u128::from(rng.next_u64()) % (40 * laplace_scale)));
            for magnitude in magnitudes {
                let (low, high) = fast.exponent_bounds(magnitude).expect("bounds in range");
                let exact = scale.exponent_numerator(&BigUint::from(magnitude)) << 64u32;
                let denominator = &scale.exponent_denominator;
                assert!(
                    BigUint::from(low) * denominator <= exact,
                    "ρ = {rho}, y = {magnitude}"
                );
                assert!(
                    exact <= BigUint::from(high) * denominator,
                    "ρ = {rho}, y = {magnitude}"
                );
                assert!(
                    high - low <= (high >> 56) + 4,
                    "loose: ρ = {rho}, y = {magnitude}"
                );
            }
        }
    }

    #[test]
    fn os_random_hands_out_fresh_bytes_and_hides_them() {
        let mut rng = OsRandom::new();
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        rng.fill(&mut first).unwrap();
        rng.fill(&mut second).unwrap();
        assert_ne!(first, second);
        assert!(rng.buffer[..rng.next].iter().all(|&byte| byte == 0));
        // Across a refill, and past the buffer's size.
        let mut across = vec![0u8; BUFFER_BYTES - 10];
        rng.fill(&mut across).unwrap();
        assert!(rng.buffer[..rng.next].iter().all(|&byte| byte == 0));
        let mut large = vec![0u8; 3 * BUFFER_BYTES];
        rng.fill(&mut large).unwrap();
        assert!(large.iter().any(|&byte| byte != 0));
        assert_eq!(format!("{rng:?}"), "OsRandom { .. }");
        assert!(scale(1, 0.5).sample(&mut rng).is_ok());
    }

    #[test]
    fn randomness_error_names_its_source() {
        let error = RandomnessError::from(getrandom::Error::UNSUPPORTED);
        assert!(error.to_string().contains("random number generator"));
        assert!(std::error::Error::source(&error).is_some());
    }
}
