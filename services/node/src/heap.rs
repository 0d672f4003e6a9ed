//! How the node asks glibc's allocator to keep its resident memory near what it uses.
//!
//! A node runs on a hospital server beside other services, with a memory budget (200 MB at a
//! million events). Two glibc defaults work against that budget: one heap arena per thread that
//! ever allocates (up to eight per core), each keeping what it freed, and heap freed in bulk
//! (sled's recovery of a large store) staying resident. Neither is a leak; both are memory the
//! node no longer uses. Elsewhere than glibc both functions do nothing.

/// Heap arenas a node process may use: enough for the async workers and sled's threads not to
/// contend much, few enough that freed memory is shared instead of stranded per thread.
const MAX_ARENAS: i32 = 2;

/// Limits glibc's heap arenas. Call before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS);
    }
}

/// Hands heap that has been freed back to the operating system (e.g. after opening a large
/// store, whose recovery allocates and frees tens of megabytes).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
