//! The learning loop's statistics (issue 14) against reference values computed independently
//! with statsmodels and scipy by `tests/fixtures/stats/make_learning_loop_fixtures.py`
//! (committed beside `learning_loop.json`, with the library versions it ran under).
//!
//! Each test prints the largest relative error it saw (`cargo test -- --nocapture`).

use psonet_core::stats::Interval;
use psonet_core::stats::meta_analysis::{MetaAnalysis, Tau2Estimator, random_effects};
use psonet_core::stats::pooled_rate::CountExposure;
use psonet_core::stats::rate_ratio::{BeforeAfter, LogRateRatio, rate_ratio, ratio_of_rate_ratios};
use psonet_core::stats::segmented_poisson::{self, SeriesMonth};
use serde_json::Value;

mod fixture_json;
use fixture_json::{f, floats, u};

/// The bar: relative agreement with the independent implementation.
const TOLERANCE: f64 = 1e-6;

fn fixtures() -> Value {
    fixture_json::load("learning_loop.json")
}

/// The largest relative error seen by one test.
#[derive(Default)]
struct Worst(f64);

impl Worst {
    #[track_caller]
    fn close(&mut self, got: f64, want: f64, what: &str) {
        if got == want {
            return;
        }
        let error = (got - want).abs() / want.abs().max(1e-300);
        self.0 = self.0.max(error);
        assert!(
            error <= TOLERANCE,
            "{what}: got {got:e}, reference {want:e} (relative error {error:e})"
        );
    }

    #[track_caller]
    fn interval(&mut self, got: Interval, want: &Value, what: &str) {
        self.close(got.lower, f(&want[0]), &format!("{what} lower"));
        self.close(got.upper, f(&want[1]), &format!("{what} upper"));
    }

    fn report(&self, statistic: &str) {
        eprintln!(
            "{statistic}: largest relative error {:.2e} against statsmodels/scipy",
            self.0
        );
    }
}

/// A case's `after` and `before` pairs [events, exposure].
fn before_after(after: &Value, before: &Value) -> BeforeAfter {
    BeforeAfter {
        before: CountExposure {
            events: u(&before[0]),
            exposure: f(&before[1]),
        },
        after: CountExposure {
            events: u(&after[0]),
            exposure: f(&after[1]),
        },
    }
}

/// A generator row [after events, after exposure, before events, before exposure].
fn from_row(row: &Value) -> BeforeAfter {
    let r = floats(row);
    BeforeAfter {
        before: CountExposure {
            events: r[2] as u64,
            exposure: r[3],
        },
        after: CountExposure {
            events: r[0] as u64,
            exposure: r[1],
        },
    }
}

#[test]
fn exact_rate_ratios_match_scipy() {
    let mut worst = Worst::default();
    for case in fixtures()["rate_ratio"].as_array().unwrap() {
        let counts = before_after(&case["after"], &case["before"]);
        let conf = f(&case["confidence"]);
        let tag = format!("{:?} at {conf}", counts);
        let got = rate_ratio(counts, conf).expect("events on one side at least");
        worst.close(got.ratio, f(&case["ratio"]), &tag);
        worst.interval(got.exact, &case["exact"], &format!("exact {tag}"));
        worst.interval(got.mid_p, &case["mid_p"], &format!("mid-P {tag}"));
        worst.close(
            got.mid_p_value,
            f(&case["mid_p_value"]),
            &format!("p {tag}"),
        );
        let log = LogRateRatio::from_counts(counts).expect("events on one side at least");
        worst.close(log.estimate, f(&case["log"][0]), &format!("log RR {tag}"));
        worst.close(log.variance, f(&case["log"][1]), &format!("var {tag}"));
        assert_eq!(Some(log.continuity_corrected), case["log"][2].as_bool());
    }
    for case in fixtures()["ratio_of_rate_ratios"].as_array().unwrap() {
        let (own, comparison) = (from_row(&case["own"]), from_row(&case["comparison"]));
        let got = ratio_of_rate_ratios(own, comparison, f(&case["confidence"])).unwrap();
        worst.close(got.ratio, f(&case["ratio"]), "ratio of rate ratios");
        worst.interval(got.interval, &case["interval"], "ratio of rate ratios");
    }
    worst.report("rate ratio (exact and mid-P intervals, log RR, ratio of ratios)");
}

