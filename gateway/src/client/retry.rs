//! Retry with a budget: aggregates are idempotent, so a call that failed before the node could
//! answer (connection refused or reset) is sent again — but only while retries stay a small
//! share of all calls, so a failing network is not hit twice as hard.

use std::sync::Arc;
use std::time::Duration;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};

/// How long retries are remembered by the budget.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);
/// Retries per second always allowed, so a quiet gateway can still retry.
const BUDGET_FLOOR_PER_SECOND: u32 = 10;
/// Attempts after the first, at most.
const MAX_RETRIES: u8 = 2;
/// Pause before a retry: a restarting node gets a moment, a dead one costs little.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// The retry policy of one node; clones share the node's budget.
#[derive(Clone)]
pub struct BudgetedRetry {
    budget: Arc<TpsBudget>,
    retries_left: u8,
}

impl BudgetedRetry {
    /// Retries may add `percent`% on top of first attempts (plus a small floor).
    pub fn new(percent: u32) -> Self {
        let ratio = percent as f32 / 100.0;
        Self {
            budget: Arc::new(TpsBudget::new(
                BUDGET_WINDOW,
                BUDGET_FLOOR_PER_SECOND,
                ratio,
            )),
            retries_left: MAX_RETRIES,
        }
    }
}

/// Only failures where the node surely did not run the query and may answer on a new try:
/// the transport could not reach it. Not time-outs (the deadline is spent), not refusals.
fn worth_retrying(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && std::error::Error::source(status).is_some()
}

impl<Req: Clone, Res> Policy<Req, Res, tonic::Status> for BudgetedRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Req,
        result: &mut Result<Res, tonic::Status>,
    ) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(e) if self.retries_left > 0 && worth_retrying(e) && self.budget.withdraw() => {
                self.retries_left -= 1;
                tracing::debug!(error = %e, "retrying");
                Some(tokio::time::sleep(RETRY_PAUSE))
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the channel reports when it cannot connect: `UNAVAILABLE` with the cause attached.
    fn transport_failure(kind: std::io::ErrorKind) -> tonic::Status {
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(Arc::new(std::io::Error::from(kind)));
        status
    }

    #[test]
    fn only_transport_failures_are_retried() {
        let transport = transport_failure(std::io::ErrorKind::ConnectionRefused);
        assert!(worth_retrying(&transport));
        assert!(!worth_retrying(&tonic::Status::unavailable("node says so")));
        assert!(!worth_retrying(&tonic::Status::permission_denied("no")));
    }

    #[tokio::test]
    async fn the_budget_stops_retries_when_spent() {
        let policy = BudgetedRetry::new(0);
        let mut granted = 0;
        for _ in 0..300 {
            let mut p = policy.clone();
            let failure = transport_failure(std::io::ErrorKind::ConnectionReset);
            let mut result: Result<(), tonic::Status> = Err(failure);
            if p.retry(&mut (), &mut result).is_some() {
                granted += 1;
            }
        }
        // With 0 % only the floor is left: 10 retries per second over the 10 s window.
        assert_eq!(granted, 100);
    }
}
