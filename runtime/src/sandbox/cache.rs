//! An on-disk cache of precompiled components, so a restart skips Cranelift.
//!
//! `Component::deserialize` trusts its input completely, so an artifact is loaded only
//! if this installation wrote it: the file name is the SHA-256 of the component plus a
//! hash of the engine's compatibility settings, and the file ends with an HMAC-SHA256
//! tag under a key that lives (0600) in the cache directory and never leaves it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const TAG_LEN: usize = 32;
const KEY_FILE: &str = "artifact.key";

/// The artifact cache of one engine.
pub struct ArtifactCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash is stable
/// across runs (std's hashers make no such promise).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// Opens (creating if needed) the cache in `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        // Private wherever it lives (`--cache-dir` may point outside the data dir).
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ArtifactCache { dir: dir.to_owned(), key, engine_hash })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_hash))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key size")
    }

    /// The cached component for `digest` and its artifact's size: `Ok(None)` when there is
    /// none this installation wrote, `Err` when it wrote one that does not load.
    pub fn get(&self, engine: &Engine, digest: &str) -> Result<Option<(Component, usize)>, String> {
        let Ok(bytes) = std::fs::read(self.path(digest)) else { return Ok(None) };
        let Some((artifact, tag)) = bytes.len().checked_sub(TAG_LEN).and_then(|at| bytes.split_at_checked(at)) else {
            return Ok(None);
        };
        let mut mac = self.mac();
        mac.update(digest.as_bytes());
        mac.update(artifact);
        if mac.verify_slice(tag).is_err() {
            return Ok(None);
        }
        // SAFETY: the tag proves this installation wrote these bytes with
        // `Engine::precompile_component` for this digest, and the file name pins the
        // engine's compatibility hash; wasmtime checks the header again.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Ok(Some((component, artifact.len()))),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    /// Forgets the artifact for `digest`.
    pub fn remove(&self, digest: &str) {
        let _ = std::fs::remove_file(self.path(digest));
    }

    /// Stores a precompiled artifact for `digest`; failures only cost a recompile later.
    pub fn put(&self, digest: &str, artifact: &[u8]) -> std::io::Result<()> {
        let mut mac = self.mac();
        mac.update(digest.as_bytes());
        mac.update(artifact);
        self.write_tagged(&self.path(digest), artifact, &mac.finalize().into_bytes())
    }
}

impl ArtifactCache {
    fn blob_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.blob"))
    }

    /// Bytes stored under `name` by [`put_blob`](Self::put_blob) of this installation.
    pub fn get_blob(&self, name: &str) -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(self.blob_path(name)).ok()?;
        let at = bytes.len().checked_sub(TAG_LEN)?;
        let mut mac = self.mac();
        mac.update(b"blob:");
        mac.update(name.as_bytes());
        mac.update(&bytes[..at]);
        mac.verify_slice(&bytes[at..]).ok()?;
        bytes.truncate(at);
        Some(bytes)
    }

    /// Stores bytes under `name` (a digest); failures only cost the work again later.
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut mac = self.mac();
        mac.update(b"blob:");
        mac.update(name.as_bytes());
        mac.update(bytes);
        self.write_tagged(&self.blob_path(name), bytes, &mac.finalize().into_bytes())
    }

    fn write_tagged(&self, path: &Path, bytes: &[u8], tag: &[u8]) -> std::io::Result<()> {
        let tmp = temporary(path);
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?
        };
        file.write_all(bytes)?;
        file.write_all(tag)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// A temporary name beside `path`, unique to this write (threads and processes may write
/// the same file at once; each renames its own into place).
fn temporary(path: &Path) -> PathBuf {
    let mut nonce = [0u8; 8];
    let _ = getrandom::fill(&mut nonce);
    path.with_extension(format!("tmp{}-{}", std::process::id(), hex::encode(nonce)))
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = temporary(path);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
    }
    // Two processes racing both write a key; the last rename wins and both re-read it.
    std::fs::rename(&tmp, path)?;
    let bytes = std::fs::read(path)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| std::io::Error::other("artifact key file is corrupt"))
}
