//! Test guest: adds two records.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        event.records.push(test_guests::added("added1", "one"));
        event.records.push(test_guests::added("added2", "two"));
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
