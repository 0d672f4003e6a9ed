//! The breaker: stop calling a node that keeps failing, and probe it again with backoff.
//!
//! A dead or frozen node would otherwise cost every benchmark a full deadline and a connection
//! attempt. After `failures` consecutive failures the breaker opens: calls fail at once with
//! [`BreakerOpen`], which names the last failure. When the backoff has passed, one call goes
//! through as a probe; if it succeeds the breaker closes, otherwise the backoff doubles (up to a
//! ceiling). A call dropped unfinished after running for most of the node deadline (the deadline
//! above it fired) counts as a failure, so a frozen node trips the breaker just like a refused
//! connection; one dropped early (the benchmark's caller went away) does not count.

use psonet_serve::diagnose::diagnose;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{BoxError, Layer, Service};

/// When a breaker opens and how it backs off.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// Wait before the first probe.
    pub backoff: Duration,
    /// Longest wait between probes.
    pub max_backoff: Duration,
    /// The node deadline: a call abandoned after 4/5 of it counts as unanswered.
    pub deadline: Duration,
}

/// What a breaker is doing, for coverage details and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the next probe.
    Open,
    /// One probe is in flight; other calls fail at once.
    HalfOpen,
}

impl BreakerState {
    /// Lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The call was not sent: the node's breaker is open.
#[derive(Debug, thiserror::Error)]
#[error(
    "not asked: the last {failures} calls failed (last: {last_failure}); next probe in {} ms",
    next_probe_in.as_millis()
)]
pub struct BreakerOpen {
    /// Consecutive failures so far.
    pub failures: u32,
    /// The most recent failure, in words.
    pub last_failure: String,
    /// Time until the next probe may be sent.
    pub next_probe_in: Duration,
}

#[derive(Debug)]
struct Shared {
    state: BreakerState,
    consecutive_failures: u32,
    backoff: Duration,
    next_probe: Instant,
    last_failure: String,
}

/// A node's breaker; clones share it, so every call to the node sees the same state.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    shared: Arc<Mutex<Shared>>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        let shared = Shared {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            backoff: policy.backoff,
            next_probe: Instant::now(),
            last_failure: String::new(),
        };
        Self {
            policy,
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call through, or says why not. A call let through while open is the probe.
    fn admit(&self) -> Result<(), BreakerOpen> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open if now >= s.next_probe => {
                s.state = BreakerState::HalfOpen;
                tracing::info!("breaker half-open: probing the node");
                Ok(())
            }
            BreakerState::Open | BreakerState::HalfOpen => Err(BreakerOpen {
                failures: s.consecutive_failures,
                last_failure: s.last_failure.clone(),
                next_probe_in: s.next_probe.saturating_duration_since(now),
            }),
        }
    }

    fn record_success(&self) {
        let mut s = self.lock();
        if s.state != BreakerState::Closed {
            tracing::info!("breaker closed: the node answers again");
        }
        s.state = BreakerState::Closed;
        s.consecutive_failures = 0;
        s.backoff = self.policy.backoff;
    }

    /// A call given up early by its caller says nothing about the node; if it was the probe,
    /// the next call probes instead.
    fn record_abandoned(&self) {
        let mut s = self.lock();
        if s.state == BreakerState::HalfOpen {
            s.state = BreakerState::Open;
            s.next_probe = Instant::now();
        }
    }

    fn record_timeout(&self) {
        let ms = self.policy.deadline.as_millis();
        self.record_failure(format!("did not answer within {ms} ms"));
    }

    fn record_failure(&self, why: String) {
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.last_failure = why;
        let trips = match s.state {
            BreakerState::Closed => s.consecutive_failures >= self.policy.failures,
            BreakerState::HalfOpen => {
                s.backoff = (s.backoff * 2).min(self.policy.max_backoff);
                true
            }
            BreakerState::Open => false,
        };
        if trips {
            s.state = BreakerState::Open;
            s.next_probe = Instant::now() + s.backoff;
            tracing::warn!(
                failures = s.consecutive_failures,
                backoff_ms = s.backoff.as_millis() as u64,
                last_failure = %s.last_failure,
                "breaker open"
            );
        }
    }
}

/// Whether a failed call says the node is unhealthy (as opposed to a refusal it answered).
pub trait Trips {
    /// `Some(reason)` when the failure should count against the node.
    fn trips(&self) -> Option<String>;
    /// Whether the call ran out of time (reported like a call dropped at the deadline).
    fn timed_out(&self) -> bool;
}