#[test]
fn segmented_poisson_matches_statsmodels_glm() {
    let mut worst = Worst::default();
    for case in fixtures()["segmented_poisson"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let months: Vec<SeriesMonth> = floats(&case["times"])
            .into_iter()
            .zip(case["events"].as_array().unwrap())
            .zip(floats(&case["exposure"]))
            .map(|((time, events), exposure)| SeriesMonth {
                time,
                events: u(events),
                exposure,
            })
            .collect();
        let fit = segmented_poisson::fit(&months, f(&case["start"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let names = ["b0", "b1 trend", "b2 level", "b3 trend change"];
        for (j, c) in fit.coefficients().iter().enumerate() {
            let tag = format!("{name}: {}", names[j]);
            worst.close(c.estimate, f(&case["params"][j]), &tag);
            worst.close(c.standard_error, f(&case["bse"][j]), &format!("{tag} SE"));
            worst.close(
                c.adjusted_standard_error,
                f(&case["bse_adjusted"][j]),
                &format!("{tag} adjusted SE"),
            );
            worst.interval(
                c.interval(0.95, true),
                &case["conf_int_adjusted"][j],
                &format!("{tag} adjusted 95% CI"),
            );
        }
        worst.close(fit.pearson_chi2, f(&case["pearson_chi2"]), name);
        worst.close(fit.deviance, f(&case["deviance"]), name);
        worst.close(fit.dispersion, f(&case["scale"]), name);
        assert_eq!(fit.residual_df as u64, u(&case["df_resid"]), "{name}");
        for point in case["rates"].as_array().unwrap() {
            let t = f(&point["time"]);
            worst.close(
                fit.rate(t),
                f(&point["rate"]),
                &format!("{name}: rate at {t}"),
            );
        }
    }
    worst.report("segmented Poisson regression (coefficients, SEs, adjusted SEs, CIs)");
}

fn check_pooled(worst: &mut Worst, got: &MetaAnalysis, want: &Value, tag: &str) {
    worst.close(got.tau2, f(&want["tau2"]), &format!("{tag} τ²"));
    worst.close(got.mean, f(&want["mean"]), &format!("{tag} mean"));
    worst.close(got.standard_error, f(&want["se"]), &format!("{tag} SE"));
    worst.interval(got.interval, &want["interval"], &format!("{tag} Wald CI"));
    worst.close(
        got.hartung_knapp_standard_error,
        f(&want["se_hk"]),
        &format!("{tag} HK SE"),
    );
    worst.interval(
        got.hartung_knapp,
        &want["hartung_knapp"],
        &format!("{tag} HK CI"),
    );
    match (&got.prediction, want.get("prediction")) {
        (Some(p), Some(w)) => worst.interval(*p, w, &format!("{tag} prediction")),
        (None, None) => {}
        (g, w) => panic!("{tag}: prediction interval {g:?}, reference {w:?}"),
    }
    for (i, (g, w)) in got.weights.iter().zip(floats(&want["weights"])).enumerate() {
        worst.close(*g, w, &format!("{tag} weight {i}"));
    }
}

#[test]
fn meta_analysis_matches_statsmodels() {
    let mut worst = Worst::default();
    for case in fixtures()["meta_analysis"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let conf = f(&case["confidence"]);
        let studies: Vec<LogRateRatio> = match case["counts"].as_array() {
            // From counts: the Rust side applies its own continuity correction and exclusion.
            Some(rows) => rows
                .iter()
                .filter_map(|row| LogRateRatio::from_counts(from_row(row)))
                .collect(),
            None => floats(&case["effects"])
                .into_iter()
                .zip(floats(&case["variances"]))
                .map(|(estimate, variance)| LogRateRatio {
                    estimate,
                    variance,
                    continuity_corrected: false,
                })
                .collect(),
        };
        let effects = floats(&case["effects"]);
        assert_eq!(studies.len(), effects.len(), "{name}: facilities pooled");
        for (i, s) in studies.iter().enumerate() {
            worst.close(s.estimate, effects[i], &format!("{name}: y{i}"));
            worst.close(
                s.variance,
                f(&case["variances"][i]),
                &format!("{name}: v{i}"),
            );
            if let Some(flag) = case["corrected"].get(i) {
                assert_eq!(Some(s.continuity_corrected), flag.as_bool(), "{name}: {i}");
            }
        }
        for (estimator, key) in [
            (Tau2Estimator::DerSimonianLaird, "dl"),
            (Tau2Estimator::Reml, "reml"),
        ] {
            let got = random_effects(&studies, estimator, conf)
                .unwrap_or_else(|e| panic!("{name} {key}: {e}"));
            let tag = format!("{name} ({key})");
            check_pooled(&mut worst, &got, &case[key], &tag);
            worst.close(got.q, f(&case["q"]), &format!("{tag} Q"));
            worst.close(got.i2, f(&case["i2"]), &format!("{tag} I²"));
            worst.close(got.fixed_mean, f(&case["fixed_mean"]), &tag);
            worst.close(got.fixed_standard_error, f(&case["fixed_se"]), &tag);
        }
    }
    worst
        .report("meta-analysis (DL and REML τ², pooled mean, Wald/HK/prediction intervals, Q, I²)");
}
