//! Test guest: creates timers and never drops them, until the host's resource table is full.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut n = 0u64;
        loop {
            std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(1));
            n += 1;
            if n == u64::MAX {
                return test_guests::with_result(event, n);
            }
        }
    }
}

test_guests::export_trigger!(Guest);
