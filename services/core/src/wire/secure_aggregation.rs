//! Secure-aggregation fields from and to the wire: signed masking keys and query ids. The node
//! and the gateway both read keys, so both convert here.

use crate::pb;
use crate::secagg::mask::QueryId;
use crate::secagg::masking_key::{Epoch, SignedMaskingKey};
use crate::violations::FieldViolations;

/// A signed masking key from the wire; `field` names it in violations (e.g. `cohort[3]`).
/// Only shapes are checked here; the certificate and signature are the verifier's.
pub fn masking_key_from_wire(
    key: &pb::SignedMaskingKey,
    field: &str,
) -> Result<SignedMaskingKey, FieldViolations> {
    let mut v = FieldViolations::new();
    let public_key: Option<[u8; 32]> = key.public_key.as_slice().try_into().ok();
    if public_key.is_none() {
        v.add(
            format!("{field}.public_key"),
            format!(
                "an X25519 public key is 32 bytes, not {}",
                key.public_key.len()
            ),
        );
    }
    for (name, value) in [("network", &key.network), ("facility", &key.facility)] {
        if value.is_empty() {
            v.add(format!("{field}.{name}"), "required");
        }
    }
    if key.signature.is_empty() {
        v.add(format!("{field}.signature"), "required");
    }
    if key.certificate.is_empty() {
        v.add(format!("{field}.certificate"), "required");
    }
    match public_key {
        Some(public_key) if v.is_empty() => Ok(SignedMaskingKey {
            network: key.network.clone(),
            epoch: Epoch::from_u32(key.epoch),
            facility: key.facility.clone(),
            public_key,
            signature: key.signature.clone(),
            certificate: key.certificate.clone(),
        }),
        _ => Err(v),
    }
}

/// A signed masking key for the wire.
pub fn masking_key_to_wire(key: &SignedMaskingKey) -> pb::SignedMaskingKey {
    pb::SignedMaskingKey {
        network: key.network.clone(),
        epoch: key.epoch.value(),
        facility: key.facility.clone(),
        public_key: key.public_key.to_vec(),
        signature: key.signature.clone(),
        certificate: key.certificate.clone(),
    }
}

/// A query id from the wire: exactly 16 bytes.
pub fn query_id_from_wire(bytes: &[u8], field: &str) -> Result<QueryId, FieldViolations> {
    bytes.try_into().map(QueryId).map_err(|_| {
        let mut v = FieldViolations::new();
        v.add(
            field,
            format!("a query id is 16 bytes, not {}", bytes.len()),
        );
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_shapes_are_named() {
        let key = SignedMaskingKey {
            network: "n".into(),
            epoch: Epoch::from_u32(24_000),
            facility: "f".into(),
            public_key: [3; 32],
            signature: vec![1, 2],
            certificate: vec![4],
        };
        let wire = masking_key_to_wire(&key);
        assert_eq!(masking_key_from_wire(&wire, "k"), Ok(key));
        let bad = pb::SignedMaskingKey {
            public_key: vec![0; 31],
            facility: String::new(),
            ..wire
        };
        let v = masking_key_from_wire(&bad, "cohort[2]").unwrap_err();
        let text = v.to_string();
        assert!(text.contains("cohort[2].public_key"), "{text}");
        assert!(text.contains("cohort[2].facility"), "{text}");
        assert_eq!(query_id_from_wire(&[7; 16], "q"), Ok(QueryId([7; 16])));
        assert!(query_id_from_wire(&[7; 15], "q").is_err());
    }
}
