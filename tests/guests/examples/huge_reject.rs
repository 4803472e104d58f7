//! Test guest: rejects the update with a 40 MiB reason.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        Err(TriggerError::Reject("x".repeat(40 << 20)))
    }
}

test_guests::export_trigger!(Guest);
