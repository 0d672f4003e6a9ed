//! The cohort: the verified members one query runs over, in one agreed order.
//!
//! Every member must derive the same pairwise keys, Shamir x-coordinates and cohort hash, so
//! the cohort is ordered by facility id and a member's x-coordinate is its position + 1. It is
//! built only from verified masking keys (or, at a node, restored from its own record of a
//! cohort it verified), all of one network and one epoch, each facility once.

use super::MAX_COHORT;
use super::mask::{CohortHash, cohort_hash};
use super::masking_key::{Epoch, VerifiedMaskingKey};

/// One member: a facility and its masking key for the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Facility id.
    pub facility: String,
    /// X25519 public key.
    pub public_key: [u8; 32],
}

/// Why keys do not make a cohort.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CohortError {
    /// No keys.
    #[error("the cohort is empty")]
    Empty,
    /// More members than a query may have.
    #[error("the cohort has {0} members; at most {MAX_COHORT} are allowed")]
    TooLarge(usize),
    /// A facility appears twice.
    #[error("facility {0:?} appears twice in the cohort")]
    Duplicate(String),
    /// Keys of several networks.
    #[error("the cohort mixes networks {0:?} and {1:?}")]
    MixedNetworks(String, String),
    /// Keys of several epochs.
    #[error("the cohort mixes masking keys of epochs {0} and {1}")]
    MixedEpochs(Epoch, Epoch),
}

/// A cohort: members sorted by facility id, with their common network and epoch and the hash
/// that binds pairwise keys to exactly this membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    network: String,
    epoch: Epoch,
    members: Vec<Member>,
    hash: CohortHash,
}

impl Cohort {
    /// The cohort of `keys` (any order).
    pub fn new(keys: impl IntoIterator<Item = VerifiedMaskingKey>) -> Result<Self, CohortError> {
        let keys: Vec<VerifiedMaskingKey> = keys.into_iter().collect();
        let first = keys.first().ok_or(CohortError::Empty)?;
        let (network, epoch) = (first.network().to_string(), first.epoch());
        for key in &keys {
            if key.network() != network {
                return Err(CohortError::MixedNetworks(
                    network,
                    key.network().to_string(),
                ));
            }
            if key.epoch() != epoch {
                return Err(CohortError::MixedEpochs(epoch, key.epoch()));
            }
        }
        let members = keys
            .iter()
            .map(|k| Member {
                facility: k.facility().to_string(),
                public_key: *k.public_key(),
            })
            .collect();
        Self::restore(network, epoch, members)
    }

    /// A cohort from a node's own stored record of one it verified in round 1 (the keys are
    /// not verified again). Checks order-independence, size and uniqueness as [`Cohort::new`].
    pub fn restore(
        network: String,
        epoch: Epoch,
        mut members: Vec<Member>,
    ) -> Result<Self, CohortError> {
        if members.is_empty() {
            return Err(CohortError::Empty);
        }
        if members.len() > MAX_COHORT {
            return Err(CohortError::TooLarge(members.len()));
        }
        members.sort_by(|a, b| a.facility.cmp(&b.facility));
        if let Some(pair) = members.windows(2).find(|w| w[0].facility == w[1].facility) {
            return Err(CohortError::Duplicate(pair[0].facility.clone()));
        }
        let hash = cohort_hash(members.iter().map(|m| (m.facility.as_str(), &m.public_key)));
        Ok(Self {
            network,
            epoch,
            members,
            hash,
        })
    }

    /// Network of every member.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Epoch of every member's key.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Members in cohort order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Number of members, |S|.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true: a cohort has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The hash every pairwise key of this cohort is bound to.
    pub fn hash(&self) -> &CohortHash {
        &self.hash
    }

    /// 0-based position of `facility`.
    pub fn position(&self, facility: &str) -> Option<usize> {
        self.members
            .binary_search_by(|m| m.facility.as_str().cmp(facility))
            .ok()
    }

    /// The member `facility`.
    pub fn member(&self, facility: &str) -> Option<&Member> {
        self.position(facility).map(|p| &self.members[p])
    }

    /// Shamir x-coordinate of `facility`: its position + 1.
    pub fn x_of(&self, facility: &str) -> Option<u32> {
        // Positions are below MAX_COHORT, so they fit.
        self.position(facility).map(|p| p as u32 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(network: &str, epoch: u32, facility: &str, k: u8) -> VerifiedMaskingKey {
        VerifiedMaskingKey::assumed(network, Epoch::from_u32(epoch), facility, [k; 32])
    }

    #[test]
    fn members_are_ordered_by_facility_and_numbered_from_one() {
        let c = Cohort::new([
            key("n", 1, "c", 3),
            key("n", 1, "a", 1),
            key("n", 1, "b", 2),
        ])
        .unwrap();
        let ids: Vec<&str> = c.members().iter().map(|m| m.facility.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(c.x_of("a"), Some(1));
        assert_eq!(c.x_of("c"), Some(3));
        assert_eq!(c.x_of("d"), None);
        let same = Cohort::new([
            key("n", 1, "a", 1),
            key("n", 1, "b", 2),
            key("n", 1, "c", 3),
        ])
        .unwrap();
        assert_eq!(c.hash(), same.hash());
        let other_key = Cohort::new([
            key("n", 1, "a", 1),
            key("n", 1, "b", 2),
            key("n", 1, "c", 4),
        ])
        .unwrap();
        assert_ne!(c.hash(), other_key.hash());
    }

    #[test]
    fn mixed_or_repeated_keys_are_refused() {
        assert_eq!(
            Cohort::new([key("n", 1, "a", 1), key("n", 1, "a", 2)]),
            Err(CohortError::Duplicate("a".into()))
        );
        assert_eq!(
            Cohort::new([key("n", 1, "a", 1), key("m", 1, "b", 2)]),
            Err(CohortError::MixedNetworks("n".into(), "m".into()))
        );
        assert!(matches!(
            Cohort::new([key("n", 1, "a", 1), key("n", 2, "b", 2)]),
            Err(CohortError::MixedEpochs(..))
        ));
        assert_eq!(Cohort::new([]), Err(CohortError::Empty));
    }
}
