//! JavaScript triggers: the QuickJS engine component (`js-engine/engine.wasm`, built from
//! `js-engine/src` by `js-engine/build.sh`, embedded by `build.rs`), pre-initialised per
//! script with Wizer.
//!
//! Deploying a script instantiates the engine in the sandbox (fuel, deadline, memory cap),
//! calls its `init-script` export (which parses the script, runs its top level as a
//! CommonJS module and collects garbage), and snapshots the instance's memory and globals
//! into a new component. That component is an ordinary `sync-trigger` component: it is
//! checked, compiled (by the compile worker) and cached like any other, and each
//! invocation starts from the snapshot instead of starting QuickJS.
//!
//! ```no_run
//! # fn main() -> Result<(), synctrig_runtime::Error> {
//! use synctrig_runtime::sandbox::js::{Code, ScriptSettings};
//! let runtime = synctrig_runtime::Runtime::new(Default::default())?;
//! let bytes = std::fs::read("index.js").map_err(|e| synctrig_runtime::Error::InvalidComponent(e.to_string()))?;
//! let Code::Script { source, export } = Code::script(bytes, "handler")? else { unreachable!() };
//! let settings = ScriptSettings {
//!     function_name: "sample".into(),
//!     function_version: "1".into(),
//!     invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:sample:1".into(),
//!     memory_limit_in_mb: "64".into(),
//!     deadline_ms: 5000,
//!     environment: Default::default(),
//! };
//! let prepared = runtime.prepare_script(&source, &export, &settings)?;
//! let trigger = runtime.load(&prepared.component)?;
//! # Ok(()) }
//! ```

use super::{Phase, Runtime, classify, host::HostState};
use crate::error::Error;
use sha2::{Digest, Sha256};
use std::task::{Context, Poll};
use wasmtime::Store;
use wasmtime::component::{Component, Instance, Lift, WasmList};
use wasmtime_wizer::Wizer;

/// The engine component, or empty when this binary was built without the toolchain it
/// needs (clang and wasi-libc; see the README).
static ENGINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/js_engine.wasm"));

/// Largest script accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 4 << 20;

/// What the Lambda `context` object of a script shows.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptSettings {
    /// `context.functionName`.
    pub function_name: String,
    /// `context.functionVersion`.
    pub function_version: String,
    /// `context.invokedFunctionArn`.
    pub invoked_function_arn: String,
    /// `context.memoryLimitInMB`.
    #[serde(rename = "memoryLimitInMB")]
    pub memory_limit_in_mb: String,
    /// What `context.getRemainingTimeInMillis()` answers (the clock is frozen).
    pub deadline_ms: u64,
    /// The function version's own environment variables, in `process.env` beside the ones
    /// Lambda sets (checked by [`check_environment`]).
    pub environment: std::collections::BTreeMap<String, String>,
}

/// The most bytes of environment variables (names and values) one version may have, as
/// on Lambda.
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;

/// Names Lambda sets itself and refuses in a function's configuration.
pub const RESERVED_ENVIRONMENT: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// Lambda's rules for a function's environment variables: names match
/// `[a-zA-Z]([a-zA-Z0-9_])+`, none is reserved, at most 4 KB in all. The message says
/// which rule a variable breaks.
pub fn check_environment(environment: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    for name in environment.keys() {
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.len() >= 2
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(format!(
                "environment variable name {name:?} must match [a-zA-Z]([a-zA-Z0-9_])+ (a letter, then letters, digits or _)"
            ));
        }
        if RESERVED_ENVIRONMENT.contains(&name.as_str()) {
            return Err(format!("environment variable {name} is reserved: the runtime sets it"));
        }
    }
    let size: usize = environment.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ENVIRONMENT_BYTES {
        return Err(format!(
            "the environment variables are {size} bytes, over the limit of {MAX_ENVIRONMENT_BYTES} (names and values)"
        ));
    }
    Ok(())
}

/// A script made into a trigger component.
#[derive(Debug)]
pub struct PreparedScript {
    /// The pre-initialised component.
    pub component: Vec<u8>,
    /// What the script's top level logged.
    pub log: String,
}

impl PreparedScript {
    /// As kept in the cache: the log's length, the log, the component.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.log.len() + self.component.len());
        out.extend_from_slice(&(self.log.len() as u64).to_le_bytes());
        out.extend_from_slice(self.log.as_bytes());
        out.extend_from_slice(&self.component);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        let (log, component) = rest.split_at_checked(usize::try_from(u64::from_le_bytes(*len)).ok()?)?;
        Some(PreparedScript { component: component.to_vec(), log: String::from_utf8(log.to_vec()).ok()? })
    }
}

