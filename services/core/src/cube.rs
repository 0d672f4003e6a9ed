//! The counter cube: how a node answers aggregates without reading events.
//!
//! Every stored event increments counters in several *families* (cuboids), each keyed by the
//! month and the dimensions that family keeps:
//!
//! | family | one counter per | dimensions |
//! | --- | --- | --- |
//! | `E` events | event | every single-valued dimension |
//! | `C` categories | event × category | category + every single-valued dimension |
//! | `F` factors | event × contributing factor | factor + every single-valued dimension |
//! | `X` category × factor | event × category × factor | both + every single-valued one |
//! | `R` rollup | event × category | category, event type, harm |
//! | `T` event rollup | event | event type, harm |
//!
//! `E` counts each event once, so totals never double count an event with several categories;
//! `R` is a small rollup that answers the common month × category × harm benchmark with few
//! keys, and `T` its totals that count each event once. Keys sort by family then month, so a query over a month range is one ordered range
//! scan of one family, and its cost grows with the distinct tuples in the range, not with the
//! number of events.

use crate::event::Event;
use crate::month::Month;

/// The single-valued dimensions, as raw enum codes, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SingleValued {
    /// Event type.
    pub event_type: u8,
    /// Harm level (0: none).
    pub harm: u8,
    /// Unit type.
    pub unit_type: u8,
    /// Age band.
    pub age_band: u8,
    /// Sex.
    pub sex: u8,
    /// Preventability.
    pub preventability: u8,
    /// NCC MERP category.
    pub ncc_merp: u8,
}

impl SingleValued {
    fn of(event: &Event) -> Self {
        Self {
            event_type: event.event_type as u8,
            harm: event.harm.map_or(0, |h| h as u8),
            unit_type: event.unit_type as u8,
            age_band: event.age_band as u8,
            sex: event.sex as u8,
            preventability: event.preventability as u8,
            ncc_merp: event.ncc_merp as u8,
        }
    }

    /// Only event type and harm (the rollup family).
    fn rollup(self) -> Self {
        Self {
            event_type: self.event_type,
            harm: self.harm,
            ..Self::default()
        }
    }
}

/// A counter family; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// One counter per event.
    Events,
    /// One per event and category.
    Categories,
    /// One per event and contributing factor.
    Factors,
    /// One per event, category and contributing factor.
    CategoryFactors,
    /// One per event and category, keeping only event type and harm.
    Rollup,
    /// One per event, keeping only event type and harm.
    EventRollup,
}

impl Family {
    /// Every family, for recounts.
    pub const ALL: [Family; 6] = [
        Family::Events,
        Family::Categories,
        Family::Factors,
        Family::CategoryFactors,
        Family::Rollup,
        Family::EventRollup,
    ];

    /// Whether the family keeps only event type and harm besides category: its keys number a
    /// few thousand however many events there are, so a node can hold it in memory.
    pub fn is_rollup(self) -> bool {
        matches!(self, Family::Rollup | Family::EventRollup)
    }

    /// The first byte of the family's keys.
    pub fn prefix(self) -> u8 {
        match self {
            Family::Events => b'E',
            Family::Categories => b'C',
            Family::Factors => b'F',
            Family::CategoryFactors => b'X',
            Family::Rollup => b'R',
            Family::EventRollup => b'T',
        }
    }

    fn from_prefix(b: u8) -> Option<Self> {
        Family::ALL.into_iter().find(|f| f.prefix() == b)
    }
}

/// One counter: a family, a month, and the family's dimensions (0 where the family has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// Family.
    pub family: Family,
    /// Month of discovery.
    pub month: Month,
    /// Category code (0 outside the category families).
    pub category: u8,
    /// Contributing factor code (0 outside the factor families).
    pub factor: u8,
    /// Single-valued dimensions (only event type and harm in the rollup).
    pub single: SingleValued,
}

/// A stored counter key that does not decode: the store is corrupt or from another version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable counter key {0:02x?}")]
pub struct BadCounterKey(pub Vec<u8>);

impl CounterKey {
    /// Encoded length in bytes.
    pub const LEN: usize = 14;

