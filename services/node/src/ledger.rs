//! The privacy-budget ledger and the cache of noisy answers, persisted in sled.
//!
//! With differential privacy on, every answered query costs ρ (zCDP) on each data month it
//! covers, charged twice: to the querier's budget for that month and to the month's global
//! budget shared by every querier (colluding queriers add up; only the global cap bounds them).
//! Months are disjoint data, so they compose in parallel; queries on one month add up, for
//! ever — new months bring fresh budget, nothing resets. The charge is written (write-ahead)
//! before noise is drawn and never refunded.
//!
//! An identical query on identical data — same canonical query, same true counts — replays the
//! stored noisy answer at no cost, so asking again and averaging gains nothing.

use crate::config::PrivacyBudgets;
use prost::Message;
use psonet_core::disclosure::RawAnswer;
use psonet_core::disclosure::zcdp::Rho;
use psonet_core::month::Month;
use psonet_core::pb;
use ring::digest::{Context, SHA256};
use sled::Tree;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, QuotaViolation, StatusExt};

/// Name of the sled tree of spent budget.
pub const BUDGET_TREE: &str = "privacy_budget";
/// Name of the sled tree of noisy answers.
pub const ANSWERS_TREE: &str = "noisy_answers";

/// Whose budget ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One querier's budget for a month.
    Querier(String),
    /// Every querier's budget for a month.
    Global,
}

/// A query that would overspend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} privacy budget for {month} is spent: {spent} of {budget} used, this query needs {needed}", scope_name(.scope))]
pub struct Exhausted {
    /// Whose budget.
    pub scope: Scope,
    /// The data month.
    pub month: Month,
    /// ρ spent so far.
    pub spent: Rho,
    /// ρ the budget allows.
    pub budget: Rho,
    /// ρ the query needs.
    pub needed: Rho,
}

fn scope_name(scope: &Scope) -> String {
    match scope {
        Scope::Querier(q) => format!("the querier {q}'s"),
        Scope::Global => "the global".to_string(),
    }
}

impl Exhausted {
    /// ρ still available in the exhausted budget.
    pub fn remaining(&self) -> Rho {
        self.budget.minus(self.spent)
    }

