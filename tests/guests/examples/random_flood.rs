//! Test guest: asks the host for far more random bytes than it hands out.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let bytes = wasip2::random::random::get_random_bytes(64 << 20);
        test_guests::with_result(event, bytes.len() as u64)
    }
}

test_guests::export_trigger!(Guest);
