//! Test guest: reads the monotonic clock.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let t = std::time::Instant::now();
        test_guests::with_result(event, t.elapsed().as_nanos() as u64)
    }
}

test_guests::export_trigger!(Guest);
