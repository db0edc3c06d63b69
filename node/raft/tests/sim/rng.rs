//! Drawing numbers from the run's one PRNG.

use rand_core::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub trait Draw {
    /// Uniform in `[lo, hi)`; `lo` when the range is empty.
    fn between(&mut self, lo: u64, hi: u64) -> u64;
    fn chance_ppm(&mut self, ppm: u64) -> bool;
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T>;
}

impl Draw for Xoshiro256PlusPlus {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { lo + self.next_u64() % (hi - lo) }
    }

    fn chance_ppm(&mut self, ppm: u64) -> bool {
        self.next_u64() % 1_000_000 < ppm
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[(self.next_u64() % items.len() as u64) as usize])
        }
    }
}
