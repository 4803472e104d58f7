//! Test guest: sets every record's newValue to null (which removes it) but keeps op replace.

use test_guests::{Op, SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        for r in &mut event.records {
            r.new_value = None;
            r.op = Op::Replace;
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
