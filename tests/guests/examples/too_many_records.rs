//! Test guest: adds records until the dataset has 1,025.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        let mut i = 0;
        while event.records.len() < 1025 {
            event.records.push(test_guests::added(&format!("extra{i}"), "v"));
            i += 1;
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