/// A function's code as its author hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    /// A trigger component (`.wasm`).
    Component(Vec<u8>),
    /// A JavaScript Sync Trigger: the source of its module and the export that handles events.
    Script {
        /// The script (`index.js`).
        source: String,
        /// The handler's export name (`handler` of `index.handler`).
        export: String,
    },
}

/// The export a Lambda handler setting (`<module>.<export>`, e.g. `index.handler`) names,
/// and its module.
pub fn parse_handler(handler: &str) -> Result<(&str, &str), Error> {
    handler
        .rsplit_once('.')
        .filter(|(module, export)| {
            !module.is_empty()
                && !export.is_empty()
                && export.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                && !module.contains(['/', '\\'])
        })
        .ok_or_else(|| {
            Error::InvalidComponent(format!("handler {handler:?} is not <module>.<export>, e.g. index.handler"))
        })
}

impl Code {
    /// A script from its bytes: at most [`MAX_SCRIPT_BYTES`] of UTF-8, whose `export` of
    /// `module.exports` is the handler.
    pub fn script(bytes: Vec<u8>, export: &str) -> Result<Code, Error> {
        Ok(Code::Script { source: script_text(bytes)?, export: export.to_owned() })
    }
}

fn script_text(bytes: Vec<u8>) -> Result<String, Error> {
    if bytes.len() > MAX_SCRIPT_BYTES {
        return Err(refused(format!("it is {} bytes, over the limit of {MAX_SCRIPT_BYTES}", bytes.len())));
    }
    String::from_utf8(bytes).map_err(|e| refused(format!("it is not UTF-8 ({e})")))
}

fn refused(message: impl std::fmt::Display) -> Error {
    Error::InvalidComponent(format!("the script cannot be deployed: {message}"))
}

impl Runtime {
    /// Makes a trigger component of a JavaScript Sync Trigger: `source` is the script
    /// (`index.js`), `handler` its handler (`index.handler`).
    pub fn prepare_script(
        &self,
        source: &str,
        export: &str,
        settings: &ScriptSettings,
    ) -> Result<PreparedScript, Error> {
        if source.len() > MAX_SCRIPT_BYTES {
            return Err(refused(format!("it is {} bytes, over the limit of {MAX_SCRIPT_BYTES}", source.len())));
        }
        check_environment(&settings.environment).map_err(refused)?;
        let settings = serde_json::to_string(settings).map_err(|e| Error::Internal(e.to_string()))?;
        // The snapshot depends only on the engine, the script, its handler and settings:
        // kept by their digest, so deploying or running the same script again skips Wizer.
        let key = {
            let mut h = Sha256::new();
            for part in [ENGINE, export.as_bytes(), settings.as_bytes(), source.as_bytes()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            format!("script-{}", hex::encode(h.finalize()))
        };
        if let Some(prepared) =
            self.cache.as_ref().and_then(|c| c.get_blob(&key)).and_then(|b| PreparedScript::decode(&b))
        {
            return Ok(prepared);
        }
        let prepared = self.snapshot_script(source, export, &settings)?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.put_blob(&key, &prepared.encode())
        {
            tracing::warn!("cannot write the script cache: {e}");
        }
        Ok(prepared)
    }

    fn snapshot_script(&self, source: &str, export: &str, settings: &str) -> Result<PreparedScript, Error> {
        // The script's top level runs, and Wizer reads the instance back, in wasm.
        super::with_wasm_stack(&self.config.limits, || self.snapshot_on_stack(source, export, settings))
    }

    fn snapshot_on_stack(&self, source: &str, export: &str, settings: &str) -> Result<PreparedScript, Error> {
        let mut wizer = Wizer::new();
        // Kept: wasmtime-wizer 48 drops the export but not the alias that lifts it, which
        // leaves an invalid component. Nothing calls it after the snapshot.
        wizer.init_func("init-script").keep_init_func(true);
        let (cx, instrumented) = guarded(|| wizer.instrument_component(ENGINE))?;
        let component = self.trusted_component(&instrumented)?;

        let mut store = self.new_store(true, super::Entropy::fresh())?;
        let instance = self
            .linker
            .instantiate(&mut store, &component)
            .map_err(|e| classify(e, Phase::Instantiate, store.data(), &self.config.limits))?;
        let init = instance
            .get_typed_func::<(&str, &str, &str), (Result<(), String>,)>(&mut store, "init-script")
            .map_err(|e| Error::Internal(format!("the engine has no init-script: {e:#}")))?;
        let handler = format!("index.{export}");
        let outcome = init.call(&mut store, (source, &handler, settings));
        let log = store.data().log.contents();
        match outcome {
            Ok((Ok(()),)) => {}
            Ok((Err(message),)) => return Err(refused(message)),
            Err(e) => {
                let cause = classify(e, Phase::Call, store.data(), &self.config.limits);
                return Err(refused(format!("its top level failed: {cause}")));
            }
        }
        if !store.data().resources_empty() {
            return Err(refused("its top level left host resources open (a snapshot cannot keep them)"));
        }
        // Reading the state back is the host's work: it gets fuel and time of its own.
        if self.config.limits.fuel.is_some() {
            store.set_fuel(u64::MAX / 2).map_err(|e| Error::Internal(e.to_string()))?;
        }
        store.set_epoch_deadline(u64::MAX / 2);
        let mut access = StateAccess { store: &mut store, instance, failed: None };
        let snapshot = guarded(|| block_on(wizer.snapshot_component(&cx, &mut access)));
        if let Some(e) = access.failed {
            return Err(Error::Internal(format!("cannot read the initialised engine's state: {e}")));
        }
        Ok(PreparedScript { component: snapshot?, log })
    }

    /// A component this program built (the instrumented engine): compiled in this process
    /// and kept in the artifact cache, so only the first deploy after an upgrade compiles it.
    fn trusted_component(&self, bytes: &[u8]) -> Result<Component, Error> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(cache) = &self.cache
            && let Ok(Some((component, _))) = cache.get(&self.engine, &digest)
        {
            return Ok(component);
        }
        let artifact = self.engine.precompile_component(bytes).map_err(|e| Error::Internal(format!("{e:#}")))?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.put(&digest, &artifact)
        {
            tracing::warn!("cannot write artifact cache: {e}");
        }
        // SAFETY: produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(|e| Error::Internal(format!("{e:#}")))
    }
}

