//! Test guest: carries a 30 MiB data segment (a trigger that is costly to keep loaded).
//! Tests change a byte of the segment to make distinct components.

use test_guests::{SyncEvent, TriggerError};

static DATA: [u8; 30 << 20] = [7; 30 << 20];

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let sum: u64 = DATA.iter().step_by(4096).map(|b| u64::from(*b)).sum();
        test_guests::with_result(event, sum)
    }
}

test_guests::export_trigger!(Guest);
