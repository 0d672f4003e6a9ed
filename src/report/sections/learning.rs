//! The learning loop's part of a partner's report: the guidance in force with its adoption
//! (`ListGuidance`, `GuidanceAdoption`), and for every practice the guidance recommends, its
//! effect on each metric it names (`PracticeEffect`) — the pooled rate ratios of adopters and
//! non-adopters, the forest plot and the table of its numbers.

use super::figures::rate;
use crate::render::forest_plot;
use crate::report::calls::{LearningAnswers, Outcome, PracticeAnswer};
use crate::report::html::{Table, esc, figure};
use crate::report::redact::Redactor;
use psonet_core::pb;

/// The whole part, as one section of the document.
pub fn render(learning: &LearningAnswers, redactor: &Redactor) -> String {
    let mut out = String::from(
        "<section class=\"learning\" id=\"learning\"><h2>Guidance and practice effects</h2>",
    );
    out += &match &learning.guidance {
        Ok(answer) => guidance(&answer.response, &learning.adoption, redactor),
        Err(missing) => super::missing(missing, redactor),
    };
    for effect in &learning.effects {
        out += &practice(effect, redactor);
    }
    out + "</section>"
}

/// The guidance in force, each item with its adoption (or why that count is withheld).
fn guidance(
    list: &pb::ListGuidanceResponse,
    adoption: &Outcome<pb::GuidanceAdoptionResponse>,
    redactor: &Redactor,
) -> String {
    let mut out = String::from("<h3>Guidance in force</h3>");
    if list.items.is_empty() {
        return out + "<p>The PSO has published no guidance.</p>";
    }
    let rows = adoption.as_ref().map(|a| &a.response.rows).ok();
    let mut table =
        Table::new("Guidance in force and how many facilities acknowledged and adopted it")
            .text("Guidance")
            .text("Kind")
            .number("Version")
            .text("Published")
            .text("Practice")
            .text("Metrics")
            .text("Acknowledged / adopted");
    for item in &list.items {
        let taken = rows
            .and_then(|rows| rows.iter().find(|r| r.guidance_id == item.guidance_id))
            .map_or_else(
                || "not asked".to_string(),
                |r| {
                    if r.withheld {
                        format!("withheld: {}", redactor.clean(&r.withheld_reason))
                    } else {
                        format!(
                            "{} / {} of {} facilities answering",
                            r.acknowledged, r.adopted, r.facilities_answering
                        )
                    }
                },
            );
        table.row(vec![
            item.title.clone(),
            kind(item.kind).into(),
            item.version.to_string(),
            item.published.clone(),
            item.practice_code.clone(),
            item.metric_ids.join(", "),
            taken,
        ]);
    }
    out += &table.html("guidance");
    if let Err(missing) = adoption {
        out += &super::missing(missing, redactor);
    }
    out
}

fn kind(kind: i32) -> &'static str {
    match pb::GuidanceKind::try_from(kind) {
        Ok(pb::GuidanceKind::SafetyAlert) => "safety alert",
        Ok(pb::GuidanceKind::BestPractice) => "best practice",
        _ => "guidance",
    }
}

/// One practice's effect on one metric: the pooled figures in words, the forest plot, its table.
fn practice(answer: &PracticeAnswer, redactor: &Redactor) -> String {
    let mut out = format!(
        "<h3>{}: {} ({})</h3>",
        esc(&answer.practice),
        esc(&answer.metric),
        esc(&answer.guidance)
    );
    let effect = match &answer.effect {
        Ok(a) => &a.response,
        Err(missing) => return out + &super::missing(missing, redactor),
    };
    if let Some(a) = &effect.adopters {
        out += &format!(
            "<p>{}</p>",
            esc(&pooled_words("Adopters", a, effect.window_months))
        );
    }
    match &effect.non_adopters {
        Some(n) => {
            out += &format!(
                "<p>{}</p>",
                esc(&pooled_words("Non-adopters", n, effect.window_months))
            );
            let i = effect.ratio_of_rate_ratios_interval.unwrap_or_default();
            out += &format!(
                "<p>Adopters' change over non-adopters': {} (95% CI {} to {}).</p>",
                rate(effect.ratio_of_rate_ratios),
                rate(i.lower),
                rate(i.upper)
            );
        }
        None => {
            out += "<p>Fewer than two non-adopters had usable monthly counts: no comparison.</p>"
        }
    }
    out += &figure(
        forest_plot::forest_svg(effect, &answer.practice),
        "Each facility's rate ratio after/before its own start month (squares sized by weight) \
         and the pooled ratios (diamonds), on a log scale",
        &studies(effect),
    );
    if !effect.excluded.is_empty() {
        out += &format!(
            "<p class=\"note\">Left out: {}.</p>",
            esc(&redactor.clean(&effect.excluded.join(", ")))
        );
    }
    out
}

/// `Adopters (4 facilities): rate ratio 0.66 (Hartung–Knapp 95% CI 0.61 to 0.71) …`.
fn pooled_words(who: &str, p: &pb::PooledRateRatio, window: u32) -> String {
    let i = p.interval.unwrap_or_default();
    let prediction = p
        .prediction
        .map(|q| {
            format!(
                ", prediction interval {} to {}",
                rate(q.lower),
                rate(q.upper)
            )
        })
        .unwrap_or_default();
    format!(
        "{who} ({} facilities): rate ratio after/before {} (Hartung–Knapp 95% CI {} to {}), \
         {window} months each side; I² {:.0}%, τ² {:.4}{prediction}.",
        p.facilities,
        rate(p.ratio),
        rate(i.lower),
        rate(i.upper),
        p.i2 * 100.0,
        p.tau2
    )
}

/// The forest plot's numbers: one row per facility (pseudonyms) and one per pool.
fn studies(effect: &pb::PracticeEffectResponse) -> Table {
    let mut table = Table::new("Forest plot data: rate ratio after/before, 95% interval, weight")
        .text("Facility")
        .text("Group")
        .number("Rate ratio")
        .number("95% lower")
        .number("95% upper")
        .number("Weight");
    for (pool, group) in [
        (&effect.adopters, "adopter"),
        (&effect.non_adopters, "non-adopter"),
    ] {
        let Some(pool) = pool else { continue };
        for s in &pool.studies {
            let i = s.interval.unwrap_or_default();
            table.row(vec![
                s.facility.clone(),
                group.into(),
                rate(s.ratio),
                rate(i.lower),
                rate(i.upper),
                format!("{:.2}", s.weight),
            ]);
        }
        let i = pool.interval.unwrap_or_default();
        table.emphasised_row(vec![
            format!("pooled ({group}s)"),
            group.into(),
            rate(pool.ratio),
            rate(i.lower),
            rate(i.upper),
            String::new(),
        ]);
    }
    table
}
