//! Test guest: recurses until the stack overflows.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let depth = recurse(std::hint::black_box(1));
        test_guests::with_result(event, depth)
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    // Plain integers only: the frames live on the native wasm stack, not on the
    // shadow stack in linear memory, so this overflows `max_wasm_stack`.
    if n == 0 { 0 } else { recurse(n.wrapping_mul(3) | 1).wrapping_mul(n).wrapping_add(1) }
}

test_guests::export_trigger!(Guest);
