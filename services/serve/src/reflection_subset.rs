//! What a listener's reflection may describe: its own services and the types they reach, and
//! nothing else of the API.
//!
//! gRPC reflection answers `describe <symbol>` with the whole `.proto` file that declares it,
//! from every descriptor registered with it. Registering psonet's full descriptor set on the
//! federation listener (and scoping only `list`) let anyone admitted there read the schema of
//! the local listener's `ReportingService` and of every event field — not a leak of data, but
//! a map of another listener that the federation side has no business drawing.
//!
//! [`descriptor_subset`] builds, per listener, a descriptor set that holds only the named
//! services and the messages and enums reachable from their methods (through fields, map
//! entries and nested declarations), each file pruned to those declarations, with the comments
//! of what is kept and the imports still needed. Reflection built from it resolves nothing
//! else: `describe psonet.v1.ReportingService` on the federation listener is NOT_FOUND.

use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use std::collections::{BTreeMap, BTreeSet};

/// Why a listener's descriptor subset could not be built (a build defect, not a runtime one).
#[derive(Debug, thiserror::Error)]
pub enum DescriptorSubsetError {
    /// The encoded descriptor set does not decode.
    #[error("the API descriptor set does not decode: {0}")]
    Decode(#[from] prost_reflect::DescriptorError),
    /// A service the listener serves is not in the descriptor set.
    #[error("service {0} is not in the API descriptor set")]
    UnknownService(String),
}

/// `FileDescriptorProto` field numbers, for paths in its `source_code_info`.
const DEPENDENCY: i32 = 3;
const MESSAGE_TYPE: i32 = 4;
const ENUM_TYPE: i32 = 5;
const SERVICE: i32 = 6;

/// The files of `encoded` (an encoded `FileDescriptorSet`) pruned to `services` and the types
/// they reach; files left with nothing are dropped.
pub fn descriptor_subset(
    encoded: &[u8],
    services: &[&str],
) -> Result<FileDescriptorSet, DescriptorSubsetError> {
    let pool = DescriptorPool::decode(encoded)?;
    let mut kept = BTreeSet::new();
    for name in services {
        let service = pool
            .get_service_by_name(name)
            .ok_or_else(|| DescriptorSubsetError::UnknownService(name.to_string()))?;
        kept.insert(service.full_name().to_string());
        for method in service.methods() {
            keep_message(&method.input(), &mut kept);
            keep_message(&method.output(), &mut kept);
        }
    }
    let mut files: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
    for file in pool.file_descriptor_protos() {
        if let Some(pruned) = prune(file, &kept) {
            files.insert(pruned.name().to_string(), pruned);
        }
    }
    let present: BTreeSet<String> = files.keys().cloned().collect();
    let file = files
        .into_values()
        .map(|mut f| {
            drop_missing_imports(&mut f, &present);
            f
        })
        .collect();
    Ok(FileDescriptorSet { file })
}

/// Keeps the top-level declaration `message` belongs to (a nested type is described with its
/// parent), and everything that declaration reaches.
fn keep_message(message: &MessageDescriptor, kept: &mut BTreeSet<String>) {
    let mut top = message.clone();
    while let Some(parent) = top.parent_message() {
        top = parent;
    }
    if !kept.insert(top.full_name().to_string()) {
        return;
    }
    let mut todo = vec![top];
    while let Some(m) = todo.pop() {
        todo.extend(m.child_messages());
        for field in m.fields() {
            match field.kind() {
                Kind::Message(inner) => keep_message(&inner, kept),
                Kind::Enum(e) => match e.parent_message() {
                    Some(parent) => keep_message(&parent, kept),
                    None => {
                        kept.insert(e.full_name().to_string());
                    }
                },
                _ => {}
            }
        }
    }
}

/// `file` with only its `kept` top-level messages, enums and services, and the comments of
/// those; `None` when nothing of it is kept.
fn prune(file: &FileDescriptorProto, kept: &BTreeSet<String>) -> Option<FileDescriptorProto> {
    let package = file.package();
    let full = |name: &str| {
        if package.is_empty() {
            name.to_string()
        } else {
            format!("{package}.{name}")
        }
    };
    let keep_messages = kept_indices(file.message_type.iter().map(|m| full(m.name())), kept);
    let keep_enums = kept_indices(file.enum_type.iter().map(|e| full(e.name())), kept);
    let keep_services = kept_indices(file.service.iter().map(|s| full(s.name())), kept);
    if keep_messages.is_empty() && keep_enums.is_empty() && keep_services.is_empty() {
        return None;
    }
    let mut pruned = file.clone();
    pruned.message_type = select(&file.message_type, &keep_messages);
    pruned.enum_type = select(&file.enum_type, &keep_enums);
    pruned.service = select(&file.service, &keep_services);
    if let Some(info) = pruned.source_code_info.as_mut() {
        let renumber = [
            (MESSAGE_TYPE, &keep_messages),
            (ENUM_TYPE, &keep_enums),
            (SERVICE, &keep_services),
        ];
        info.location.retain_mut(|location| {
            for (field, keep) in &renumber {
                if location.path.first() == Some(field) && location.path.len() >= 2 {
                    match keep.iter().position(|&old| old as i32 == location.path[1]) {
                        Some(new) => location.path[1] = new as i32,
                        None => return false,
                    }
                }
            }
            true
        });
    }
    Some(pruned)
}

/// Indices (in order) of the `names` that are `kept`.
fn kept_indices(names: impl Iterator<Item = String>, kept: &BTreeSet<String>) -> Vec<usize> {
    names
        .enumerate()
        .filter(|(_, name)| kept.contains(name))
        .map(|(i, _)| i)
        .collect()
}

fn select<T: Clone>(items: &[T], indices: &[usize]) -> Vec<T> {
    indices.iter().map(|&i| items[i].clone()).collect()
}

/// Drops the imports of files no longer in the set (and renumbers what refers to imports by
/// index: public and weak imports, and import comments).
fn drop_missing_imports(file: &mut FileDescriptorProto, present: &BTreeSet<String>) {
    let keep: Vec<usize> = file
        .dependency
        .iter()
        .enumerate()
        .filter(|(_, d)| present.contains(*d))
        .map(|(i, _)| i)
        .collect();
    let renumber = |old: i32| {
        keep.iter()
            .position(|&k| k as i32 == old)
            .map(|new| new as i32)
    };
    file.dependency = select(&file.dependency, &keep);
    file.public_dependency = file
        .public_dependency
        .iter()
        .filter_map(|&i| renumber(i))
        .collect();
    file.weak_dependency = file
        .weak_dependency
        .iter()
        .filter_map(|&i| renumber(i))
        .collect();
    if let Some(info) = file.source_code_info.as_mut() {
        info.location.retain_mut(|location| {
            if location.path.first() == Some(&DEPENDENCY) && location.path.len() >= 2 {
                match renumber(location.path[1]) {
                    Some(new) => location.path[1] = new,
                    None => return false,
                }
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(set: &FileDescriptorSet) -> BTreeSet<String> {
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_set(set.clone())
            .expect("the subset is a self-contained descriptor set");
        let mut names: BTreeSet<String> = pool
            .all_messages()
            .map(|m| m.full_name().to_string())
            .collect();
        names.extend(pool.all_enums().map(|e| e.full_name().to_string()));
        names.extend(pool.services().map(|s| s.full_name().to_string()));
        names
    }

    #[test]
    fn the_federation_subset_holds_the_aggregate_service_and_what_it_reaches_only() {
        let full = DescriptorPool::decode(psonet_proto::FILE_DESCRIPTOR_SET).unwrap();
        assert!(
            full.get_service_by_name("psonet.v1.ReportingService")
                .is_some()
        );
        let subset = descriptor_subset(
            psonet_proto::FILE_DESCRIPTOR_SET,
            &["psonet.v1.AggregateService"],
        )
        .unwrap();
        let names = symbols(&subset);
        for present in [
            "psonet.v1.AggregateService",
            "psonet.v1.AggregateRequest",
            "psonet.v1.AggregateResponse",
            "psonet.v1.EventCategory",
        ] {
            assert!(names.contains(present), "{present} missing: {names:?}");
        }
        for absent in [
            "psonet.v1.ReportingService",
            "psonet.v1.BenchmarkService",
            "psonet.v1.Event",
            "google.protobuf.Timestamp",
        ] {
            assert!(!names.contains(absent), "{absent} described: {names:?}");
        }
        // Comments stay attached to what is kept.
        let aggregate = subset
            .file
            .iter()
            .find(|f| f.service.iter().any(|s| s.name() == "AggregateService"))
            .unwrap();
        let service = aggregate
            .service
            .iter()
            .position(|s| s.name() == "AggregateService")
            .unwrap() as i32;
        let comment = aggregate
            .source_code_info
            .as_ref()
            .unwrap()
            .location
            .iter()
            .find(|l| l.path == [SERVICE, service])
            .and_then(|l| l.leading_comments.clone());
        assert!(comment.is_some_and(|c| !c.trim().is_empty()));
    }

    #[test]
    fn an_unknown_service_is_an_error() {
        let err = descriptor_subset(psonet_proto::FILE_DESCRIPTOR_SET, &["psonet.v1.Nope"]);
        assert!(matches!(err, Err(DescriptorSubsetError::UnknownService(_))));
    }
}
