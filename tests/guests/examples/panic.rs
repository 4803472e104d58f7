//! Test guest: panics.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        panic!("trigger bug: index out of range")
    }
}

test_guests::export_trigger!(Guest);
