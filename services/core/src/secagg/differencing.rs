//! The participant-set rule: a node refuses to join sums that together would isolate one
//! facility's figures (privacy.md §4.3).
//!
//! Secure aggregation hides a facility only inside one sum. Two sums of the same cells over
//! participant sets that differ by one facility reveal that facility's value by subtraction, and
//! more generally any facility k whose unit vector e_k lies in the row span of the sets' incidence
//! vectors can be solved for. A gateway can make such sets by calling a live member dropped, by
//! re-running a query after a real dropout, or by reshaping cohorts. So, per canonical query cell
//! key and period, a node keeps the participant sets it answered and refuses a new one when the
//! stored sets plus the new one span a unit vector.
//!
//! The design (issue 11) asked only whether the node's *own* e_self enters the span. That misses
//! the plainest attack: after S, the gateway asks S ∖ {k}; k is not asked and cannot refuse, and
//! e_self never enters anyone's span. Here a node refuses when **any** member's unit vector
//! enters the span of the sets it has seen — every member of S ∖ {k} saw S too, so they refuse.
//! It remains a local view: a node cannot see sums over sets it is not in, so combinations spread
//! across sets no single member saw are not caught; fixed governance-signed cohorts (privacy.md
//! §4.3) close that.
//!
//! The test is exact: Gaussian elimination over GF(2^61 − 1) to reduced row echelon form, where a
//! unit vector is in the row space exactly when some reduced row is itself a unit vector. (Mod p
//! the rank of a 0/1 matrix can only drop where p divides a minor; with p ≈ 2.3·10^18 and ≤ 500
//! columns this is not a practical concern, but it is why the result is documented as "mod p".)
//! Only sets that add rank need storing (a set already in the span reveals nothing new), so a
//! key never holds more sets than it has distinct facilities (≤ 500).

use super::MAX_COHORT;
use std::collections::BTreeSet;

/// p = 2^61 − 1.
const P: u64 = (1 << 61) - 1;

fn add(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P { s - P } else { s }
}

fn sub(a: u64, b: u64) -> u64 {
    if a >= b { a - b } else { a + P - b }
}

fn mul(a: u64, b: u64) -> u64 {
    let x = u128::from(a) * u128::from(b);
    // 2^61 ≡ 1 (mod p).
    add((x as u64) & P, (x >> 61) as u64 % P)
}

fn inverse(a: u64) -> u64 {
    let (mut base, mut exponent, mut result) = (a, P - 2, 1);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exponent >>= 1;
    }
    result
}

/// Reduces `rows` to reduced row echelon form in place and returns the rank (the first `rank`
/// rows are the non-zero ones).
fn reduce(rows: &mut [Vec<u64>]) -> usize {
    let columns = rows.first().map_or(0, Vec::len);
    let mut rank = 0;
    for column in 0..columns {
        let Some(pivot) = (rank..rows.len()).find(|r| rows[*r][column] != 0) else {
            continue;
        };
        rows.swap(rank, pivot);
        let scale = inverse(rows[rank][column]);
        for v in rows[rank].iter_mut() {
            *v = mul(*v, scale);
        }
        let pivot_row = rows[rank].clone();
        for (r, row) in rows.iter_mut().enumerate() {
            let factor = row[column];
            if r == rank || factor == 0 {
                continue;
            }
            for (v, p) in row.iter_mut().zip(&pivot_row) {
                *v = sub(*v, mul(factor, *p));
            }
        }
        rank += 1;
        if rank == rows.len() {
            break;
        }
    }
    rank
}

/// Why a participant set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DifferencingError {
    /// The sums would isolate one facility.
    #[error(
        "sums over this participant set and the ones already answered would reveal {0:?}'s own figures"
    )]
    Isolates(String),
    /// More facilities than the exact test is sized for.
    #[error(
        "{0} distinct facilities across the participant sets; at most {MAX_COHORT} are supported"
    )]
    TooManyFacilities(usize),
}

/// Whether an admissible set needs storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It adds rank: store it.
    NewInformation,
    /// It is a combination of stored sets: nothing new to store.
    AlreadySpanned,
}

/// The participant sets a node answered for one query cell key and period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantSets {
    sets: Vec<BTreeSet<String>>,
}

impl ParticipantSets {
    /// No sets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets as stored earlier.
    pub fn from_sets(sets: Vec<BTreeSet<String>>) -> Self {
        Self { sets }
    }

