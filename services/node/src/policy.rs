//! Facility policy: which queries are auto-approved for which principals.
//!
//! The gateway is the only caller of the federation listener, but it asks on behalf of a
//! querier (a partner, a facility, or itself). A facility decides in its node config which
//! queriers may ask which kinds of query — the dimensions a query groups or filters by — and
//! anything no rule approves is refused with `PERMISSION_DENIED` naming the rule that came
//! closest. With no rules configured every query is approved (the other disclosure controls
//! still apply).

use psonet_core::disclosure::short;
use psonet_core::pb::Dimension;
use psonet_core::query::{AggregateQuery, DIMENSIONS};
use psonet_serve::identity::{Principal, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One rule of the node config's `[[policy.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Name, quoted in refusals and the audit trail.
    pub name: String,
    /// Queriers it approves, as paths under `spiffe://<network>/`: `gateway`, `partner/<id>`,
    /// `facility/<id>`, `partner/*`, `facility/*`, or `*` for anyone.
    pub principals: Vec<String>,
    /// Dimensions a query may group or filter by, lowercase (`category`, `harm`, `unit_type`,
    /// …), or `*` for all. Every query may use the period.
    pub dimensions: Vec<String>,
}

/// The checked policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    network: String,
    rules: Vec<CheckedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedRule {
    name: String,
    principals: Vec<String>,
    /// `None`: every dimension.
    dimensions: Option<Vec<Dimension>>,
}

/// A query no rule approves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct PolicyRefusal {
    /// The rule that came closest, if any names the querier.
    pub rule: Option<String>,
    /// Why, in plain words.
    pub why: String,
}

impl PolicyRefusal {
    /// `PERMISSION_DENIED` with an `ErrorInfo` naming the rule.
    pub fn into_status(self) -> Status {
        let mut metadata = HashMap::new();
        if let Some(rule) = &self.rule {
            metadata.insert("rule".to_string(), rule.clone());
        }
        let details = ErrorDetails::with_error_info("POLICY_DENIED", "psonet", metadata);
        Status::with_error_details(Code::PermissionDenied, self.why, details)
    }
}

impl Policy {
    /// Checks `rules` of `network`; `Err` gives the config key and why.
    pub fn new(network: &str, rules: Vec<PolicyRule>) -> Result<Self, (String, String)> {
        let mut checked = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            let key = |field: &str| format!("policy.rules[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            for p in &rule.principals {
                if !valid_pattern(network, p) {
                    return Err((
                        key("principals"),
                        format!(
                            "{p:?} is not gateway, partner/<id>, facility/<id>, partner/*, facility/* or *"
                        ),
                    ));
                }
            }
            let dimensions = if rule.dimensions.iter().any(|d| d == "*") {
                None
            } else {
                let parsed: Result<Vec<Dimension>, String> =
                    rule.dimensions.iter().map(|d| dimension(d)).collect();
                Some(parsed.map_err(|e| (key("dimensions"), e))?)
            };
            checked.push(CheckedRule {
                name: rule.name,
                principals: rule.principals,
                dimensions,
            });
        }
        Ok(Self {
            network: network.to_string(),
            rules: checked,
        })
    }

    /// The name of the rule that approves `query` for `querier`, or why none does.
    pub fn approve(
        &self,
        querier: &Principal,
        query: &AggregateQuery,
    ) -> Result<String, PolicyRefusal> {
        if self.rules.is_empty() {
            return Ok("default (no rules configured)".into());
        }
        let used: Vec<Dimension> = DIMENSIONS
            .into_iter()
            .filter(|d| query.group_by.contains(d) || query.filter.contains_key(d))
            .collect();
        let mut closest = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.names(&self.network, querier))
        {
            let missing: Vec<&str> = match &rule.dimensions {
                None => Vec::new(),
                Some(allowed) => used
                    .iter()
                    .filter(|d| !allowed.contains(d))
                    .map(|d| short(*d))
                    .collect(),
            };
            if missing.is_empty() {
                return Ok(rule.name.clone());
            }
            closest.get_or_insert((rule.name.clone(), missing.join(", ")));
        }
        Err(match closest {
            Some((rule, missing)) => PolicyRefusal {
                why: format!("policy rule {rule:?} does not approve {missing} for {querier}"),
                rule: Some(rule),
            },
            None => PolicyRefusal {
                why: format!("no policy rule of this facility approves queries for {querier}"),
                rule: None,
            },
        })
    }
}

