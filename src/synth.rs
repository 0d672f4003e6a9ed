//! Realistic synthetic events and exposure, for the demo, the tests and trying psonet out;
//! `psonet synth` writes them as NDJSON.
//!
//! Proportions follow what PSO reports look like (medication and falls lead; most incidents
//! cause no or mild harm; near misses are a third of reports) so benchmarks look like real ones.
//! Everything is seeded: the same seed gives the same file.

use crate::ndjson::Codec;
use anyhow::Result;
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory as C, EventType as T, HarmLevel as H, UnitType as U};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;

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

const AGE_BANDS: &[(pb::AgeBand, f64)] = &[
    (pb::AgeBand::Neonate028d, 0.01),
    (pb::AgeBand::Infant29d1y, 0.01),
    (pb::AgeBand::Child112, 0.03),
    (pb::AgeBand::Adolescent1317, 0.02),
    (pb::AgeBand::Adult1864, 0.45),
    (pb::AgeBand::Older6589, 0.42),
    (pb::AgeBand::Age90Plus, 0.05),
    (pb::AgeBand::Unknown, 0.01),
];
const FACTORS: &[(pb::ContributingFactor, f64)] = &[
    (pb::ContributingFactor::Communication, 0.25),
    (pb::ContributingFactor::Handoff, 0.10),
    (pb::ContributingFactor::HumanFactors, 0.25),
    (pb::ContributingFactor::Policies, 0.10),
    (pb::ContributingFactor::Equipment, 0.08),
    (pb::ContributingFactor::Environment, 0.07),
    (pb::ContributingFactor::HealthIt, 0.05),
    (pb::ContributingFactor::StaffQualifications, 0.05),
    (pb::ContributingFactor::Other, 0.05),
];

/// Up to two contributing factors, and preventability for incidents.
fn add_factors(rng: &mut StdRng, event: &mut pb::Event) {
    for _ in 0..rng.random_range(0..3) {
        let f = pick(rng, FACTORS) as i32;
        if !event.contributing_factors.contains(&f) {
            event.contributing_factors.push(f);
        }
    }
    if event.event_type == T::Incident as i32 {
        event.preventability = rng.random_range(1..=5);
    }
}

/// Category modules that agree with the event: fall injury, NCC MERP from type and harm,
/// pressure injury stage.
fn add_modules(rng: &mut StdRng, event: &mut pb::Event, harm: H) {
    let has = |c: C| event.categories.contains(&(c as i32));
    if has(C::Fall) && event.event_type == T::Incident as i32 {
        let injury = if harm == H::NoHarm {
            pb::FallInjury::None
        } else {
            pb::FallInjury::SkinTear
        };
        event.fall = Some(pb::FallDetail {
            assistance: rng.random_range(1..=3),
            injury: injury as i32,
            ..Default::default()
        });
    }
    if has(C::Medication) {
        use pb::NccMerpCategory as M;
        let merp = match (T::try_from(event.event_type), harm) {
            (Ok(T::UnsafeCondition), _) => M::A,
            (Ok(T::NearMiss), _) => M::B,
            (_, H::NoHarm) => M::C,
            (_, H::Mild | H::Moderate) => M::E,
            (_, H::Severe) => M::G,
            (_, H::Death) => M::I,
            _ => M::Unspecified,
        };
        event.medication = Some(pb::MedicationDetail {
            ncc_merp: merp as i32,
            process_stage: rng.random_range(1..=10),
            ..Default::default()
        });
    }
    if has(C::PressureInjury) {
        event.pressure_injury = Some(pb::PressureInjuryDetail {
            stage: rng.random_range(1..=6),
            present_on_admission: pb::PresentOnAdmission::NotPresent as i32,
            ..Default::default()
        });
    }
}

/// Arguments of `psonet synth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of events.
    #[arg(long, default_value_t = 3000)]
    events: usize,
    /// Months covered, ending this month.
    #[arg(long, default_value_t = 12)]
    months: u32,
    /// Staffed beds (sets patient days).
    #[arg(long, default_value_t = 300)]
    beds: u32,
    /// Prefix of idempotency keys.
    #[arg(long, default_value = "synth")]
    key_prefix: String,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs `psonet synth`: the exposure records, then the events, one NDJSON line each, to `out`.
pub fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let options = SynthOptions {
        events: args.events,
        months: args.months,
        last_month: Month::current(),
        key_prefix: args.key_prefix,
        beds: args.beds,
        seed: args.seed,
    };
    let codec = Codec::new()?;
    let mut out = std::io::BufWriter::new(out);
    for record in exposure(&options) {
        writeln!(out, "{}", codec.exposure_json(&record)?)?;
    }
    for event in events(&options) {
        writeln!(out, "{}", codec.event_json(&event)?)?;
    }
    out.flush()?;
    Ok(())
}

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
            let mut event = pb::Event {
                idempotency_key: format!("{}-{i:08}", options.key_prefix),
                cf_version: pb::CommonFormatsVersion::CferHV20 as i32,
                event_type: event_type as i32,
                categories,
                harm: harm as i32,
                discovery_month: month.to_string(),
                unit_type: unit as i32,
                narrative: format!(
                    "Synthetic {} report, unit {}.",
                    event_type.as_str_name(),
                    unit.as_str_name()
                ),
                age_band: pick(&mut rng, AGE_BANDS) as i32,
                sex: pick(
                    &mut rng,
                    &[
                        (pb::Sex::Female, 0.52),
                        (pb::Sex::Male, 0.47),
                        (pb::Sex::Unknown, 0.01),
                    ],
                ) as i32,
                reporter_type: pb::ReporterType::HealthcareProfessional as i32,
                ..Default::default()
            };
            add_factors(&mut rng, &mut event);
            add_modules(&mut rng, &mut event, harm);
            event
        })
        .collect()
}

/// Patient days, admissions and medication doses per month and unit type for the bed count.
pub fn exposure(options: &SynthOptions) -> Vec<pb::ExposureRecord> {
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0x5eed);
    let monthly = f64::from(options.beds) * 30.4 * 0.8;
    let record =
        |month: Month, unit: U, denominator: pb::DenominatorType, value: f64| pb::ExposureRecord {
            month: month.to_string(),
            unit_type: unit as i32,
            denominator: denominator as i32,
            value: value.round() as u64,
        };
    months(options)
        .into_iter()
        .flat_map(|month| {
            let noise = 0.9 + rng.random::<f64>() * 0.2;
            UNITS.iter().flat_map(move |(unit, share)| {
                let days = monthly * share * noise;
                [
                    record(month, *unit, pb::DenominatorType::PatientDays, days),
                    record(month, *unit, pb::DenominatorType::Admissions, days / 4.6),
                    record(
                        month,
                        *unit,
                        pb::DenominatorType::MedicationDoses,
                        days * 11.0,
                    ),
                ]
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
        assert_eq!(exposure(&options).len(), 12 * UNITS.len() * 3);
    }
}