    /// The stored sets, oldest first.
    pub fn sets(&self) -> &[BTreeSet<String>] {
        &self.sets
    }

    /// Whether `new` may be answered: refused when it and the stored sets span some member's
    /// unit vector.
    pub fn check(&self, new: &BTreeSet<String>) -> Result<Admission, DifferencingError> {
        let columns: Vec<&String> = self
            .sets
            .iter()
            .chain(std::iter::once(new))
            .flatten()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if columns.len() > MAX_COHORT {
            return Err(DifferencingError::TooManyFacilities(columns.len()));
        }
        let row = |set: &BTreeSet<String>| -> Vec<u64> {
            columns
                .iter()
                .map(|c| u64::from(set.contains(*c)))
                .collect()
        };
        let mut stored: Vec<Vec<u64>> = self.sets.iter().map(row).collect();
        let mut all = stored.clone();
        all.push(row(new));
        let rank = reduce(&mut all);
        for reduced in &all[..rank] {
            let mut nonzero = reduced.iter().enumerate().filter(|(_, v)| **v != 0);
            if let (Some((column, _)), None) = (nonzero.next(), nonzero.next()) {
                return Err(DifferencingError::Isolates(columns[column].clone()));
            }
        }
        Ok(if rank > reduce(&mut stored) {
            Admission::NewInformation
        } else {
            Admission::AlreadySpanned
        })
    }

    /// [`ParticipantSets::check`], then stores `new` when it adds information.
    pub fn admit(&mut self, new: BTreeSet<String>) -> Result<Admission, DifferencingError> {
        let admission = self.check(&new)?;
        if admission == Admission::NewInformation {
            self.sets.push(new);
        }
        Ok(admission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &str) -> BTreeSet<String> {
        members.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn field_arithmetic_is_mod_2_61_minus_1() {
        assert_eq!(add(P - 1, 1), 0);
        assert_eq!(sub(0, 1), P - 1);
        assert_eq!(mul(P - 1, P - 1), 1);
        assert_eq!(mul(1 << 60, 2), 1);
        for a in [1, 2, 3, 12345, P - 2] {
            assert_eq!(mul(a, inverse(a)), 1);
        }
    }

    #[test]
    fn a_set_one_member_away_from_an_answered_one_is_refused() {
        let mut history = ParticipantSets::new();
        let s = set("me a b c d e");
        assert_eq!(history.admit(s.clone()), Ok(Admission::NewInformation));
        // The same set again reveals nothing new.
        assert_eq!(history.check(&s), Ok(Admission::AlreadySpanned));
        // One member fewer: a's value is the difference.
        assert_eq!(
            history.check(&set("me b c d e")),
            Err(DifferencingError::Isolates("a".into()))
        );
        // One member more: the newcomer's value is the difference.
        assert_eq!(
            history.check(&set("me a b c d e f")),
            Err(DifferencingError::Isolates("f".into()))
        );
    }

    #[test]
    fn a_member_refuses_the_set_that_would_isolate_another() {
        // Seen from a: after S, the gateway asks S without "me" — "me" is not asked, a refuses.
        let history = ParticipantSets::from_sets(vec![set("me a b c d e")]);
        assert_eq!(
            history.check(&set("a b c d e")),
            Err(DifferencingError::Isolates("me".into()))
        );
    }

    #[test]
    fn a_set_far_from_the_answered_ones_is_accepted() {
        let mut history = ParticipantSets::new();
        history.admit(set("me a b c d e")).unwrap();
        assert_eq!(
            history.admit(set("me f g h i j")),
            Ok(Admission::NewInformation)
        );
        assert_eq!(history.sets().len(), 2);
    }

    #[test]
    fn combinations_of_several_sets_are_caught() {
        // No two sets differ by one member, yet S1 + S2 + S3 − 2·S4 = e_me.
        let mut history = ParticipantSets::new();
        for s in ["me a b c d", "me a b e f", "me c d e f"] {
            assert_eq!(history.admit(set(s)), Ok(Admission::NewInformation), "{s}");
        }
        assert_eq!(
            history.check(&set("me a b c d e f")),
            Err(DifferencingError::Isolates("me".into()))
        );
    }

    #[test]
    fn the_test_is_sized_for_the_largest_network() {
        let big: BTreeSet<String> = (0..=MAX_COHORT).map(|i| format!("f{i}")).collect();
        assert_eq!(
            ParticipantSets::new().check(&big),
            Err(DifferencingError::TooManyFacilities(MAX_COHORT + 1))
        );
    }
}
