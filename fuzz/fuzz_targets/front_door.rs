//! The node's front door: bytes from the network → prost decode → validation → domain event
//! (and aggregate queries). Malformed input must end in field violations, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use psonet_core::month::Month;
use psonet_core::pb;
use psonet_core::query::AggregateQuery;
use psonet_core::wire::{event_from_wire, event_to_wire};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(wire) = pb::Event::decode(bytes) {
                let now = Month::current();
                match event_from_wire(wire, "event", now) {
                    Ok(event) => {
                        // A valid event survives the round trip unchanged.
                        let again = event_from_wire(event_to_wire(&event), "event", now)
                            .expect("a stored event re-validates");
                        assert_eq!(again, event);
                        let _ = psonet_core::cube::CounterKey::for_event(&event);
                    }
                    Err(violations) => {
                        assert!(!violations.is_empty());
                        let _ = violations.into_status();
                    }
                }
            }
        }
        1 => {
            if let Ok(request) = pb::SubmitEventsRequest::decode(bytes) {
                let _ = event_from_wire(request.event.unwrap_or_default(), "event", Month::current());
            }
        }
        _ => {
            if let Ok(request) = pb::AggregateRequest::decode(bytes) {
                if let Ok(query) = AggregateQuery::from_wire(&request) {
                    let _ = query.family();
                    let _ = query.event_totals();
                }
            }
        }
    }
});