impl Trips for tonic::Status {
    fn trips(&self) -> Option<String> {
        use tonic::Code::*;
        match self.code() {
            Unavailable | DeadlineExceeded | Cancelled | Unknown | Internal => {
                Some(diagnose(self, "the node").explanation().to_string())
            }
            _ => None,
        }
    }

    fn timed_out(&self) -> bool {
        ran_out_of_time(self)
    }
}

/// Whether a failed call ran out of time: the node said so, or the channel's own timer
/// fired. A call cancelled because its connection dropped did not.
pub fn ran_out_of_time(status: &tonic::Status) -> bool {
    if status.code() == tonic::Code::DeadlineExceeded {
        return true;
    }
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Wraps a node's service in its breaker.
#[derive(Clone)]
pub struct BreakerLayer {
    breaker: Breaker,
}

impl BreakerLayer {
    /// The layer for `breaker` (kept by the registry to read its state).
    pub fn new(breaker: Breaker) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

/// A service behind a breaker.
#[derive(Clone)]
pub struct BreakerService<S> {
    inner: S,
    breaker: Breaker,
}

/// Records the outcome of one admitted call; a call dropped unfinished near its deadline
/// counts as a failure.
struct Outcome {
    breaker: Breaker,
    started: Instant,
    done: bool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.started.elapsed() >= self.breaker.policy.deadline * 4 / 5 {
            self.breaker.record_timeout();
        } else {
            self.breaker.record_abandoned();
        }
    }
}

impl<S, Req> Service<Req> for BreakerService<S>
where
    S: Service<Req>,
    S::Error: Trips + Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if let Err(open) = self.breaker.admit() {
            return Box::pin(async move { Err(open.into()) });
        }
        let mut outcome = Outcome {
            breaker: self.breaker.clone(),
            started: Instant::now(),
            done: false,
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let result = call.await;
            outcome.done = true;
            match &result {
                Ok(_) => outcome.breaker.record_success(),
                Err(e) if e.timed_out() => outcome.breaker.record_timeout(),
                Err(e) => match e.trips() {
                    Some(why) => outcome.breaker.record_failure(why),
                    None => outcome.breaker.record_success(),
                },
            }
            result.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failures: 2,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            deadline: Duration::from_millis(10),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_good_probe() {
        let b = Breaker::new(policy());
        b.record_failure("refused".into());
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure("refused".into());
        assert_eq!(b.state(), BreakerState::Open);
        let open = b.admit().unwrap_err();
        assert_eq!(open.failures, 2);
        assert!(open.to_string().contains("refused"), "{open}");
        std::thread::sleep(Duration::from_millis(25));
        b.admit().expect("probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_err(), "one probe at a time");
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().expect("closed again");
    }

    #[test]
    fn a_failed_probe_doubles_the_backoff_up_to_the_ceiling() {
        let b = Breaker::new(policy());
        b.record_failure("x".into());
        b.record_failure("x".into());
        for want in [40, 50, 50] {
            while let Err(open) = b.admit() {
                std::thread::sleep(open.next_probe_in);
            }
            b.record_failure("x".into());
            let wait = b.admit().unwrap_err().next_probe_in;
            assert!(wait <= Duration::from_millis(want), "{wait:?} > {want}");
            assert!(wait > Duration::from_millis(want - 15), "{wait:?}");
        }
    }

    #[test]
    fn a_call_dropped_unfinished_counts_as_a_failure() {
        let b = Breaker::new(policy());
        let early = Outcome {
            breaker: b.clone(),
            started: Instant::now(),
            done: false,
        };
        drop(early);
        assert_eq!(b.lock().consecutive_failures, 0, "the caller gave up early");
        for _ in 0..2 {
            drop(Outcome {
                breaker: b.clone(),
                started: Instant::now() - Duration::from_millis(9),
                done: false,
            });
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().unwrap_err().last_failure.contains("within 10 ms"));

        // A probe abandoned early by its caller does not leave the breaker half-open forever.
        while let Err(open) = b.admit() {
            std::thread::sleep(open.next_probe_in);
        }
        assert_eq!(b.state(), BreakerState::HalfOpen);
        drop(Outcome {
            breaker: b.clone(),
            started: Instant::now(),
            done: false,
        });
        b.admit().expect("the next call probes");
    }
}
