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
//!
//! The event's records go in ([`EventIn`]) and come back ([`Records`]) by this module's own
//! code when the guest's strings are UTF-8 (every guest we know of): wasmtime's generic
//! code looks the guest's memory up again for every string and field it touches (a third
//! of a 1,024-record call), where this looks once per list. Other encodings, and the
//! fuzzing harness's comparison ([`with_wasmtime_abi`]), go through wasmtime's own.

use crate::event::{EventRecord, Op, SyncEvent};
use std::cell::Cell;
use std::mem::MaybeUninit;
use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, LowerContext};
use wasmtime::component::{ComponentType, Lift, Lower};
use wasmtime::{Result, ValRaw, bail, format_err};

/// What the response being lifted on this thread may still hold.
#[derive(Clone, Copy, Default)]
struct Budget {
    bytes_left: usize,
    bytes_cap: usize,
    records_cap: usize,
}

thread_local! {
    static BUDGET: Cell<Budget> = const { Cell::new(Budget { bytes_left: 0, bytes_cap: 0, records_cap: 0 }) };
    /// Set by [`with_wasmtime_abi`]: (lowering, lifting) by wasmtime's generic code.
    static WASMTIME_ABI: Cell<(bool, bool)> = const { Cell::new((false, false)) };
}

/// Which way a list of records crosses.
#[derive(Clone, Copy)]
enum Way {
    In,
    Out,
}

/// Runs `f` with the records lowered (`lower`) and/or lifted (`lift`) by wasmtime's generic
/// code instead of this module's: the tests and the fuzzing harness compare them, each way
/// on its own so that a mistake made the same way in both directions cannot cancel out.
/// (A thread-local, as the budget is: the call, `stacker`'s included, stays on this thread.)
#[doc(hidden)]
pub fn with_wasmtime_abi<R>(lower: bool, lift: bool, f: impl FnOnce() -> R) -> R {
    struct Restore((bool, bool));
    impl Drop for Restore {
        fn drop(&mut self) {
            WASMTIME_ABI.set(self.0);
        }
    }
    let _restore = Restore(WASMTIME_ABI.replace((lower, lift)));
    f()
}

