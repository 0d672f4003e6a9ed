//! Secure aggregation: the arithmetic and cryptography behind psonet's exact network figures.
//!
//! Each node's per-query cell vector leaves the facility masked, so that the gateway can open
//! only the **sum over the cohort** and apply disclosure control there, where cells are large
//! (issue 11; `reference/privacy.md` §2.2 Variant A, §4.3, §5). Nothing here does I/O: the node
//! and the gateway call these steps and carry their inputs and outputs over gRPC and sled.
//!
//! The pieces, one concept per file, in the order a query meets them:
//! - [`masking_key`]: the per-epoch X25519 masking key, signed with the node certificate's key,
//!   and its verification (certificate chain, SPIFFE facility id, signature);
//! - [`cohort`]: the verified, ordered set of members a query runs over, and its hash;
//! - [`lanes`]: the canonical lane vector a node builds from the query alone;
//! - [`noise_share`]: a node's share of distributed differential-privacy noise;
//! - [`field`] and [`shamir`]: threshold sharing of the self-mask seed over GF(2^127 − 1);
//! - [`mask`]: key derivation, the ChaCha20 mask stream, and the sign convention;
//! - [`share_box`]: a Shamir share encrypted from one member to another;
//! - [`protocol`]: the pure rounds — a node's round 1 and round 2, the gateway's unmask;
//! - [`differencing`]: the participant-set rule that stops sums from isolating a facility.

pub mod cohort;
pub mod differencing;
pub mod field;
pub mod lanes;
pub mod mask;
pub mod masking_key;
pub mod noise_share;
pub mod protocol;
pub mod shamir;
pub mod share_box;

/// The largest cohort one query may have: the network size psonet is built for
/// (ARCHITECTURE.md §8). It bounds Shamir's work and the differencing matrix.
pub const MAX_COHORT: usize = 500;

/// Appends `bytes` after its length (u32, big-endian), so that a concatenation of several
/// variable-length fields can be split only one way before it is hashed, signed or used as
/// key-derivation input.
pub(crate) fn put_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every prefixed field is a name, a key or an id, far below 4 GiB.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A deterministic uniform source for tests: the ChaCha20 keystream of a fixed seed, so that
/// statistical tests are reproducible.
#[cfg(test)]
pub(crate) struct SeededSource(chacha20::ChaCha20);

#[cfg(test)]
impl SeededSource {
    pub(crate) fn new(seed: u8) -> Self {
        use chacha20::cipher::KeyIvInit;
        Self(chacha20::ChaCha20::new(&[seed; 32].into(), &[0; 12].into()))
    }
}

#[cfg(test)]
impl crate::disclosure::discrete_gaussian::UniformSource for SeededSource {
    fn below(&mut self, n: u128) -> u128 {
        use chacha20::cipher::StreamCipher;
        if n <= 1 {
            return 0;
        }
        let mask = u128::MAX >> (n - 1).leading_zeros();
        loop {
            let mut bytes = [0u8; 16];
            self.0.apply_keystream(&mut bytes);
            let x = u128::from_le_bytes(bytes) & mask;
            if x < n {
                return x;
            }
        }
    }
}
