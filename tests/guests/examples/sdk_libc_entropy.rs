//! Test guest, built with the guest SDK (so with its arena allocator): draws randomness
//! through wasi-libc's `getentropy`, which receives the host's bytes in memory allocated
//! for the import and frees it with `free`, between allocations of its own.

use synctrig_guest::{Rejection, SyncEvent};

unsafe extern "C" {
    fn getentropy(buf: *mut u8, len: usize) -> i32;
}

pub fn handle(mut event: SyncEvent) -> Result<SyncEvent, Rejection> {
    let mut kept = Vec::new();
    for round in 0..200 {
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is writable for its length (at most 256 bytes, getentropy's cap).
        if unsafe { getentropy(buf.as_mut_ptr(), buf.len()) } != 0 {
            return Err(Rejection::new("getentropy failed"));
        }
        kept.push(format!("{round}:{:02x}{:02x}", buf[0], buf[63]));
    }
    let digest: usize = kept.iter().map(|s| s.len()).sum();
    event.add("entropy", digest.to_string());
    Ok(event)
}

synctrig_guest::trigger!(handle);
