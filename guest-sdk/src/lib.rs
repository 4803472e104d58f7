//! Write [synctrig-wasm] Sync Triggers in Rust.
//!
//! A Sync Trigger sees the whole dataset on every update an app user makes and decides
//! what is stored: it may keep, rewrite, remove or add records, or reject the update
//! with a reason. This crate gives you the event as plain Rust ([`SyncEvent`]), logging
//! ([`info!`] and friends) and one macro, [`trigger!`], that exports your handler as a
//! WebAssembly component. Your logic is ordinary Rust, so you test it with `cargo test`.
//!
//! # Example
//!
//! The seed's sample trigger: rewrite `SampleKey1`, remove `SampleKey2`, add
//! `SampleKey3` when it is absent.
//!
//! ```
//! use synctrig_guest::{Rejection, SyncEvent};
//!
//! fn handle(mut event: SyncEvent) -> Result<SyncEvent, Rejection> {
//!     synctrig_guest::info!("sync of {} records", event.len());
//!     if event.contains("SampleKey1") {
//!         event.replace("SampleKey1", "ModifyValue1");
//!     }
//!     event.remove("SampleKey2");
//!     event.add("SampleKey3", "ModifyValue3");
//!     if event.value("Forbidden").is_some() {
//!         return Err(Rejection::new("Forbidden may not be set"));
//!     }
//!     Ok(event)
//! }
//!
//! synctrig_guest::trigger!(handle);
//!
//! // A native unit test of the same logic:
//! let event = SyncEvent::builder("us-east-1:pool", "us-east-1:someone", "settings")
//!     .changed("SampleKey1", Some("old"), "new")
//!     .stored("SampleKey2", "kept?")
//!     .build();
//! let out = handle(event).unwrap();
//! assert_eq!(out.value("SampleKey1"), Some("ModifyValue1"));
//! assert_eq!(out.value("SampleKey2"), None);
//! assert_eq!(out.value("SampleKey3"), Some("ModifyValue3"));
//! ```
//!
//! Build the component with `cargo build --release --target wasm32-wasip2` (the crate
//! must have `crate-type = ["cdylib"]`) and try it with
//! `synctrig-wasm run --trigger target/wasm32-wasip2/release/NAME.wasm --event event.json`.
//!
//! [synctrig-wasm]: https://crates.io/crates/synctrig-wasm

#[doc(hidden)]
pub mod alloc;
mod event;
pub mod log;

pub use event::{EventBuilder, Op, Record, SyncEvent};

/// A trigger's refusal of an update. The reason is returned to the app client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    reason: String,
}

impl Rejection {
    /// Rejects the update with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection { reason: reason.into() }
    }

    /// Why the update was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Rejection {}

#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sync-trigger",
        pub_export_macro: true,
        export_macro_name: "__export_sync_trigger",
        default_bindings_module: "::synctrig_guest::__bindings",
    });
}

#[doc(hidden)]
pub mod __private {
    use crate::__bindings::synctrig::trigger::types as wit;
    use crate::{Op, Record, Rejection, SyncEvent};

    // One pass each way; every string is moved, none copied.
    fn from_wit(event: wit::SyncEvent) -> SyncEvent {
        let mut out = SyncEvent {
            version: event.version,
            event_type: event.event_type,
            region: event.region,
            identity_pool_id: event.identity_pool_id,
            identity_id: event.identity_id,
            dataset_name: event.dataset_name,
            records: Vec::new(),
        };
        out.set_records(
            event
                .records
                .into_iter()
                .map(|r| {
                    let op = match r.op {
                        wit::Op::Replace => Op::Replace,
                        wit::Op::Remove => Op::Remove,
                    };
                    (r.key, Record { old_value: r.old_value, new_value: r.new_value, op })
                })
                .collect(),
        );
        out
    }

    fn to_wit(event: SyncEvent) -> wit::SyncEvent {
        wit::SyncEvent {
            version: event.version,
            event_type: event.event_type,
            region: event.region,
            identity_pool_id: event.identity_pool_id,
            identity_id: event.identity_id,
            dataset_name: event.dataset_name,
            records: event
                .records
                .into_iter()
                .map(|(key, r)| wit::DatasetRecord {
                    key,
                    old_value: r.old_value,
                    new_value: r.new_value,
                    op: match r.op {
                        Op::Replace => wit::Op::Replace,
                        Op::Remove => wit::Op::Remove,
                    },
                })
                .collect(),
        }
    }

    /// Runs an author's handler on a raw event; what the exported `handle` calls.
    pub fn run(
        event: wit::SyncEvent,
        handler: impl FnOnce(SyncEvent) -> Result<SyncEvent, Rejection>,
    ) -> Result<wit::SyncEvent, wit::TriggerError> {
        handler(from_wit(event)).map(to_wit).map_err(|r| wit::TriggerError::Reject(r.reason))
    }
}

/// Exports `handler` — a `fn(SyncEvent) -> Result<SyncEvent, Rejection>` — as this
/// component's Sync Trigger.
///
/// Use it once per crate. When the crate is not built for WebAssembly it expands to
/// nothing, so the handler is an ordinary function for native tests.
///
/// It also installs the SDK's allocator: the first 16 KiB a trigger allocates are bumped
/// from an arena and never reused (an invocation's instance is thrown away after its one
/// call, and most of what it allocates is the event), the rest comes from the system
/// allocator as usual. It takes about a quarter off the sample trigger's instructions. A
/// crate with a `#[global_allocator]` of its own writes `trigger!(handler, allocator = own)`.
#[macro_export]
macro_rules! trigger {
    ($handler:path) => {
        $crate::trigger!($handler, allocator = own);

        // Single-threaded WebAssembly only: the arena is not safe to share between threads.
        #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
        const _: () = {
            #[global_allocator]
            static SYNCTRIG_ALLOCATOR: $crate::alloc::Allocator = $crate::alloc::Allocator;

            /// What imports return is allocated by the system allocator, which wasi-libc
            /// frees it with (the component's linker uses this for imports when present).
            #[unsafe(no_mangle)]
            unsafe extern "C" fn cabi_import_realloc(
                old: *mut u8,
                old_len: usize,
                align: usize,
                new_len: usize,
            ) -> *mut u8 {
                // SAFETY: called by the canonical ABI, under its contract for `realloc`.
                unsafe { $crate::alloc::import_realloc(old, old_len, align, new_len) }
            }
        };
    };
    ($handler:path, allocator = own) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SynctrigTrigger;

            impl $crate::__bindings::Guest for SynctrigTrigger {
                fn handle(
                    event: $crate::__bindings::synctrig::trigger::types::SyncEvent,
                ) -> ::core::result::Result<
                    $crate::__bindings::synctrig::trigger::types::SyncEvent,
                    $crate::__bindings::synctrig::trigger::types::TriggerError,
                > {
                    $crate::__private::run(event, $handler)
                }
            }

            $crate::__bindings::__export_sync_trigger!(SynctrigTrigger);
        };
    };
}
