//! Spins one core at normal priority until it is killed (or for SECONDS): the outside load of
//! `LOADGEN_CPU_HOG=1 loadgen`, so that the noisy-neighbour figures hold on a machine that
//! other processes also use.
//!
//! `cpu-hog [SECONDS]`

use std::time::{Duration, Instant};

fn main() {
    let limit = std::env::args().nth(1).map(|s| Duration::from_secs(s.parse().expect("usage: cpu-hog [SECONDS]")));
    let started = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        // A few million steps between clock reads; black_box keeps the loop from being folded.
        for _ in 0..4_000_000 {
            x = std::hint::black_box(x.rotate_left(7) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
        if limit.is_some_and(|l| started.elapsed() >= l) {
            return;
        }
    }
}
