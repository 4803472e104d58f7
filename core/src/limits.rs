//! The service's limits: on datasets and records (the published Cognito quotas), and on
//! what a trigger component may be and may cost to load.

/// Most records a dataset may hold.
pub const MAX_RECORDS: usize = 1024;
/// Most bytes a dataset may hold, counted as UTF-8 bytes of keys plus values.
pub const MAX_DATASET_BYTES: usize = 1024 * 1024;
/// Longest record key, in characters.
pub const MAX_KEY_CHARS: usize = 1024;
/// Longest record value, in characters.
pub const MAX_VALUE_CHARS: usize = 1_048_575;
/// Most datasets an identity may have.
pub const MAX_DATASETS_PER_IDENTITY: usize = 20;
/// Longest dataset name, in characters.
pub const MAX_DATASET_NAME_CHARS: usize = 128;

/// Most functions a tenant may have.
pub const MAX_FUNCTIONS_PER_TENANT: usize = 100;
/// Most versions a function may have (each keeps its component).
pub const MAX_VERSIONS_PER_FUNCTION: usize = 1000;

/// Largest trigger component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// What a trigger component may contain: checked on its bytes, in the compile worker,
/// before anything is compiled, so that obvious compile bombs are refused in milliseconds.
/// Trigger components built with the guest SDK or the JavaScript engine use a small
/// fraction of each.
pub mod component {
    /// Deepest nesting of modules and components inside a component.
    pub const MAX_NESTING: usize = 16;
    /// Deepest nesting of component and instance types inside a type definition.
    pub const MAX_TYPE_NESTING: usize = 32;
    /// Most core module instances the component creates, nested instantiations flattened
    /// (as wasmtime flattens them); also the sandbox's per-invocation instance limit.
    pub const MAX_CORE_INSTANCES: usize = 16;
    /// Most component instantiations, nested ones flattened.
    pub const MAX_COMPONENT_INSTANCES: usize = 16;
    /// Most functions with bodies, over all modules.
    pub const MAX_FUNCTIONS: usize = 30_000;
    /// Largest function body, in bytes.
    pub const MAX_FUNCTION_BYTES: usize = 1 << 20;
    /// Most locals of one function.
    pub const MAX_LOCALS: usize = 16_384;
    /// Deepest nesting of blocks, loops and ifs in one function.
    pub const MAX_CONTROL_DEPTH: usize = 10_000;
    /// Most linear memories of one module (the pooling allocator's slot holds one).
    pub const MAX_MEMORIES_PER_MODULE: usize = 1;
    /// Most tables of one module (the pooling allocator's slot holds one).
    pub const MAX_TABLES_PER_MODULE: usize = 1;
}

/// What compiling one component may cost. Compilation runs in a child process
/// (`synctrig-wasm compile`, hidden) under these OS limits, so a compile bomb, a parser
/// stack overflow or a compiler bug ends that process, not the server.
pub mod compile {
    use std::time::Duration;
    /// CPU time (all compiler threads together).
    pub const MAX_CPU: Duration = Duration::from_secs(10);
    /// Wall time, after which the worker is killed (the CPU limit usually ends it first).
    pub const MAX_WALL: Duration = Duration::from_secs(30);
    /// Address space of the worker process.
    pub const MAX_MEMORY_BYTES: u64 = 2 << 30;
    /// Threads that compile functions at once. Fixed, not one per core: each holds one
    /// function's compile state (about 300 MB for a function of the register-allocator bomb),
    /// so with one per core a component that compiles under [`MAX_MEMORY_BYTES`] on two cores
    /// would be refused on eight.
    pub const THREADS: usize = 2;
    /// Stack of the worker's thread that parses and validates, and of each compiler thread.
    pub const STACK_BYTES: usize = 64 << 20;
    /// Largest compiled artifact the worker may hand back.
    pub const MAX_ARTIFACT_BYTES: usize = 256 << 20;
}

/// Why a key, value or name breaks a limit; `None` when it is fine.
pub fn key_problem(key: &str) -> Option<String> {
    if key.contains('\0') {
        return Some(format!("record key {key:?} contains U+0000 (NUL), which no store keeps"));
    }
    // Every char is at least one byte, so a short key needs no count.
    if !key.is_empty() && key.len() <= MAX_KEY_CHARS {
        return None;
    }
    let n = key.chars().count();
    if n == 0 {
        Some("record key is empty".into())
    } else if n > MAX_KEY_CHARS {
        Some(format!("record key is {n} characters, over the limit of {MAX_KEY_CHARS}"))
    } else {
        None
    }
}

/// Why a record value breaks a limit; `None` when it is fine.
pub fn value_problem(key: &str, value: &str) -> Option<String> {
    // PostgreSQL's text cannot hold it; refused on SQLite too, so that every dataset can
    // move between the backends.
    if value.contains('\0') {
        return Some(format!("value of record {key:?} contains U+0000 (NUL), which no store keeps"));
    }
    // Every char is at least one byte, so short values need no count.
    if value.len() <= MAX_VALUE_CHARS {
        return None;
    }
    let n = value.chars().count();
    (n > MAX_VALUE_CHARS)
        .then(|| format!("value of record {key:?} is {n} characters, over the limit of {MAX_VALUE_CHARS}"))
}

/// Why a dataset name is invalid; `None` when it is fine.
pub fn dataset_name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_DATASET_NAME_CHARS {
        return Some(format!("DatasetName must be 1 to {MAX_DATASET_NAME_CHARS} characters"));
    }
    name_chars_problem(name)
}

fn name_chars_problem(name: &str) -> Option<String> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c)) {
        return Some(format!("DatasetName {name:?} may contain only a-z, A-Z, 0-9, '_', '.', ':' and '-'"));
    }
    None
}

/// Whether `id` has the form of an identity or identity pool id: `region:hex-uuid`, 1–55 chars.
pub fn is_valid_cognito_id(id: &str) -> bool {
    let Some((region, uuid)) = id.split_once(':') else { return false };
    (1..=55).contains(&id.len())
        && !region.is_empty()
        && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !uuid.is_empty()
        && uuid.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f' | '-'))
}

/// Why a region name is unusable (it is the first part of every pool and identity id);
/// `None` when it is fine: 2 to 18 of `a-z`, `0-9` and `-`, starting with a letter and
/// ending with a digit, e.g. `us-east-1`.
pub fn region_problem(region: &str) -> Option<String> {
    let ok = (2..=18).contains(&region.len())
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region.ends_with(|c: char| c.is_ascii_digit())
        && !region.contains("--");
    (!ok).then(|| {
        format!(
            "region {region:?} is not a region name like us-east-1 (2 to 18 of a-z, 0-9 and '-', ending with a digit)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for good in ["us-east-1", "eu-west-3", "us-gov-west-1", "cn-north-1", "local1"] {
            assert_eq!(region_problem(good), None, "{good}");
            assert!(is_valid_cognito_id(&format!("{good}:6f1c2a3b-0000-4000-8000-0123456789ab")));
        }
        for bad in ["", "bad/region", "US-EAST-1", "us-east", "-us-1", "us--east-1", "a-very-long-region-name-1"] {
            assert!(region_problem(bad).is_some(), "{bad}");
        }
    }
}
