//! The trigger's response as it crosses back from the guest: lifted straight into the
//! host's [`SyncEvent`] under a budget.
//!
//! The canonical ABI lets strings alias: a guest can return thousands of records whose
//! values all point at one large string in its memory, which a plain lift copies once per
//! record (wasmtime's own per-call transfer limit stops that at 128 MiB). [`Text`] charges
//! each string's size to the invocation's output cap *before* copying it, and [`Records`]
//! checks the record count before the list is allocated, so the host holds at most the
//! output cap of strings and the record cap of records.
//!
//! The budget is a thread-local because lifting happens inside wasmtime's synchronous
//! `TypedFunc::call` on this thread, with no way to pass state in; the runtime never
//! calls a trigger asynchronously.

use crate::event::{EventRecord, Op, SyncEvent};
use std::cell::Cell;
use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::{Result, ValRaw};

/// What the response being lifted on this thread may still hold.
#[derive(Clone, Copy, Default)]
struct Budget {
    bytes_left: usize,
    bytes_cap: usize,
    records_cap: usize,
}

thread_local! {
    static BUDGET: Cell<Budget> = const { Cell::new(Budget { bytes_left: 0, bytes_cap: 0, records_cap: 0 }) };
}

/// The lift stopped because the response exceeds an output cap; nothing more was copied.
#[derive(Debug, thiserror::Error)]
pub enum OverBudget {
    /// Its strings hold more than the cap.
    #[error("the trigger's output is over the cap of {cap} bytes")]
    Bytes {
        /// The cap, bytes.
        cap: usize,
    },
    /// It has more records than the cap.
    #[error("{count} records, over the cap of {cap}")]
    Records {
        /// How many records the trigger returned.
        count: usize,
        /// The cap.
        cap: usize,
    },
}

/// Runs `lift` (a call whose result is lifted on this thread) with `bytes_cap` bytes of
/// strings and `records_cap` records allowed. Outside it both are 0: a [`Text`] or
/// [`Records`] lifted elsewhere must be empty.
pub fn with_budget<R>(bytes_cap: usize, records_cap: usize, lift: impl FnOnce() -> R) -> R {
    /// Restores the previous budget even if `lift` unwinds.
    struct Restore(Budget);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.set(self.0);
        }
    }
    let _restore = Restore(BUDGET.replace(Budget { bytes_left: bytes_cap, bytes_cap, records_cap }));
    lift()
}

/// Takes `bytes` from this thread's budget, or fails without copying anything.
fn charge(bytes: usize) -> Result<()> {
    let budget = BUDGET.get();
    let bytes_left = budget.bytes_left.checked_sub(bytes).ok_or(OverBudget::Bytes { cap: budget.bytes_cap })?;
    BUDGET.set(Budget { bytes_left, ..budget });
    Ok(())
}

/// The most UTF-8 bytes a string of `len` (as the canonical ABI encodes it) can become.
fn utf8_bytes(cx: &LiftContext<'_>, len: u32) -> usize {
    const UTF16_TAG: u32 = 1 << 31;
    let len = len as usize;
    match cx.options().string_encoding {
        StringEncoding::Utf8 => len,
        // Each UTF-16 unit becomes at most 3 bytes (a surrogate pair, 2 units, becomes 4).
        StringEncoding::Utf16 => len.saturating_mul(3),
        StringEncoding::CompactUtf16 if len & UTF16_TAG as usize != 0 => (len ^ UTF16_TAG as usize).saturating_mul(3),
        // Latin-1: each byte becomes at most 2.
        StringEncoding::CompactUtf16 => len.saturating_mul(2),
    }
}

/// A string lifted from the guest only after its length is charged to the budget.
pub struct Text(pub String);

// SAFETY: the same canonical ABI shape and type check as `String`, to which it delegates.
unsafe impl ComponentType for Text {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: delegates the lift itself to `String` and only reads the length first, where
// `String`'s lift reads it (the second word of the pointer pair).
unsafe impl Lift for Text {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        charge(utf8_bytes(cx, src[1].get_u32()))?;
        Ok(Text(String::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        charge(utf8_bytes(cx, second_word(bytes)))?;
        Ok(Text(String::linear_lift_from_memory(cx, ty, bytes)?))
    }
}

/// The length word of a pointer pair in memory (0 if short, which the delegate refuses).
fn second_word(bytes: &[u8]) -> u32 {
    bytes.get(4..8).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// The records of a response, counted against the cap before the list is allocated.
pub struct Records(Vec<Record>);

// SAFETY: the same canonical ABI shape and type check as `Vec<Record>`.
unsafe impl ComponentType for Records {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <Vec<Record> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <Vec<Record> as ComponentType>::typecheck(ty, types)
    }
}

fn count_records(count: u32) -> Result<()> {
    let cap = BUDGET.get().records_cap;
    let count = count as usize;
    if count > cap {
        return Err(OverBudget::Records { count, cap }.into());
    }
    Ok(())
}

// SAFETY: delegates to `Vec<Record>` after reading the length word, as for `Text`.
unsafe impl Lift for Records {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        count_records(src[1].get_u32())?;
        Ok(Records(Vec::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        count_records(second_word(bytes))?;
        Ok(Records(Vec::linear_lift_from_memory(cx, ty, bytes)?))
    }
}

/// `dataset-record` as returned by a trigger.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct Record {
    key: Text,
    #[component(name = "old-value")]
    old_value: Option<Text>,
    #[component(name = "new-value")]
    new_value: Option<Text>,
    op: Op,
}

/// `sync-event` as returned by a trigger.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct Response {
    version: u32,
    #[component(name = "event-type")]
    event_type: Text,
    region: Text,
    #[component(name = "identity-pool-id")]
    identity_pool_id: Text,
    #[component(name = "identity-id")]
    identity_id: Text,
    #[component(name = "dataset-name")]
    dataset_name: Text,
    records: Records,
}

/// `trigger-error` as returned by a trigger. One string cannot alias itself, so the
/// reason is bounded by the guest's memory and is cut to size after the lift.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum TriggerError {
    /// The update is refused with this reason.
    #[component(name = "reject")]
    Reject(String),
}

/// What `handle` returns.
pub type HandleResult = (Result<Response, TriggerError>,);

impl Response {
    /// The response as the host's event; moves every string, copies none.
    pub fn into_event(self) -> SyncEvent {
        SyncEvent {
            version: self.version,
            event_type: self.event_type.0,
            region: self.region.0,
            identity_pool_id: self.identity_pool_id.0,
            identity_id: self.identity_id.0,
            dataset_name: self.dataset_name.0,
            dataset_records: self
                .records
                .0
                .into_iter()
                .map(|r| EventRecord {
                    key: r.key.0,
                    old_value: r.old_value.map(|t| t.0),
                    new_value: r.new_value.map(|t| t.0),
                    op: r.op,
                })
                .collect(),
        }
    }
}
