//! The allocator of a trigger exported with [`trigger!`](crate::trigger): a bump arena
//! first, then the system allocator.
//!
//! Every invocation runs in a fresh instance whose memory is thrown away afterwards, and a
//! trigger's allocations are mostly the event's strings, which all live until the call
//! returns. So the first [`ARENA_BYTES`] are handed out by bumping a pointer and never
//! reused (freeing the latest allocation gives it back); beyond them, and for anything
//! that does not fit, the system allocator (wasi-libc's `malloc`) takes over and frees
//! as usual, so a trigger that churns through memory is bounded as before.
//!
//! What the host hands back from a WASI call is allocated through `cabi_import_realloc`,
//! which [`trigger!`](crate::trigger) exports and which always uses the system allocator:
//! wasi-libc frees the lists it receives with `free`, which must never see the arena.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes served from the arena before the system allocator takes over.
pub const ARENA_BYTES: usize = 16 << 10;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: only `Allocator` touches the bytes, handing out disjoint ranges.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
/// Offset of the arena's first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The bump-then-system allocator; [`trigger!`](crate::trigger) installs it.
pub struct Allocator;

fn base() -> usize {
    ARENA.0.get() as usize
}

fn in_arena(ptr: *mut u8) -> bool {
    (base()..base() + ARENA_BYTES).contains(&(ptr as usize))
}

impl Allocator {
    /// A range of the arena for `layout`, if it still fits.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let start = (base() + NEXT.load(Relaxed)).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > base() + ARENA_BYTES {
            return None;
        }
        NEXT.store(end - base(), Relaxed);
        Some(start as *mut u8)
    }

    /// Whether `ptr..ptr + size` is the arena's latest allocation.
    fn is_latest(ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == base() + NEXT.load(Relaxed)
    }
}

// SAFETY: arena ranges are disjoint and aligned as asked; everything else is `System`'s.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !in_arena(ptr) {
            // SAFETY: not the arena's, so `System` allocated it with `layout`.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if Self::is_latest(ptr, layout.size()) {
            NEXT.store(ptr as usize - base(), Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !in_arena(ptr) {
            // SAFETY: not the arena's, so `System` allocated it with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if Self::is_latest(ptr, layout.size()) && new_size <= base() + ARENA_BYTES - ptr as usize {
            NEXT.store(ptr as usize + new_size - base(), Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (it exceeds the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are valid for the old size and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}

/// The canonical ABI's `realloc` for what imports return (see the module's comment).
///
/// # Safety
///
/// The canonical ABI's contract for `realloc`: `old` is null with `old_len` 0, or a block
/// of `old_len` bytes aligned to `align` that this function returned.
pub unsafe fn import_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    if new_len == 0 {
        // A zero-length list is never read or freed: any aligned address will do.
        return align as *mut u8;
    }
    let Ok(new_layout) = Layout::from_size_align(new_len, align) else { std::process::abort() };
    // SAFETY: the caller's contract; a non-zero size.
    let new = unsafe {
        if old_len == 0 {
            System.alloc(new_layout)
        } else {
            System.realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if new.is_null() {
        std::alloc::handle_alloc_error(new_layout);
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the arena is a process-wide static.
    #[test]
    fn bumps_gives_back_the_latest_and_falls_back_to_the_system() {
        let a = Allocator;
        let layout = |size, align| Layout::from_size_align(size, align).unwrap();
        unsafe {
            let wide = a.alloc(layout(1, 256));
            assert!(in_arena(wide) && (wide as usize).is_multiple_of(256), "aligned beyond the arena's own alignment");
            let p1 = a.alloc(layout(3, 1));
            let p2 = a.alloc(layout(8, 8));
            assert!(in_arena(p1) && in_arena(p2));
            assert_eq!(p2 as usize % 8, 0, "aligned");
            assert!(p2 as usize >= p1 as usize + 3, "disjoint");
            // The latest allocation grows in place, and freeing it gives its bytes back.
            p2.write_bytes(7, 8);
            assert_eq!(a.realloc(p2, layout(8, 8), 64), p2);
            a.dealloc(p2, layout(64, 8));
            assert_eq!(a.alloc(layout(8, 8)), p2);
            // An allocation that is not the latest moves when it grows, keeping its bytes.
            p1.copy_from_nonoverlapping(b"abc".as_ptr(), 3);
            let moved = a.realloc(p1, layout(3, 1), 10);
            assert_ne!(moved, p1);
            assert_eq!(std::slice::from_raw_parts(moved, 3), b"abc");
            // Beyond the arena: the system's, which grows and frees as usual.
            let big = a.alloc(layout(ARENA_BYTES, 16));
            assert!(!big.is_null() && !in_arena(big));
            big.write_bytes(1, ARENA_BYTES);
            let bigger = a.realloc(big, layout(ARENA_BYTES, 16), 2 * ARENA_BYTES);
            assert!(!in_arena(bigger) && *bigger.add(ARENA_BYTES - 1) == 1);
            a.dealloc(bigger, layout(2 * ARENA_BYTES, 16));
            // An arena allocation that outgrows the arena moves to the system's.
            let last = a.alloc(layout(16, 1));
            assert!(in_arena(last));
            last.write_bytes(9, 16);
            let out = a.realloc(last, layout(16, 1), ARENA_BYTES);
            assert!(!in_arena(out) && *out.add(15) == 9);
            a.dealloc(out, layout(ARENA_BYTES, 1));
            // Filled up: the rest comes from the system.
            while in_arena(a.alloc(layout(1024, 1))) {}
            while in_arena(a.alloc(layout(1, 1))) {}
            let after = a.alloc(layout(1, 1));
            assert!(!after.is_null() && !in_arena(after));
            a.dealloc(after, layout(1, 1));
        }
    }
}
