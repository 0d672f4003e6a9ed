//! Proof of consistency: random events, retries and amendments against a real sled store;
//! every aggregate must equal a brute-force recount over the events, computed here
//! independently of the counter families and the query planner.

use proptest::prelude::*;
use psonet_core::event::Event;
use psonet_core::month::Month;
use psonet_core::pb::{self, Dimension as D};
use psonet_core::query::AggregateQuery;
use psonet_core::wire::event_from_wire;
use psonet_node::store::{AmendOutcome, Store};
use std::collections::{BTreeMap, HashMap};

const MONTHS: [&str; 3] = ["2025-11", "2025-12", "2026-01"];

fn now() -> Month {
    "2026-11".parse().unwrap()
}

/// Random events from a small space, so keys collide (retries) and cells fill up.
fn wire_event() -> impl Strategy<Value = pb::Event> {
    (
        0..25u32,
        prop::sample::select(vec![1, 2, 3]),
        prop::collection::btree_set(prop::sample::select(vec![3, 5, 7, 12]), 1..3),
        1..7i32,
        0..3usize,
        prop::sample::select(vec![5, 6, 12]),
        0..3i32,
        0..3i32,
        prop::collection::btree_set(1..4i32, 0..3),
    )
        .prop_map(
            |(key, event_type, categories, harm, month, unit, age, sex, factors)| pb::Event {
                idempotency_key: format!("k{key}"),
                event_type,
                categories: categories.into_iter().collect(),
                harm: if event_type == 1 { harm } else { 0 },
                discovery_month: MONTHS[month].into(),
                unit_type: unit,
                age_band: age,
                sex,
                contributing_factors: factors.into_iter().collect(),
                ..Default::default()
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Submit(Vec<pb::Event>),
    Amend(Box<pb::Event>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec(wire_event(), 1..20).prop_map(Op::Submit),
        1 => wire_event().prop_map(|e| Op::Amend(Box::new(e))),
    ]
}

fn query() -> impl Strategy<Value = pb::AggregateRequest> {
    let dims = vec![
        D::Category,
        D::EventType,
        D::Harm,
        D::UnitType,
        D::AgeBand,
        D::Sex,
        D::ContributingFactor,
    ];
    (
        prop::sample::subsequence(dims, 0..4),
        0..4i32,
        prop::option::of(prop::sample::select(vec![3, 5, 7, 12])),
        prop::option::of(prop::sample::select(vec![5, 6, 12])),
        prop::option::of(1..4i32),
    )
        .prop_map(
            |(group_by, grain, category, unit, factor)| pb::AggregateRequest {
                month_from: MONTHS[0].into(),
                month_to: MONTHS[2].into(),
                time_grain: grain,
                group_by: group_by.into_iter().map(|d| d as i32).collect(),
                filter: Some(pb::AggregateFilter {
                    categories: category.into_iter().collect(),
                    unit_types: unit.into_iter().collect(),
                    contributing_factors: factor.into_iter().collect(),
                    ..Default::default()
                }),
                querier: String::new(),
            },
        )
}

/// Group key: period label plus each grouped dimension's value, straight from the event.
type Group = (String, Vec<i32>);

fn brute_force(
    events: &HashMap<String, Event>,
    req: &pb::AggregateRequest,
) -> BTreeMap<Group, u64> {
    let q = AggregateQuery::from_wire(req).unwrap();
    let f = req.filter.clone().unwrap_or_default();
    let uses = |d: D| q.group_by.contains(&d) || q.filter.contains_key(&d);
    let mut grouped = q.group_by.clone();
    grouped.sort_by_key(|d| *d as usize);
    let mut out = BTreeMap::new();
    for e in events.values() {
        let cats: Vec<Option<i32>> = if uses(D::Category) {
            e.categories.iter().map(|c| Some(*c as i32)).collect()
        } else {
            vec![None]
        };
        let facs: Vec<Option<i32>> = if uses(D::ContributingFactor) {
            e.contributing_factors
                .iter()
                .map(|c| Some(*c as i32))
                .collect()
        } else {
            vec![None]
        };
        for c in &cats {
            for fa in &facs {
                let pass = |list: &[i32], v: Option<i32>| {
                    list.is_empty() || v.is_some_and(|v| list.contains(&v))
                };
                if !pass(&f.categories, *c)
                    || !pass(&f.unit_types, Some(e.unit_type as i32))
                    || !pass(&f.contributing_factors, *fa)
                {
                    continue;
                }
                let value = |d: &D| match d {
                    D::Category => c.unwrap_or(0),
                    D::ContributingFactor => fa.unwrap_or(0),
                    D::EventType => e.event_type as i32,
                    D::Harm => e.harm.map_or(0, |h| h as i32),
                    D::UnitType => e.unit_type as i32,
                    D::AgeBand => e.age_band as i32,
                    D::Sex => e.sex as i32,
                    _ => 0,
                };
                let period = psonet_core::query::Period::of(e.discovery_month, q.grain).label();
                *out.entry((period, grouped.iter().map(value).collect()))
                    .or_default() += 1;
            }
        }
    }
    out
}

fn from_store(store: &Store, req: &pb::AggregateRequest) -> BTreeMap<Group, u64> {
    let q = AggregateQuery::from_wire(req).unwrap();
    let mut grouped: Vec<D> = q.group_by.clone();
    grouped.sort_by_key(|d| *d as usize);
    store
        .aggregate(&q)
        .unwrap()
        .into_iter()
        .map(|(cell, n)| {
            let wire = cell.to_wire(n, false);
            let value = |d: &D| match d {
                D::Category => wire.category,
                D::ContributingFactor => wire.contributing_factor,
                D::EventType => wire.event_type,
                D::Harm => wire.harm,
                D::UnitType => wire.unit_type,
                D::AgeBand => wire.age_band,
                D::Sex => wire.sex,
                _ => 0,
            };
            (
                (wire.period.clone(), grouped.iter().map(value).collect()),
                n,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_aggregate_equals_a_recount(ops in prop::collection::vec(op(), 1..12), queries in prop::collection::vec(query(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let mut model: HashMap<String, Event> = HashMap::new();
        for op in ops {
            match op {
                Op::Submit(batch) => {
                    let events: Vec<Event> = batch.into_iter().map(|w| event_from_wire(w, "e", now()).unwrap()).collect();
                    store.submit(&events).unwrap();
                    for e in events {
                        model.entry(e.idempotency_key.clone()).or_insert(e);
                    }
                }
                Op::Amend(wire) => {
                    let e = event_from_wire(*wire, "e", now()).unwrap();
                    let outcome = store.amend(&e, "reassessed").unwrap();
                    match model.get_mut(&e.idempotency_key) {
                        Some(old) => {
                            let amended = matches!(outcome, AmendOutcome::Amended { .. });
                            prop_assert!(amended, "amend of a stored key said {:?}", outcome);
                            *old = e;
                        }
                        None => prop_assert_eq!(outcome, AmendOutcome::NotFound),
                    }
                }
            }
        }
        prop_assert_eq!(store.verify_counters().unwrap(), model.len() as u64);
        for req in &queries {
            prop_assert_eq!(from_store(&store, req), brute_force(&model, req), "query {:?}", req);
        }
    }
}

#[test]
fn amendments_keep_history_and_move_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let wire = pb::Event {
        idempotency_key: "IR-7".into(),
        event_type: 1,
        categories: vec![3],
        harm: 1,
        discovery_month: "2026-01".into(),
        unit_type: 5,
        ..Default::default()
    };
    let original = event_from_wire(wire.clone(), "e", now()).unwrap();
    store.submit(std::slice::from_ref(&original)).unwrap();
    let reassessed = event_from_wire(
        pb::Event {
            harm: 3,
            categories: vec![3, 5],
            ..wire
        },
        "e",
        now(),
    )
    .unwrap();
    let AmendOutcome::Amended {
        revision,
        unchanged,
        ..
    } = store.amend(&reassessed, "harm reassessed at 72 h").unwrap()
    else {
        panic!("not found")
    };
    assert_eq!((revision, unchanged), (1, false));
    let AmendOutcome::Amended {
        revision,
        unchanged,
        ..
    } = store.amend(&reassessed, "retry").unwrap()
    else {
        panic!()
    };
    assert_eq!((revision, unchanged), (1, true));
    let stored = store.event_by_key("IR-7").unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.history.len(), 1);
    assert_eq!(stored.history[0].reason, "harm reassessed at 72 h");
    assert_eq!(stored.history[0].event.harm, Some(pb::HarmLevel::NoHarm));
    assert_eq!(stored.event.harm, Some(pb::HarmLevel::Moderate));
    assert_eq!(store.verify_counters().unwrap(), 1);
    let req = pb::AggregateRequest {
        month_from: "2026-01".into(),
        month_to: "2026-01".into(),
        group_by: vec![D::Harm as i32],
        ..Default::default()
    };
    let cells = store
        .aggregate(&AggregateQuery::from_wire(&req).unwrap())
        .unwrap();
    let harms: Vec<(i32, u64)> = cells
        .iter()
        .map(|(c, n)| (c.to_wire(*n, false).harm, *n))
        .collect();
    assert_eq!(harms, [(3, 1)], "the count moved from no harm to moderate");
}
