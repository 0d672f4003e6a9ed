//! Whom a guidance item is for: the `peer_group:` line of its front matter
//! (`urbanicity=rural, bed_size_band=under_100`), the registry attributes a peer group of a
//! benchmark uses, so an alert for critical-access hospitals reaches those and is counted over
//! those only.

use crate::peer_group::add_attribute;
use psonet_core::pb;

/// The peer group `text` describes: `key=value` pairs separated by commas; several values of
/// one key match any of them.
pub fn parse_peer_group(text: &str) -> Result<pb::PeerGroup, String> {
    let mut group = pb::PeerGroup::default();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
        add_attribute(&mut group, key, value)?;
    }
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_become_a_peer_group_and_mistakes_are_named() {
        let g = parse_peer_group("urbanicity=rural, bed_size_band=under_100, urbanicity=urban")
            .unwrap();
        assert_eq!(
            g.urbanicity,
            [pb::Urbanicity::Rural as i32, pb::Urbanicity::Urban as i32]
        );
        assert_eq!(g.bed_size_bands, [pb::BedSizeBand::Under100 as i32]);
        assert!(
            parse_peer_group("colour=red")
                .unwrap_err()
                .contains("colour")
        );
        assert!(
            parse_peer_group("urbanicity=lunar")
                .unwrap_err()
                .contains("lunar")
        );
    }
}
