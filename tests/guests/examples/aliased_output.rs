//! Test guest: returns 4,000 records whose values all point at one 4 MiB string in its
//! memory. The canonical ABI allows aliasing, so 4 MiB in the guest would lift into 16 GB
//! of host strings if the host copied before counting.

use test_guests::{DatasetRecord, Op, SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        let big = std::mem::ManuallyDrop::new("x".repeat(4 << 20));
        for i in 0..4_000 {
            // SAFETY: none; this guest lies on purpose. Every record claims the same
            // buffer, which the host must refuse to copy 4,000 times. The guest never
            // frees them (the host refuses the output before post-return runs).
            let alias = unsafe { String::from_raw_parts(big.as_ptr().cast_mut(), big.len(), big.capacity()) };
            event.records.push(DatasetRecord {
                key: format!("alias{i}"),
                old_value: None,
                new_value: Some(alias),
                op: Op::Replace,
            });
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
