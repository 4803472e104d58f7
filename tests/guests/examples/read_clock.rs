//! Test guest: reports the wall clock, twice, across a busy loop.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let t1 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x ^ i);
        }
        let t2 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut event = event;
        event.records.push(test_guests::added("t1", &t1.to_string()));
        event.records.push(test_guests::added("t2", &t2.to_string()));
        let _ = x;
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
