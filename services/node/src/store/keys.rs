//! How the store encodes what it keys by: event ids (a sled-generated number, shown as 16 hex
//! digits) and big-endian counts.

/// Node event ids are the sled-generated number in 16 hex digits.
pub(super) fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

/// The number of an event id, if it is one.
pub(super) fn parse_id(id: &str) -> Option<u64> {
    (id.len() == 16)
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

/// The event id stored as big-endian bytes (an events key, an idempotency entry).
pub(super) fn event_id(id_bytes: &[u8]) -> String {
    format_id(decode_u64(id_bytes))
}

/// A big-endian `u64` (0 when the bytes are not eight).
pub(super) fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_nothing_else_parses() {
        assert_eq!(format_id(41), "0000000000000029");
        assert_eq!(parse_id("0000000000000029"), Some(41));
        assert_eq!(event_id(&41u64.to_be_bytes()), "0000000000000029");
        assert_eq!(parse_id("29"), None);
        assert_eq!(parse_id("000000000000002g"), None);
    }
}
