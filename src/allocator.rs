//! The allocator's settings, made once at start-up.
//!
//! glibc serves a large allocation with its own `mmap` and unmaps it on `free`, but only below a
//! threshold that, by default, follows the largest block freed so far (up to 32 MiB). A password
//! hash takes 19 MiB (argon2id at OWASP's parameters) and a decoded photo tens of MiB: once one
//! is freed, every later block of that size comes from the heap arenas instead, and glibc keeps
//! one arena per thread that ever allocated, never trimming them back. Measured on the debug
//! binary: 24 sign-ups, 8 at a time, left the server at 392 MB resident (from 38 MB). A fixed
//! threshold keeps such blocks mapped on their own, so each goes back to the kernel when freed.

/// Blocks from this size up are mapped on their own: far above every per-request buffer (read
/// chunks are 256 KiB), far below a password hash or a decoded image.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Free memory at the top of a heap is given back only past this much. Fixing the mmap
/// threshold also freezes this one at its 128 KiB default, below one 256 KiB read chunk: every
/// freed chunk would then be trimmed and faulted back in by the next (measured: whole-file
/// HTTP/1.1 reads at half speed). Twice the mmap threshold is glibc's own dynamic rule.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 2 * MMAP_THRESHOLD;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] and its trim threshold at
/// [`TRIM_THRESHOLD`] (which stops their dynamic growth). Idempotent; a no-op off glibc.
pub(crate) fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; glibc takes its own lock, so
            // this is sound while other threads allocate, and the value is in mallopt's range.
            #[allow(unsafe_code)]
            let accepted = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    & libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            };
            if accepted != 1 {
                tracing::warn!("glibc refused the malloc thresholds; large blocks may stay in the heap");
            }
        });
    }
}
