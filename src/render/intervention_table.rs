//! A facility's interventions and their before/after for people (tables) and programs (CSV):
//! what `psonet intervention` prints.

use anyhow::Result;
use psonet_core::pb;
use std::fmt::Write as _;

/// One intervention as a line: what was done to it, and what it is now.
pub fn one_line(verb: &str, i: pb::Intervention) -> String {
    format!(
        "{verb} {} (practice {}, from {}{}, revision {})\n",
        i.intervention_id,
        i.practice_code,
        i.start_month,
        if i.end_month.is_empty() {
            String::new()
        } else {
            format!(" to {}", i.end_month)
        },
        i.revision
    )
}

/// The register as a table.
pub fn list_table(r: &pb::ListInterventionsResponse) -> String {
    let mut out = format!(
        "{:<20} {:<20} {:<8} {:<8} {:>3}  title\n",
        "intervention", "practice", "start", "end", "rev"
    );
    for i in &r.interventions {
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<8} {:<8} {:>3}  {}",
            i.intervention_id, i.practice_code, i.start_month, i.end_month, i.revision, i.title
        );
    }
    out
}

/// The before/after for people: counts, rate ratio, ITS and the monthly series.
pub fn effect_table(r: &pb::InterventionEffectResponse) -> String {
    let metric = r.metric.clone().unwrap_or_default();
    let i = r.intervention.clone().unwrap_or_default();
    let c = r.counts.unwrap_or_default();
    let per = |events: u64, exposure: u64| {
        if exposure == 0 {
            0.0
        } else {
            events as f64 / exposure as f64 * metric.multiplier
        }
    };
    let mut out = format!(
        "{} ({}) from {}, {} {}, {} months each side (start month left out)\n\n",
        i.intervention_id,
        i.practice_code,
        i.start_month,
        metric.name,
        metric.unit,
        r.window_months
    );
    let _ = writeln!(
        out,
        "before  {:>6} events  {:>10} exposure  {:>2} months  rate {:.2}",
        c.before_events,
        c.before_exposure,
        c.before_months,
        per(c.before_events, c.before_exposure)
    );
    let _ = writeln!(
        out,
        "after   {:>6} events  {:>10} exposure  {:>2} months  rate {:.2}",
        c.after_events,
        c.after_exposure,
        c.after_months,
        per(c.after_events, c.after_exposure)
    );
    if let Some(rr) = &r.rate_ratio {
        let e = rr.exact.unwrap_or_default();
        let _ = writeln!(
            out,
            "rate ratio after/before {:.3} (exact 95% {:.3} to {:.3}), mid-P p = {:.4}",
            rr.ratio, e.lower, e.upper, rr.mid_p_value
        );
    }
    match &r.its {
        Some(its) => {
            let l = its.level_change_interval.unwrap_or_default();
            let t = its.trend_change_interval.unwrap_or_default();
            let _ = writeln!(
                out,
                "interrupted time series: level change {:.3} (95% {:.3} to {:.3}), trend change \
                 {:.4}/month (95% {:.4} to {:.4}), dispersion {:.2}",
                its.level_change,
                l.lower,
                l.upper,
                its.trend_change,
                t.lower,
                t.upper,
                its.dispersion
            );
        }
        None => {
            let _ = writeln!(
                out,
                "interrupted time series not fitted: {}",
                r.its_not_fitted
            );
        }
    }
    let _ = writeln!(out, "\nmonth     events  exposure    rate  fitted");
    for m in &r.series {
        let _ = writeln!(
            out,
            "{:<8} {:>7} {:>9} {:>7.2} {:>7.2}",
            m.month,
            m.events,
            m.exposure,
            per(m.events, m.exposure),
            m.fitted_rate
        );
    }
    out
}

/// The before/after series as CSV, one month a row.
pub fn effect_csv(r: &pb::InterventionEffectResponse) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "month",
        "events",
        "exposure",
        "fitted_rate",
        "counterfactual_rate",
    ])?;
    for m in &r.series {
        w.serialize((
            &m.month,
            m.events,
            m.exposure,
            m.fitted_rate,
            m.counterfactual_rate,
        ))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
