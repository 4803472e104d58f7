//! The sandbox synctrig-wasm is named for: Sync Triggers are untrusted WebAssembly
//! components (Rust, or JavaScript on the engine component this workspace builds) run in a
//! wasmtime sandbox, their output validated and merged as Cognito did. No HTTP, database
//! or token crate stands below it.
//!
//! - [`event`]: the Sync Trigger event and its JSON codec;
//! - [`merge`]: validation and merge of a trigger's response, pure functions;
//! - [`sandbox`]: loading and running trigger components under limits;
//! - [`Error`]: every outcome, mapped to the Cognito Sync API's error names.

pub mod error;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod invoker;
pub use synctrig_core::limits;
pub mod merge;
pub mod pipeline;
pub mod sandbox;

pub use error::Error;
pub use event::SyncEvent;
pub use sandbox::{Entropy, Invocation, Limits, Prepared, Runtime, RuntimeConfig, Stats, Trigger};
