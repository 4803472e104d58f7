//! The trigger's response as it crosses back from the guest: lifted straight into the
//! host's [`SyncEvent`] under a byte budget.
//!
//! The canonical ABI lets strings alias: a guest can return thousands of records whose
//! values all point at one large string in its memory, which a plain lift would copy
//! once per record (gigabytes from a few MiB of guest memory). [`Text`] charges each
//! string's length to the invocation's budget *before* copying it, so the host never
//! holds more than the output cap plus one string.

use crate::event::{EventRecord, Op, SyncEvent};
use std::cell::Cell;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::{Result, ValRaw};

thread_local! {
    /// Bytes the response being lifted on this thread may still hold, and its cap.
    static BUDGET: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The lift stopped because the response's strings exceed the output cap.
#[derive(Debug, thiserror::Error)]
#[error("the trigger's output is over the cap of {cap} bytes")]
pub struct OverBudget {
    /// The cap, bytes.
    pub cap: usize,
}

/// Runs `lift` (a call whose result is lifted on this thread) with `cap` bytes of
/// string budget. Outside it the budget is 0: a [`Text`] lifted elsewhere must be empty.
pub fn with_budget<R>(cap: usize, lift: impl FnOnce() -> R) -> R {
    BUDGET.set((cap, cap));
    let result = lift();
    BUDGET.set((0, 0));
    result
}

/// Takes `len` bytes from this thread's budget, or fails without copying anything.
fn charge(len: usize) -> Result<()> {
    let (left, cap) = BUDGET.get();
    let rest = left.checked_sub(len).ok_or_else(|| wasmtime::Error::new(OverBudget { cap }))?;
    BUDGET.set((rest, cap));
    Ok(())
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

// SAFETY: delegates the lift itself to `String` and only reads the length first. That
// length is in code units: bytes for UTF-8 (what Rust and the JS engine use); a UTF-16
// guest's strings may transcode to up to 3 bytes per unit, still bounded by the cap.
unsafe impl Lift for Text {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        charge(src[1].get_u32() as usize)?;
        Ok(Text(String::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        let len = bytes.get(4..8).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
        charge(len as usize)?;
        Ok(Text(String::linear_lift_from_memory(cx, ty, bytes)?))
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
    records: Vec<Record>,
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
    /// The number of records the trigger returned.
    pub fn len(&self) -> usize {
        self.records.len()
    }

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