    /// `RESOURCE_EXHAUSTED` with a `QuotaFailure` and an `ErrorInfo` carrying the remaining
    /// budget.
    pub fn into_status(self) -> Status {
        let subject = match &self.scope {
            Scope::Querier(q) => format!("querier:{q}/month:{}", self.month),
            Scope::Global => format!("global/month:{}", self.month),
        };
        let metadata: HashMap<String, String> = [
            (
                "scope",
                match &self.scope {
                    Scope::Querier(_) => "querier".to_string(),
                    Scope::Global => "global".to_string(),
                },
            ),
            ("month", self.month.to_string()),
            ("remaining_rho", self.remaining().to_string()),
            ("spent_rho", self.spent.to_string()),
            ("budget_rho", self.budget.to_string()),
            ("needed_rho", self.needed.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut details = ErrorDetails::with_quota_failure(vec![QuotaViolation::new(
            subject,
            format!(
                "{} of {} ρ remain; a query needs {}",
                self.remaining(),
                self.budget,
                self.needed
            ),
        )]);
        details.set_error_info("PRIVACY_BUDGET_EXHAUSTED", "psonet", metadata);
        Status::with_error_details(Code::ResourceExhausted, self.to_string(), details)
    }
}

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The query would overspend.
    #[error(transparent)]
    Exhausted(#[from] Exhausted),
    /// sled failed.
    #[error("the budget ledger failed")]
    Sled(#[from] sled::Error),
}

/// Spent budget and remembered noisy answers of one node.
pub struct Ledger {
    budget: Tree,
    answers: Tree,
    budgets: PrivacyBudgets,
}

impl Ledger {
    /// The ledger in `budget` and `answers`, charging by `budgets`.
    pub fn new(budget: Tree, answers: Tree, budgets: PrivacyBudgets) -> Self {
        Self {
            budget,
            answers,
            budgets,
        }
    }

    /// ρ one answered query costs on each month.
    pub fn per_query(&self) -> Rho {
        self.budgets.per_query
    }

    /// Charges one query on every month of `months` to `querier` and to the global budget,
    /// all or nothing.
    pub fn reserve(&self, querier: &str, months: &[Month]) -> Result<(), LedgerError> {
        let cost = self.budgets.per_query;
        let charges: Vec<(Vec<u8>, Scope, Month, Rho)> = months
            .iter()
            .flat_map(|m| {
                [
                    (
                        key(Some(querier), *m),
                        Scope::Querier(querier.to_string()),
                        *m,
                        self.budgets.querier,
                    ),
                    (key(None, *m), Scope::Global, *m, self.budgets.global),
                ]
            })
            .collect();
        let result = self.budget.transaction(|tx| {
            for (k, scope, month, budget) in &charges {
                let spent = tx.get(k)?.map_or(Rho::ZERO, |v| decode(&v));
                if spent.plus(cost) > *budget {
                    return Err(ConflictableTransactionError::Abort(Exhausted {
                        scope: scope.clone(),
                        month: *month,
                        spent,
                        budget: *budget,
                        needed: cost,
                    }));
                }
                tx.insert(k.as_slice(), &spent.plus(cost).micros().to_be_bytes())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e.into()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// ρ `querier` has spent on `month`, and ρ spent on it globally.
    pub fn spent(&self, querier: &str, month: Month) -> Result<(Rho, Rho), LedgerError> {
        let read = |k: Vec<u8>| -> Result<Rho, LedgerError> {
            Ok(self.budget.get(k)?.map_or(Rho::ZERO, |v| decode(&v)))
        };
        Ok((read(key(Some(querier), month))?, read(key(None, month))?))
    }

    /// The noisy answer released before for `answer_key`, if any.
    pub fn replay(
        &self,
        answer_key: &[u8; 32],
    ) -> Result<Option<pb::AggregateResponse>, LedgerError> {
        Ok(self
            .answers
            .get(answer_key)?
            .and_then(|bytes| pb::AggregateResponse::decode(bytes.as_ref()).ok()))
    }

    /// Remembers the noisy answer released for `answer_key`.
    pub fn remember(
        &self,
        answer_key: &[u8; 32],
        answer: &pb::AggregateResponse,
    ) -> Result<(), LedgerError> {
        self.answers.insert(answer_key, answer.encode_to_vec())?;
        Ok(())
    }
}

/// The cache key of a noisy answer: the canonical query and the exact counts it was drawn on,
/// so changed data (a late report, an amendment) gets fresh noise and a fresh charge.
pub fn answer_key(canonical_query: &str, raw: &RawAnswer) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(canonical_query.as_bytes());
    for (part, cells) in [(b'c', &raw.cells), (b't', &raw.totals)] {
        ctx.update(&[part]);
        for (cell, n) in cells.iter().filter(|(_, n)| **n > 0) {
            ctx.update(cell.period.label().as_bytes());
            ctx.update(&cell.values);
            ctx.update(&n.to_be_bytes());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn key(querier: Option<&str>, month: Month) -> Vec<u8> {
    let mut k = match querier {
        Some(q) => [b"q:", q.as_bytes(), b"\0"].concat(),
        None => b"g:".to_vec(),
    };
    k.extend_from_slice(&month.index().to_be_bytes());
    k
}

fn decode(bytes: &[u8]) -> Rho {
    Rho::from_micros(bytes.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let budgets = PrivacyBudgets {
            per_query: Rho::from_micros(200_000),
            querier: Rho::from_micros(500_000),
            global: Rho::from_micros(600_000),
        };
        let ledger = Ledger::new(
            db.open_tree(BUDGET_TREE).unwrap(),
            db.open_tree(ANSWERS_TREE).unwrap(),
            budgets,
        );
        (dir, ledger)
    }

    #[test]
    fn a_querier_and_then_everyone_run_out() {
        let (_dir, ledger) = ledger();
        let m: Month = "2025-01".parse().unwrap();
        ledger.reserve("a", &[m]).unwrap();
        ledger.reserve("a", &[m]).unwrap();
        let LedgerError::Exhausted(e) = ledger.reserve("a", &[m]).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.scope, Scope::Querier("a".into()));
        assert_eq!(e.remaining(), Rho::from_micros(100_000));
        ledger.reserve("b", &[m]).unwrap();
        let LedgerError::Exhausted(e) = ledger.reserve("b", &[m]).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.scope, Scope::Global);
        assert_eq!(
            ledger.spent("b", m).unwrap(),
            (Rho::from_micros(200_000), Rho::from_micros(600_000))
        );
        // Another month is other data: fresh budget.
        ledger.reserve("b", &["2025-02".parse().unwrap()]).unwrap();
    }

    #[test]
    fn a_refused_charge_spends_nothing_on_any_month() {
        let (_dir, ledger) = ledger();
        let (jan, feb): (Month, Month) = ("2025-01".parse().unwrap(), "2025-02".parse().unwrap());
        ledger.reserve("a", &[feb]).unwrap();
        ledger.reserve("a", &[feb]).unwrap();
        assert!(ledger.reserve("a", &[jan, feb]).is_err());
        assert_eq!(ledger.spent("a", jan).unwrap().0, Rho::ZERO);
    }
}
