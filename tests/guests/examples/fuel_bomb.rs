//! Test guest: a long but finite computation (about 10^10 steps).

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut x: u64 = event.records.len() as u64;
        for i in 0..10_000_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        test_guests::with_result(event, x)
    }
}

test_guests::export_trigger!(Guest);