/// Whether this module's own record code applies: UTF-8 strings, and no comparison asked.
fn own_code(encoding: StringEncoding, way: Way) -> bool {
    let (lower, lift) = WASMTIME_ABI.get();
    let generic = match way {
        Way::In => lower,
        Way::Out => lift,
    };
    matches!(encoding, StringEncoding::Utf8) && !generic
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

// SAFETY: checks the count first, then either delegates to `Vec<Record>` or lifts the
// list itself with every check wasmtime's code makes (bounds, alignment, tags, UTF-8,
// hostcall fuel) in the same order.
unsafe impl Lift for Records {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        // Never taken by `handle`'s result (more than one flat value comes back in memory).
        count_records(src[1].get_u32())?;
        Ok(Records(Vec::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        count_records(second_word(bytes))?;
        if own_code(cx.options().string_encoding, Way::Out) {
            return lift_records(cx, first_word(bytes) as usize, second_word(bytes) as usize).map(Records);
        }
        Ok(Records(Vec::linear_lift_from_memory(cx, ty, bytes)?))
    }
}

/// `dataset-record` in the canonical ABI with UTF-8 strings: the key's (pointer, length)
/// at 0; `old-value` and `new-value` as `option<string>` (a tag byte, the pair at +4) at 8
/// and 20; `op` (a byte) at 32. 36 bytes, aligned to 4.
/// (The tests send every shape of record through a trigger with our lowering and wasmtime's
/// lifting, and the other way round: a layout that drifted from the WIT fails them.)
const RECORD_SIZE: usize = 36;
const _: () = {
    assert!(<Record as ComponentType>::SIZE32 == RECORD_SIZE && <Record as ComponentType>::ALIGN32 == 4);
    assert!(<EventRecord as ComponentType>::SIZE32 == RECORD_SIZE && <EventRecord as ComponentType>::ALIGN32 == 4);
    assert!(<Option<String> as ComponentType>::SIZE32 == 12 && <Option<String> as ComponentType>::ALIGN32 == 4);
    assert!(<Op as ComponentType>::SIZE32 == 1);
};

/// `op`'s tag. Exhaustive: a new case of [`Op`] stops the build here, instead of being
/// refused as a bad tag by [`op_of_tag`].
const fn op_tag(op: Op) -> u8 {
    match op {
        Op::Replace => 0,
        Op::Remove => 1,
    }
}

/// The [`Op`] a tag names, as [`op_tag`] numbers them.
fn op_of_tag(tag: u8) -> Result<Op> {
    match tag {
        t if t == op_tag(Op::Replace) => Ok(Op::Replace),
        t if t == op_tag(Op::Remove) => Ok(Op::Remove),
        discrim => bail!("unexpected discriminant: {discrim}"),
    }
}

/// The pointer word of a pointer pair in memory (0 if short).
fn first_word(bytes: &[u8]) -> u32 {
    bytes.get(0..4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// Lifts `len` records at `ptr` of the guest's memory, looking the memory up once.
fn lift_records(cx: &mut LiftContext<'_>, ptr: usize, len: usize) -> Result<Vec<Record>> {
    let memory = cx.memory();
    let list = len
        .checked_mul(RECORD_SIZE)
        .and_then(|size| memory.get(ptr..ptr.checked_add(size)?))
        .ok_or_else(|| format_err!("list pointer/length out of bounds of memory"))?;
    cx.consume_fuel_array(len, size_of::<Record>())?;
    if !ptr.is_multiple_of(4) {
        bail!("list pointer is not aligned")
    }
    let mut records = Vec::with_capacity(len);
    for slot in list.chunks_exact(RECORD_SIZE) {
        let key = lift_text(cx, memory, &slot[0..8])?;
        let old_value = lift_option(cx, memory, &slot[8..20])?;
        let new_value = lift_option(cx, memory, &slot[20..32])?;
        let op = op_of_tag(slot[32])?;
        records.push(Record { key, old_value, new_value, op });
    }
    Ok(records)
}

/// An `option<string>` of a record: its tag, then the pair at +4.
fn lift_option(cx: &mut LiftContext<'_>, memory: &[u8], slot: &[u8]) -> Result<Option<Text>> {
    match slot[0] {
        0 => Ok(None),
        1 => lift_text(cx, memory, &slot[4..12]).map(Some),
        _ => bail!("invalid option discriminant"),
    }
}

/// A UTF-8 string whose (pointer, length) pair is `pair`, charged to the budget first.
fn lift_text(cx: &mut LiftContext<'_>, memory: &[u8], pair: &[u8]) -> Result<Text> {
    let (ptr, len) = (first_word(pair) as usize, second_word(pair) as usize);
    charge(len)?;
    let bytes = ptr
        .checked_add(len)
        .and_then(|end| memory.get(ptr..end))
        .ok_or_else(|| format_err!("string pointer/length out of bounds of memory"))?;
    cx.consume_fuel(len)?;
    Ok(Text(std::str::from_utf8(bytes)?.to_owned()))
}

/// The event as it is lowered into a trigger: the host's [`SyncEvent`], borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct EventIn<'a> {
    version: u32,
    #[component(name = "event-type")]
    event_type: &'a str,
    region: &'a str,
    #[component(name = "identity-pool-id")]
    identity_pool_id: &'a str,
    #[component(name = "identity-id")]
    identity_id: &'a str,
    #[component(name = "dataset-name")]
    dataset_name: &'a str,
    records: RecordsIn<'a>,
}

impl<'a> From<&'a SyncEvent> for EventIn<'a> {
    fn from(e: &'a SyncEvent) -> Self {
        EventIn {
            version: e.version,
            event_type: &e.event_type,
            region: &e.region,
            identity_pool_id: &e.identity_pool_id,
            identity_id: &e.identity_id,
            dataset_name: &e.dataset_name,
            records: RecordsIn(&e.dataset_records),
        }
    }
}

/// The event's records as they are lowered.
pub struct RecordsIn<'a>(&'a [EventRecord]);

// SAFETY: the same canonical ABI shape and type check as `[EventRecord]`.
unsafe impl ComponentType for RecordsIn<'_> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <[EventRecord] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: either delegates to `[EventRecord]`, or asks the guest's `realloc` for the same
// blocks in the same order (each string its own block, since the guest frees each on its
// own), each checked by `realloc` to lie in memory, and writes the same values into them;
// it also zeroes the padding and an absent value's payload, which wasmtime leaves as they
// were. (Blocks a hostile `realloc` made overlap may end with other bytes than wasmtime's
// order of writes leaves: the guest's own doing, in its own memory.)
unsafe impl Lower for RecordsIn<'_> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> Result<()> {
        if !own_code(cx.options().string_encoding, Way::In) {
            return self.0.linear_lower_to_flat(cx, ty, dst);
        }
        let (ptr, len) = lower_records(cx, self.0)?;
        dst.write([ValRaw::i64(ptr as i64), ValRaw::i64(len as i64)]);
        Ok(())
    }

    fn linear_lower_to_memory<U>(&self, cx: &mut LowerContext<'_, U>, ty: InterfaceType, offset: usize) -> Result<()> {
        // Never taken by `handle`'s parameter (13 flat values, under the 16 passed flat).
        self.0.linear_lower_to_memory(cx, ty, offset)
    }
}

