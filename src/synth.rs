//! Realistic synthetic events and exposure, for the demo, tests and trying psonet out.
//!
//! Proportions follow what PSO reports look like (medication and falls lead; most incidents
//! cause no or mild harm; near misses are a third of reports) so benchmarks look like real ones.
//! Everything is seeded: the same seed gives the same file.

use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory as C, EventType as T, HarmLevel as H, UnitType as U};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const EVENT_TYPES: &[(T, f64)] = &[
    (T::Incident, 0.6),
    (T::NearMiss, 0.3),
    (T::UnsafeCondition, 0.1),
];
const CATEGORIES: &[(C, f64)] = &[
    (C::Medication, 0.30),
    (C::Fall, 0.25),
    (C::PressureInjury, 0.08),
    (C::Surgery, 0.06),
    (C::Device, 0.06),
    (C::Hai, 0.05),
    (C::Blood, 0.03),
    (C::Vte, 0.03),
    (C::Perinatal, 0.02),
    (C::Anesthesia, 0.02),
    (C::Other, 0.10),
];
const HARMS: &[(H, f64)] = &[
    (H::NoHarm, 0.55),
    (H::Mild, 0.25),
    (H::Moderate, 0.10),
    (H::Severe, 0.03),
    (H::Death, 0.005),
    (H::Unknown, 0.065),
];
/// Unit types with their share of patient days.
const UNITS: &[(U, f64)] = &[
    (U::MedSurg, 0.30),
    (U::Medical, 0.15),
    (U::Surgical, 0.15),
    (U::CriticalCareAdult, 0.10),
    (U::Emergency, 0.10),
    (U::StepDown, 0.05),
    (U::Pediatric, 0.05),
    (U::Psychiatric, 0.05),
    (U::LaborDelivery, 0.05),
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Number of events.
    pub events: usize,
    /// Months covered, ending with `last_month`.
    pub months: u32,
    /// The last month covered.
    pub last_month: Month,
    /// Prefix of idempotency keys (make it differ between facilities).
    pub key_prefix: String,
    /// Staffed beds: sets patient days (beds x days x 80% occupancy).
    pub beds: u32,
    /// Random seed.
    pub seed: u64,
}

fn pick<X: Copy>(rng: &mut StdRng, table: &[(X, f64)]) -> X {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut r = rng.random::<f64>() * total;
    for (x, w) in table {
        if r < *w {
            return *x;
        }
        r -= w;
    }
    table[table.len() - 1].0
}

/// The months covered, oldest first.
pub fn months(options: &SynthOptions) -> Vec<Month> {
    let first = options.last_month.minus(options.months.saturating_sub(1));
    let mut out = vec![first];
    while out.len() < options.months as usize {
        let next = out[out.len() - 1].next();
        out.push(next);
    }
    out
}

/// `options.events` events spread over the months.
pub fn events(options: &SynthOptions) -> Vec<pb::Event> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let months = months(options);
    (0..options.events)
        .map(|i| {
            let event_type = pick(&mut rng, EVENT_TYPES);
            let mut categories = vec![pick(&mut rng, CATEGORIES) as i32];
            if rng.random::<f64>() < 0.1 {
                let second = pick(&mut rng, CATEGORIES) as i32;
                if second != categories[0] {
                    categories.push(second);
                }
            }
            let harm = if event_type == T::Incident {
                pick(&mut rng, HARMS)
            } else {
                H::Unspecified
            };
            let month = months[rng.random_range(0..months.len())];
            let unit = pick(&mut rng, UNITS);
            pb::Event {
                idempotency_key: format!("{}-{i:08}", options.key_prefix),
                cf_version: pb::CommonFormatsVersion::CferHV20 as i32,
                event_type: event_type as i32,
                categories,
                harm: harm as i32,
                discovery_month: month.to_string(),
                unit_type: unit as i32,
                narrative: format!(
                    "Synthetic {} report on a {} unit.",
                    event_type.as_str_name(),
                    unit.as_str_name()
                ),
            }
        })
        .collect()
}

/// Patient days per month and unit type for the facility's bed count.
pub fn exposure(options: &SynthOptions) -> Vec<pb::ExposureRecord> {
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0x5eed);
    let monthly = f64::from(options.beds) * 30.4 * 0.8;
    months(options)
        .into_iter()
        .flat_map(|month| {
            let noise = 0.9 + rng.random::<f64>() * 0.2;
            UNITS.iter().map(move |(unit, share)| pb::ExposureRecord {
                month: month.to_string(),
                unit_type: *unit as i32,
                patient_days: (monthly * share * noise).round() as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::wire::event_from_wire;

    #[test]
    fn synthetic_events_are_valid_and_repeatable() {
        let options = SynthOptions {
            events: 2000,
            months: 12,
            last_month: "2026-06".parse().unwrap(),
            key_prefix: "t".into(),
            beds: 200,
            seed: 7,
        };
        let a = events(&options);
        assert_eq!(a, events(&options));
        for e in &a {
            event_from_wire(e.clone(), "event", options.last_month).unwrap();
        }
        let falls = a
            .iter()
            .filter(|e| e.categories.contains(&(C::Fall as i32)))
            .count();
        assert!((400..600).contains(&falls), "{falls} falls of 2000");
        assert_eq!(exposure(&options).len(), 12 * UNITS.len());
    }
}
