//! CPU time of the calling thread, so a round reports what it cost the node apart from waiting
//! (for the store's flush, for the network). A round's computing part runs on one thread
//! without yielding, so the thread's clock measures exactly that part.

use std::time::Duration;

/// CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// A stopwatch on the calling thread's CPU clock.
#[derive(Debug, Clone, Copy)]
pub struct CpuStopwatch(Duration);

impl CpuStopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(thread_cpu())
    }

    /// CPU time since the start, in microseconds.
    pub fn micros(&self) -> u64 {
        thread_cpu().saturating_sub(self.0).as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_work_not_sleep() {
        let watch = CpuStopwatch::start();
        std::thread::sleep(Duration::from_millis(30));
        let slept = watch.micros();
        let mut x = 0u64;
        let busy = CpuStopwatch::start();
        while busy.micros() < 20_000 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(slept < 10_000, "sleeping cost {slept} µs of CPU");
        assert!(busy.micros() >= 20_000, "{x}");
    }
}
