//! Benchmark answers for programs: the whole response as JSON, or its rows as CSV.
//!
//! JSON is the proto3 JSON mapping with proto field names and enum names, made through the
//! API's own descriptors, so it follows the `.proto` files without a hand-kept mapping. CSV has
//! one row per category row, funnel point (facility) or chart point (month).

use anyhow::{Context, Result};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use psonet_core::pb;

/// `message`, the API message `psonet.v1.<name>`, as pretty JSON.
pub fn json<T: prost::Message>(message: &T, name: &str) -> Result<String> {
    let pool = DescriptorPool::decode(psonet_proto::FILE_DESCRIPTOR_SET)?;
    let desc = pool
        .get_message_by_name(&format!("psonet.v1.{name}"))
        .with_context(|| format!("no descriptor for {name}"))?;
    let mut dynamic = DynamicMessage::new(desc);
    dynamic.transcode_from(message)?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    let value = dynamic.serialize_with_options(serde_json::value::Serializer, &options)?;
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// The metric catalogue, one metric a row.
pub fn metrics_csv(response: &pb::ListMetricsResponse) -> Result<String> {
    written(|w| {
        w.write_record(["metric", "version", "name", "unit", "multiplier"])?;
        for x in &response.metrics {
            w.serialize((&x.id, x.version, &x.name, &x.unit, x.multiplier))?;
        }
        Ok(())
    })
}

/// The category rows of a network benchmark, one month and category a row; a withheld row
/// has empty figures and its reason. `suppressed_cells` (how many facility cells a lower bound
/// lacks) is a column only for sums of node-suppressed answers: exact sums lack none.
pub fn category_rows_csv(response: &pb::NetworkBenchmarkResponse) -> Result<String> {
    written(|w| {
        let mut header = vec![
            "month",
            "category",
            "events",
            "patient_days",
            "rate_per_1000_patient_days",
            "contributing_facilities",
            "withheld_reason",
        ];
        let lower_bounds = !response.exact && response.noise_sd == 0.0;
        if lower_bounds {
            header.push("suppressed_cells");
        }
        w.write_record(&header)?;
        for row in &response.rows {
            let category =
                pb::EventCategory::try_from(row.category).map_or("?", |c| c.as_str_name());
            let figure = |v: u64| (!row.withheld).then_some(v);
            let mut record = vec![
                row.month.clone(),
                category.to_string(),
                cell(figure(row.events)),
                cell(figure(row.patient_days)),
                cell(row.rate_per_1000_patient_days),
                cell(figure(u64::from(row.contributing_facilities))),
                row.withheld_reason.clone(),
            ];
            if lower_bounds {
                record.push(row.suppressed_cells.to_string());
            }
            w.write_record(&record)?;
        }
        Ok(())
    })
}

/// A CSV field: the value, or empty when there is none.
fn cell<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A metric's funnel, one facility a row with its limits and position.
pub fn funnel_csv(bench: &pb::MetricBenchmark) -> Result<String> {
    written(|w| {
        w.write_record([
            "facility",
            "is_caller",
            "events",
            "exposure",
            "rate",
            "lower_998",
            "lower_95",
            "upper_95",
            "upper_998",
            "position",
        ])?;
        for p in &bench.funnel {
            let l = p.limits.unwrap_or_default();
            let position =
                pb::FunnelPosition::try_from(p.position).map_or("?", |x| x.as_str_name());
            w.serialize((
                &p.facility,
                p.is_caller,
                p.events,
                p.exposure,
                p.rate,
                l.lower_998,
                l.lower_95,
                l.upper_95,
                l.upper_998,
                position,
            ))?;
        }
        Ok(())
    })
}

/// A control chart, one month a row with its centre and limits.
pub fn control_chart_csv(chart: &pb::ControlChart) -> Result<String> {
    written(|w| {
        w.write_record([
            "month",
            "released",
            "events",
            "exposure",
            "rate",
            "centre",
            "lower",
            "upper",
            "withheld_reason",
        ])?;
        for p in &chart.points {
            w.serialize((
                &p.month,
                p.released,
                p.events,
                p.exposure,
                p.rate,
                chart.centre,
                p.lower,
                p.upper,
                &p.withheld_reason,
            ))?;
        }
        Ok(())
    })
}

/// The CSV text `fill` writes.
fn written(fill: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> Result<()>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    fill(&mut w)?;
    Ok(String::from_utf8(w.into_inner()?)?)
}