impl CheckedRule {
    fn names(&self, network: &str, p: &Principal) -> bool {
        p.network == network
            && self
                .principals
                .iter()
                .any(|pattern| match (pattern.as_str(), &p.role) {
                    ("*", _) => true,
                    ("gateway", Role::Gateway) => true,
                    ("partner/*", Role::Partner(_)) | ("facility/*", Role::Facility(_)) => true,
                    (pattern, Role::Partner(id)) => pattern == format!("partner/{id}"),
                    (pattern, Role::Facility(id)) => pattern == format!("facility/{id}"),
                    _ => false,
                })
    }
}

fn valid_pattern(network: &str, pattern: &str) -> bool {
    matches!(pattern, "*" | "gateway" | "partner/*" | "facility/*")
        || Principal::from_uri(&format!("spiffe://{network}/{pattern}")).is_ok()
}

fn dimension(name: &str) -> Result<Dimension, String> {
    Dimension::from_str_name(&format!("DIMENSION_{}", name.to_uppercase()))
        .filter(|d| *d != Dimension::Unspecified)
        .ok_or_else(|| format!("{name:?} is not a dimension (category, harm, unit_type, …) or *"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::pb;

    fn rule(name: &str, principals: &[&str], dimensions: &[&str]) -> PolicyRule {
        PolicyRule {
            name: name.into(),
            principals: principals.iter().map(|s| s.to_string()).collect(),
            dimensions: dimensions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn query(group_by: &[Dimension]) -> AggregateQuery {
        AggregateQuery::from_wire(&pb::AggregateRequest {
            month_from: "2025-01".into(),
            month_to: "2025-01".into(),
            group_by: group_by.iter().map(|d| *d as i32).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn rules_approve_their_principals_and_dimensions_only() {
        let policy = Policy::new(
            "net",
            vec![
                rule("partners-benchmark", &["partner/*"], &["category", "harm"]),
                rule("gateway-all", &["gateway"], &["*"]),
            ],
        )
        .unwrap();
        let partner = Principal::partner("net", "acme");
        let by_harm = query(&[Dimension::Category, Dimension::Harm]);
        assert_eq!(
            policy.approve(&partner, &by_harm).unwrap(),
            "partners-benchmark"
        );
        let by_age = query(&[Dimension::AgeBand]);
        let refusal = policy.approve(&partner, &by_age).unwrap_err();
        assert_eq!(refusal.rule.as_deref(), Some("partners-benchmark"));
        assert!(refusal.why.contains("AGE_BAND"), "{}", refusal.why);
        assert_eq!(
            policy.approve(&Principal::gateway("net"), &by_age).unwrap(),
            "gateway-all"
        );
        let facility = Principal::facility("net", "f1");
        assert_eq!(policy.approve(&facility, &by_harm).unwrap_err().rule, None);
    }

    #[test]
    fn bad_rules_are_refused_at_load() {
        let bad = |r| Policy::new("net", vec![r]).unwrap_err().0;
        assert_eq!(
            bad(rule("x", &["partners"], &["*"])),
            "policy.rules[0].principals"
        );
        assert_eq!(
            bad(rule("x", &["*"], &["colour"])),
            "policy.rules[0].dimensions"
        );
        assert_eq!(bad(rule(" ", &["*"], &["*"])), "policy.rules[0].name");
    }
}
