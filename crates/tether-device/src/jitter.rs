//! Where the backoff's random share comes from: the system RNG in production, a
//! fixed sequence in tests.

use std::fmt;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

/// A source of uniform random numbers in `[0, 1)`.
pub trait Jitter: Send + Sync + fmt::Debug {
    /// The next number.
    fn uniform(&self) -> f64;
}

/// The operating system's RNG (through ring).
#[derive(Debug)]
pub struct SystemJitter(SystemRandom);

impl Default for SystemJitter {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemJitter {
    /// The system RNG.
    pub fn new() -> Self {
        SystemJitter(SystemRandom::new())
    }
}

impl Jitter for SystemJitter {
    fn uniform(&self) -> f64 {
        let mut b = [0u8; 8];
        // If the RNG fails, waiting the full ceiling is the safe choice for the server.
        if self.0.fill(&mut b).is_err() {
            return 1.0 - f64::EPSILON;
        }
        // 53 random bits make every double in [0, 1) reachable with equal spacing.
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Repeats a fixed list of numbers (for tests and simulations).
#[derive(Debug)]
pub struct FixedJitter {
    values: Vec<f64>,
    next: Mutex<usize>,
}

impl FixedJitter {
    /// Cycles through `values` (0.5 if empty).
    pub fn new(values: Vec<f64>) -> Self {
        FixedJitter {
            values,
            next: Mutex::new(0),
        }
    }
}

impl Jitter for FixedJitter {
    fn uniform(&self) -> f64 {
        let Ok(mut i) = self.next.lock() else {
            return 0.5;
        };
        let v = self
            .values
            .get(*i % self.values.len().max(1))
            .copied()
            .unwrap_or(0.5);
        *i += 1;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let j = SystemJitter::new();
        for _ in 0..1000 {
            let v = j.uniform();
            assert!((0.0..1.0).contains(&v));
        }
        let f = FixedJitter::new(vec![0.1, 0.9]);
        assert_eq!([f.uniform(), f.uniform(), f.uniform()], [0.1, 0.9, 0.1]);
    }
}
