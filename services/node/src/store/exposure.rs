//! Exposure (denominators): a count per month, unit type and denominator, replaced as a whole
//! by each record, keyed so that a month range is one range read.

use super::keys::decode_u64;
use super::{Store, StoreError};
use psonet_core::event::UnitType;
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb;
use psonet_core::query::{Grain, Period};
use std::collections::BTreeMap;

/// One exposure record: a denominator count of a unit type in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    /// Month.
    pub month: Month,
    /// Unit type.
    pub unit_type: UnitType,
    /// What is counted.
    pub denominator: pb::DenominatorType,
    /// The count.
    pub value: u64,
}

/// Exposure summed to a period, per unit type and denominator.
pub type ExposureCells = BTreeMap<(Period, UnitType, pb::DenominatorType), u64>;

impl Store {
    /// Replaces the exposure of each record's (month, unit type, denominator), all or nothing.
    pub fn record_exposure(&self, records: &[Exposure]) -> Result<(), StoreError> {
        self.watched(|| {
            let _writing = self.write_gate()?;
            let mut batch = sled::Batch::default();
            for r in records {
                batch.insert(
                    &exposure_key(r.month, r.unit_type, r.denominator),
                    &r.value.to_be_bytes(),
                );
            }
            self.exposure.apply_batch(batch)?;
            Ok(())
        })
    }

    /// Exposure of `range` summed to `grain` periods, for the unit types in `units` (all when
    /// empty).
    pub fn exposure(
        &self,
        range: MonthRange,
        grain: Grain,
        units: &[u8],
    ) -> Result<ExposureCells, StoreError> {
        self.watched(|| {
            let start = range.from().index().to_be_bytes();
            let end = (range.to().index() + 1).to_be_bytes();
            let mut out = ExposureCells::new();
            for item in self.exposure.range(start..end) {
                let (key, value) = item?;
                let e = decode_exposure(&key, &value)?;
                if units.is_empty() || units.contains(&(e.unit_type as u8)) {
                    *out.entry((Period::of(e.month, grain), e.unit_type, e.denominator))
                        .or_default() += e.value;
                }
            }
            Ok(out)
        })
    }
}

/// Month index (big-endian, so months sort), unit type, denominator.
fn exposure_key(month: Month, unit: UnitType, denominator: pb::DenominatorType) -> [u8; 6] {
    let m = month.index().to_be_bytes();
    [m[0], m[1], m[2], m[3], unit as u8, denominator as u8]
}

fn decode_exposure(key: &[u8], value: &[u8]) -> Result<Exposure, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("exposure key {key:02x?}"));
    let k: [u8; 6] = key.try_into().map_err(|_| corrupt())?;
    Ok(Exposure {
        month: Month::from_index(u32::from_be_bytes([k[0], k[1], k[2], k[3]]))
            .ok_or_else(corrupt)?,
        unit_type: UnitType::try_from(i32::from(k[4])).map_err(|_| corrupt())?,
        denominator: pb::DenominatorType::try_from(i32::from(k[5])).map_err(|_| corrupt())?,
        value: decode_u64(value),
    })
}
