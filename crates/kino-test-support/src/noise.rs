//! Deterministic, incompressible filler bytes for benchmarks and tests (xorshift64).

/// A seeded stream of pseudo-random bytes; the same seed gives the same bytes.
pub struct Noise(u64);

impl Noise {
    /// A stream for `seed` (any value; zero is avoided internally).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_bytes_and_another_seed_others() {
        assert_eq!(Noise::new(7).bytes(4096), Noise::new(7).bytes(4096));
        assert_ne!(Noise::new(7).bytes(4096), Noise::new(8).bytes(4096));
    }
}