/// Runs a step of Wizer, turning an error or a panic (it asserts its own output) into an
/// internal error rather than the end of the deploying process.
fn guarded<T>(step: impl FnOnce() -> wasmtime::Result<T>) -> Result<T, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(Error::Internal(format!("pre-initialising the script failed: {e:#}"))),
        Err(_) => Err(Error::Internal("pre-initialising the script failed (Wizer panicked)".into())),
    }
}

/// Polls a future that never waits (every call below is synchronous) to its end.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Wizer's view of the initialised instance: it calls the accessor functions its
/// instrumentation exported, on our own store (synchronously, so wasmtime needs no async
/// support).
struct StateAccess<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
    failed: Option<String>,
}

impl StateAccess<'_> {
    fn call<R: Lift + 'static, T>(
        &mut self,
        instance: &str,
        func: &str,
        use_ret: impl FnOnce(&Store<HostState>, R) -> T,
    ) -> Option<T> {
        let result = (|| -> wasmtime::Result<T> {
            let (_, outer) = self
                .instance
                .get_export(&mut *self.store, None, instance)
                .ok_or_else(|| wasmtime::format_err!("no export {instance}"))?;
            let (_, inner) = self
                .instance
                .get_export(&mut *self.store, Some(&outer), func)
                .ok_or_else(|| wasmtime::format_err!("no export {instance}#{func}"))?;
            let typed = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, inner)?;
            let (ret,) = typed.call(&mut *self.store, ())?;
            Ok(use_ret(self.store, ret))
        })();
        match result {
            Ok(out) => Some(out),
            Err(e) => {
                self.failed.get_or_insert_with(|| format!("{instance}#{func}: {e:#}"));
                None
            }
        }
    }
}

impl wasmtime_wizer::ComponentInstanceState for StateAccess<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        self.call(instance, func, |store, list: WasmList<u8>| contents(list.as_le_slice(store)));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).unwrap_or_default()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn environment_follows_lambdas_rules() {
        assert!(check_environment(&env(&[("TABLE", "scores"), ("max_level_2", ""), ("TZ", "Europe/Paris")])).is_ok());
        for bad in ["", "A", "1ABC", "_X", "A-B", "A B", "ÄB"] {
            let e = check_environment(&env(&[(bad, "v")])).unwrap_err();
            assert!(e.contains("must match"), "{bad:?}: {e}");
        }
        let e = check_environment(&env(&[("AWS_REGION", "eu-west-1")])).unwrap_err();
        assert!(e.contains("AWS_REGION is reserved"), "{e}");
        let big = "x".repeat(MAX_ENVIRONMENT_BYTES - 2);
        assert!(check_environment(&env(&[("AB", &big)])).is_ok());
        let e = check_environment(&env(&[("ABC", &big)])).unwrap_err();
        assert!(e.contains("4097 bytes, over the limit of 4096"), "{e}");
    }
}
