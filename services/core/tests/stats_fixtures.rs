//! psonet-core's statistics against reference values computed independently with scipy and
//! numpy by `tests/fixtures/stats/make_fixtures.py` (committed beside `stats.json`).

use psonet_core::stats::clopper_pearson::clopper_pearson;
use psonet_core::stats::control_chart::{
    self, ChartKind, Direction, Rule, Signal, Subgroup, chart,
};
use psonet_core::stats::distribution::normal_quantile;
use psonet_core::stats::funnel::poisson_limit;
use psonet_core::stats::observed_expected::{Stratum, compare, expected};
use psonet_core::stats::overdispersion;
use psonet_core::stats::percentile::{Better, percentile_rank, quantile_type7};
use psonet_core::stats::pooled_rate::CountExposure;
use psonet_core::stats::{Interval, poisson_interval};
use serde_json::Value;

mod fixture_json;
use fixture_json::{f, floats, u};

/// Relative tolerance where the math is exact.
const EXACT: f64 = 1e-9;

fn fixtures() -> Value {
    fixture_json::load("stats.json")
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let scale = want.abs().max(1e-300);
    assert!(
        got == want || (got - want).abs() / scale <= EXACT,
        "{what}: got {got:e}, scipy {want:e} (relative error {:e})",
        (got - want).abs() / scale
    );
}

#[track_caller]
fn close_interval(got: Interval, want: &Value, what: &str) {
    close(got.lower, f(&want[0]), &format!("{what} lower"));
    close(got.upper, f(&want[1]), &format!("{what} upper"));
}

#[test]
fn poisson_intervals_match_scipy() {
    let all = fixtures();
    for case in all["poisson_intervals"].as_array().unwrap() {
        let (o, conf) = (u(&case["observed"]), f(&case["confidence"]));
        let tag = format!("O={o} at {conf}");
        close_interval(
            poisson_interval::garwood(o, conf),
            &case["garwood"],
            &format!("Garwood {tag}"),
        );
        close_interval(
            poisson_interval::mid_p(o, conf),
            &case["mid_p"],
            &format!("mid-P {tag}"),
        );
        close_interval(
            poisson_interval::byar(o, conf),
            &case["byar"],
            &format!("Byar {tag}"),
        );
    }
}

#[test]
fn normal_quantiles_match_scipy() {
    for case in fixtures()["normal_quantile"].as_array().unwrap() {
        close(normal_quantile(f(&case["p"])), f(&case["z"]), "z");
    }
}

#[test]
fn clopper_pearson_matches_scipy() {
    for case in fixtures()["clopper_pearson"].as_array().unwrap() {
        let (x, n, conf) = (
            u(&case["successes"]),
            u(&case["trials"]),
            f(&case["confidence"]),
        );
        let got = clopper_pearson(x, n, conf).expect("valid proportion");
        close_interval(got, &case["interval"], &format!("{x}/{n} at {conf}"));
    }
    assert_eq!(clopper_pearson(3, 2, 0.95), None);
    assert_eq!(clopper_pearson(0, 0, 0.95), None);
}

#[test]
fn percentile_ranks_and_quantiles_match_scipy_and_numpy() {
    let all = fixtures();
    for case in all["percentile_rank"].as_array().unwrap() {
        let (v, peers) = (f(&case["value"]), floats(&case["peers"]));
        let lower = percentile_rank(v, &peers, Better::Lower).unwrap();
        close(lower, f(&case["lower_is_better"]), &format!("rank of {v}"));
        let higher = percentile_rank(v, &peers, Better::Higher).unwrap();
        close(
            higher,
            f(&case["higher_is_better"]),
            &format!("rank of {v}"),
        );
    }
    for case in all["quantile_type7"].as_array().unwrap() {
        let (values, p) = (floats(&case["values"]), f(&case["p"]));
        let got = quantile_type7(&values, p).unwrap();
        close(got, f(&case["quantile"]), &format!("P{p} of {values:?}"));
    }
}

