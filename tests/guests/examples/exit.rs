//! Test guest: calls exit(3) instead of returning.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        std::process::exit(3)
    }
}

test_guests::export_trigger!(Guest);
