//! The counter cube: how a node answers aggregates without reading events.
//!
//! Every stored event increments one counter per category, keyed by the tuple of its aggregate
//! dimensions. Keys sort by month first, so an aggregate over a month range is one ordered range
//! scan whose cost grows with the distinct tuples in the range, not with the number of events.

use crate::event::{Event, EventCategory, EventType, HarmLevel, UnitType};
use crate::month::Month;
use std::collections::BTreeMap;

/// The aggregate dimensions one event contributes to, for one of its categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// Month of discovery.
    pub month: Month,
    /// One of the event's categories.
    pub category: EventCategory,
    /// Event type.
    pub event_type: EventType,
    /// Harm level, `None` for near misses and unsafe conditions.
    pub harm: Option<HarmLevel>,
    /// Unit type.
    pub unit_type: UnitType,
}

/// A stored counter key that does not decode: the store is corrupt or from another version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable counter key {0:02x?}")]
pub struct BadCounterKey(pub Vec<u8>);

impl CounterKey {
    /// Encoded length in bytes.
    pub const LEN: usize = 8;

    /// One key per category of `event`.
    pub fn for_event(event: &Event) -> impl Iterator<Item = CounterKey> + '_ {
        event.categories.iter().map(move |&category| CounterKey {
            month: event.discovery_month,
            category,
            event_type: event.event_type,
            harm: event.harm,
            unit_type: event.unit_type,
        })
    }

    /// Big-endian month index first, so byte order is month order.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let m = self.month.index().to_be_bytes();
        [
            m[0],
            m[1],
            m[2],
            m[3],
            self.category as u8,
            self.event_type as u8,
            self.harm.map_or(0, |h| h as u8),
            self.unit_type as u8,
        ]
    }

    /// The key whose encoding is `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, BadCounterKey> {
        let bad = || BadCounterKey(bytes.to_vec());
        let b: [u8; Self::LEN] = bytes.try_into().map_err(|_| bad())?;
        let month =
            Month::from_index(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(bad)?;
        let harm = match HarmLevel::try_from(i32::from(b[6])).map_err(|_| bad())? {
            HarmLevel::Unspecified => None,
            h => Some(h),
        };
        Ok(CounterKey {
            month,
            category: EventCategory::try_from(i32::from(b[4])).map_err(|_| bad())?,
            event_type: EventType::try_from(i32::from(b[5])).map_err(|_| bad())?,
            harm,
            unit_type: UnitType::try_from(i32::from(b[7])).map_err(|_| bad())?,
        })
    }

    /// The smallest encoded key of `month`: range scans start here.
    pub fn month_start(month: Month) -> [u8; 4] {
        month.index().to_be_bytes()
    }
}

/// A cell of the month x category x harm projection that the skeleton's aggregate releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonthCategoryHarm {
    /// Month.
    pub month: Month,
    /// Category.
    pub category: EventCategory,
    /// Harm level, `None` for near misses and unsafe conditions.
    pub harm: Option<HarmLevel>,
}

/// Counts projected onto month x category x harm, summed over the other dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthCategoryHarmCube(BTreeMap<MonthCategoryHarm, u64>);

impl MonthCategoryHarmCube {
    /// Adds `count` events under `key`'s projection.
    pub fn add(&mut self, key: &CounterKey, count: u64) {
        let cell = MonthCategoryHarm {
            month: key.month,
            category: key.category,
            harm: key.harm,
        };
        *self.0.entry(cell).or_default() += count;
    }

    /// Non-zero cells, in key order.
    pub fn cells(&self) -> impl Iterator<Item = (MonthCategoryHarm, u64)> + '_ {
        self.0
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_month() {
        let key = |m: &str, c| CounterKey {
            month: m.parse().unwrap(),
            category: c,
            event_type: EventType::Incident,
            harm: Some(HarmLevel::Severe),
            unit_type: UnitType::Emergency,
        };
        let a = key("2025-12", EventCategory::Vte);
        let b = key("2026-01", EventCategory::Blood);
        assert_eq!(CounterKey::decode(&a.encode()).unwrap(), a);
        assert!(a.encode() < b.encode());
        assert!(CounterKey::decode(&[0; 3]).is_err());
    }
}
