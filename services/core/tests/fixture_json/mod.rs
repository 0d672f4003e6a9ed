//! Reading the statistics fixtures (`tests/fixtures/stats/*.json`) that the Python generators
//! beside them write, shared by the fixture tests so each reads numbers the same way.

use serde_json::Value;

/// The parsed fixture file `name` under `tests/fixtures/stats/`.
pub fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A number, with the generators' "inf" / "-inf" for an open interval end (JSON has none).
pub fn f(v: &Value) -> f64 {
    match v.as_str() {
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// A count.
pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// An array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}
