//! A global allocator for programs that send fds with this crate (the Node.js
//! addon installs it): the system allocator, except that a small zeroed
//! allocation is made as an allocation plus a clear instead of a `calloc`.
//!
//! Why: nix's `sendmsg` builds its control buffer with `vec![0u8; n]`, a
//! zeroed allocation, on every send that carries fds. glibc before 2.41 serves
//! `calloc` without its per-thread cache, so each send paid for a trip through
//! the arena (about 270 instructions with the matching free, measured with
//! callgrind on glibc 2.36); `malloc` takes a cached chunk, and clearing a few
//! dozen bytes costs next to nothing. Large zeroed allocations still go to
//! `calloc`, which can hand out pages the kernel already zeroed.

use std::alloc::{GlobalAlloc, Layout, System};

/// Zeroed allocations up to this size are allocated, then cleared.
const SMALL_ZEROED: usize = 4096;

/// The allocator; install it with `#[global_allocator]`.
#[derive(Debug)]
pub struct Allocator;

// SAFETY: every method forwards to `System` with the caller's own arguments,
// so `System`'s guarantees carry over; `alloc_zeroed` clears exactly the
// `layout.size()` bytes that `System.alloc` just returned for that layout.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > SMALL_ZEROED {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: forwarded with the caller's guarantees; on success the block
        // is valid for writes of layout.size() bytes.
        unsafe {
            // black_box: LLVM would otherwise fold malloc + clear back into
            // the very calloc this avoids.
            let block = std::hint::black_box(System.alloc(layout));
            if !block.is_null() {
                block.write_bytes(0, layout.size());
            }
            block
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator, i.e. from System, with `layout`.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as dealloc, and the caller guarantees `new_size` is valid.
        unsafe { System.realloc(block, layout, new_size) }
    }
}