/// The most bytes one string may have in the guest (the canonical ABI's bound).
const MAX_STRING_BYTES: usize = (1 << 31) - 1;

/// Lowers `records`: every block from the guest's `realloc` first (the list's, then each
/// record's strings in field order, as wasmtime's code asks for them), then one look at
/// memory to write them all.
fn lower_records<U>(cx: &mut LowerContext<'_, U>, records: &[EventRecord]) -> Result<(usize, usize)> {
    let size = records.len().checked_mul(RECORD_SIZE).ok_or_else(|| format_err!("size overflow copying a list"))?;
    let list = cx.realloc(0, 0, 4, size)?;
    let mut blocks = Vec::with_capacity(records.len() * 3);
    for r in records {
        for s in [Some(&r.key), r.old_value.as_ref(), r.new_value.as_ref()].into_iter().flatten() {
            if s.len() > MAX_STRING_BYTES {
                bail!("string length of {} too large to copy into wasm", s.len());
            }
            blocks.push(cx.realloc(0, 0, 1, s.len())?);
        }
    }
    let memory = cx.as_slice_mut();
    let mut blocks = blocks.into_iter();
    let mut put = |memory: &mut [u8], s: &str, pair: &mut [u8]| -> Result<()> {
        // Neither error can happen (one block per string; `realloc` checked each), but a
        // mistake here must be an error, not a panic.
        let ptr = blocks.next().ok_or_else(|| format_err!("internal: a string without its block"))?;
        memory
            .get_mut(ptr..ptr + s.len())
            .ok_or_else(|| format_err!("internal: a string's block outside memory"))?
            .copy_from_slice(s.as_bytes());
        pair[..4].copy_from_slice(&u32::try_from(ptr)?.to_le_bytes());
        pair[4..8].copy_from_slice(&u32::try_from(s.len())?.to_le_bytes());
        Ok(())
    };
    for (i, r) in records.iter().enumerate() {
        let mut slot = [0u8; RECORD_SIZE];
        put(memory, &r.key, &mut slot[0..8])?;
        for (at, value) in [(8, &r.old_value), (20, &r.new_value)] {
            if let Some(value) = value {
                slot[at] = 1;
                put(memory, value, &mut slot[at + 4..at + 12])?;
            }
        }
        slot[32] = op_tag(r.op);
        let at = list + i * RECORD_SIZE;
        memory
            .get_mut(at..at + RECORD_SIZE)
            .ok_or_else(|| format_err!("internal: the list's block outside memory"))?
            .copy_from_slice(&slot);
    }
    Ok((list, records.len()))
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
