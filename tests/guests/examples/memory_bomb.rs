//! Test guest: allocates until memory.grow is denied.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
            if hoard.len() == usize::MAX {
                break;
            }
        }
        test_guests::with_result(event, hoard.len() as u64)
    }
}

test_guests::export_trigger!(Guest);