#[test]
fn funnel_limits_match_scipy() {
    for case in fixtures()["funnel"].as_array().unwrap() {
        let (target, exposure) = (f(&case["target"]), f(&case["exposure"]));
        for (p, want) in [0.001, 0.025, 0.975, 0.999]
            .iter()
            .zip(floats(&case["limits"]))
        {
            let got = poisson_limit(target, exposure, *p).unwrap();
            close(got, want, &format!("limit {p} at T={exposure}, θ={target}"));
        }
    }
}

fn units(v: &Value) -> Vec<CountExposure> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|pair| CountExposure {
            events: u(&pair[0]),
            exposure: f(&pair[1]),
        })
        .collect()
}

#[test]
fn overdispersion_matches_numpy() {
    for case in fixtures()["overdispersion"].as_array().unwrap() {
        let got = overdispersion::estimate(&units(&case["units"]), f(&case["target"])).unwrap();
        close(got.phi, f(&case["phi"]), "phi");
        close(got.tau2, f(&case["tau2"]), "tau2");
        let target = f(&case["target"]);
        for l in case["limits"].as_array().unwrap() {
            let (t, z) = (f(&l["exposure"]), normal_quantile(f(&l["p"])));
            let tag = format!("limit at T={t}, p={}", l["p"]);
            close(got.additive_limit(target, t, z), f(&l["additive"]), &tag);
            close(
                got.multiplicative_limit(target, t, z),
                f(&l["multiplicative"]),
                &tag,
            );
        }
    }
}

fn signal(v: &Value) -> Signal {
    let rule = match v[0].as_str().unwrap() {
        "beyond_limits" => Rule::BeyondLimits,
        "shift" => Rule::Shift,
        "trend" => Rule::Trend,
        other => panic!("unknown rule {other}"),
    };
    let direction = match v[1].as_str().unwrap() {
        "up" => Direction::Up,
        _ => Direction::Down,
    };
    Signal {
        rule,
        direction,
        first: u(&v[2]) as usize,
        last: u(&v[3]) as usize,
    }
}

#[test]
fn control_charts_and_signals_match_numpy() {
    for case in fixtures()["control_chart"].as_array().unwrap() {
        let kind = match case["kind"].as_str().unwrap() {
            "u" => ChartKind::U,
            _ => ChartKind::P,
        };
        let laney = case["laney"].as_bool().unwrap();
        let subgroups: Vec<Subgroup> = case["counts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(floats(&case["sizes"]))
            .map(|(c, size)| Subgroup { count: u(c), size })
            .collect();
        let got = chart(kind, &subgroups, laney).unwrap();
        let tag = format!("{kind:?} chart, Laney {laney}");
        close(got.centre, f(&case["centre"]), &tag);
        close(got.sigma_z, f(&case["sigma_z"]), &tag);
        for (i, point) in got.points.iter().enumerate() {
            close(point.lower, f(&case["lower"][i]), &format!("{tag} LCL {i}"));
            close(point.upper, f(&case["upper"][i]), &format!("{tag} UCL {i}"));
        }
        let want: Vec<Signal> = case["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(signal)
            .collect();
        assert_eq!(control_chart::signals(&got), want, "{tag}");
    }
}

#[test]
fn observed_expected_matches_scipy() {
    for case in fixtures()["observed_expected"].as_array().unwrap() {
        let strata: Vec<Stratum> = case["strata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Stratum {
                peer_rate: f(&s[0]),
                exposure: f(&s[1]),
            })
            .collect();
        let e = expected(&strata);
        close(e, f(&case["expected"]), "E");
        let o = u(&case["observed"]);
        let got = compare(o, e).unwrap();
        close(got.ratio, f(&case["ratio"]), "O/E");
        close(got.p_value, f(&case["p_value"]), &format!("p for O={o}"));
        close_interval(
            got.interval,
            &case["interval"],
            &format!("O/E CI for O={o}"),
        );
    }
    assert_eq!(compare(3, 0.8), None, "NHSN: no ratio when E < 1");
}
