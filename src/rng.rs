//! A small seeded generator (SplitMix64) for reproducible test and benchmark inputs.

/// SplitMix64: fast, seedable, statistically fine for test data (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed; the same seed gives the same sequence on every platform.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `len` values uniform in [-1, 1), none exactly zero (zeros hide indexing bugs).
    pub fn vec_f32(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| loop {
                let v = self.next_f32() * 2.0 - 1.0;
                if v != 0.0 {
                    break v;
                }
            })
            .collect()
    }
}