    /// Every counter `event` increments.
    pub fn for_event(event: &Event) -> Vec<CounterKey> {
        let single = SingleValued::of(event);
        let key = |family, category: u8, factor: u8, single| CounterKey {
            family,
            month: event.discovery_month,
            category,
            factor,
            single,
        };
        let mut keys = vec![
            key(Family::Events, 0, 0, single),
            key(Family::EventRollup, 0, 0, single.rollup()),
        ];
        for c in &event.categories {
            keys.push(key(Family::Categories, *c as u8, 0, single));
            keys.push(key(Family::Rollup, *c as u8, 0, single.rollup()));
            for f in &event.contributing_factors {
                keys.push(key(Family::CategoryFactors, *c as u8, *f as u8, single));
            }
        }
        for f in &event.contributing_factors {
            keys.push(key(Family::Factors, 0, *f as u8, single));
        }
        keys
    }

    /// Family byte, then big-endian month index, so byte order is family then month order.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let m = self.month.index().to_be_bytes();
        let s = &self.single;
        [
            self.family.prefix(),
            m[0],
            m[1],
            m[2],
            m[3],
            self.category,
            self.factor,
            s.event_type,
            s.harm,
            s.unit_type,
            s.age_band,
            s.sex,
            s.preventability,
            s.ncc_merp,
        ]
    }

    /// The key whose encoding is `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, BadCounterKey> {
        let bad = || BadCounterKey(bytes.to_vec());
        let b: [u8; Self::LEN] = bytes.try_into().map_err(|_| bad())?;
        Ok(CounterKey {
            family: Family::from_prefix(b[0]).ok_or_else(bad)?,
            month: Month::from_index(u32::from_be_bytes([b[1], b[2], b[3], b[4]]))
                .ok_or_else(bad)?,
            category: b[5],
            factor: b[6],
            single: SingleValued {
                event_type: b[7],
                harm: b[8],
                unit_type: b[9],
                age_band: b[10],
                sex: b[11],
                preventability: b[12],
                ncc_merp: b[13],
            },
        })
    }

    /// The half-open range of encoded keys of `family` from `from` through `to`.
    pub fn range(family: Family, from: Month, to: Month) -> ([u8; 5], [u8; 5]) {
        let bound = |index: u32| {
            let m = index.to_be_bytes();
            [family.prefix(), m[0], m[1], m[2], m[3]]
        };
        (bound(from.index()), bound(to.index() + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ContributingFactor, EventCategory};
    use crate::wire::event_from_wire;

    fn event() -> Event {
        let wire = crate::pb::Event {
            idempotency_key: "k".into(),
            event_type: 1,
            categories: vec![EventCategory::Fall as i32, EventCategory::Medication as i32],
            harm: 2,
            discovery_month: "2026-01".into(),
            unit_type: 5,
            contributing_factors: vec![
                ContributingFactor::Communication as i32,
                ContributingFactor::Handoff as i32,
            ],
            ..Default::default()
        };
        event_from_wire(wire, "e", "2026-11".parse().unwrap()).unwrap()
    }

    #[test]
    fn an_event_counts_once_per_family_value() {
        let keys = CounterKey::for_event(&event());
        let count = |f| keys.iter().filter(|k| k.family == f).count();
        assert_eq!(count(Family::Events), 1);
        assert_eq!(count(Family::Categories), 2);
        assert_eq!(count(Family::Rollup), 2);
        assert_eq!(count(Family::EventRollup), 1);
        assert_eq!(count(Family::Factors), 2);
        assert_eq!(count(Family::CategoryFactors), 4);
    }

    #[test]
    fn keys_round_trip_and_sort_by_family_then_month() {
        let keys = CounterKey::for_event(&event());
        for k in &keys {
            assert_eq!(CounterKey::decode(&k.encode()).unwrap(), *k);
        }
        let (start, end) = CounterKey::range(
            Family::Categories,
            "2026-01".parse().unwrap(),
            "2026-01".parse().unwrap(),
        );
        let c = keys
            .iter()
            .find(|k| k.family == Family::Categories)
            .unwrap()
            .encode();
        assert!(start.as_slice() <= c.as_slice() && c.as_slice() < end.as_slice());
        assert!(CounterKey::decode(&[0; 3]).is_err());
    }
}
