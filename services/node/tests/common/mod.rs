//! A secure-aggregation node on its own, for tests that call its service directly: a network
//! CA, node certificates, a real sled store on disk, and the cohort's signed masking keys.
// Each test binary uses part of this module.
#![allow(dead_code)]

use psonet_core::disclosure::buckets::FinestGrain;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::pb::{self, secure_aggregation_service_server::SecureAggregationService};
use psonet_core::secagg::masking_key::{Epoch, MaskingKeySigner, MaskingSecret};
use psonet_core::wire::masking_key_to_wire;
use psonet_node::aggregate::DisclosureRules;
use psonet_node::audit::{AUDIT_TREE, AuditTrail};
use psonet_node::policy::Policy;
use psonet_node::secure_aggregation::{SecureAggregates, SecureAggregationParts};
use psonet_node::store::Store;
use psonet_serve::identity::Principal;
use psonet_serve::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use std::path::Path;
use std::sync::Arc;

/// The network every test node belongs to.
pub const NETWORK: &str = "net";

/// Node `a` of a three-facility cohort (`a`, `b`, `c`), minimum cohort 3, no DP.
pub struct SecureNode {
    /// Holds the certificates and the store.
    pub dir: tempfile::TempDir,
    /// The node's store.
    pub store: Arc<Store>,
    /// Its audit tree.
    pub audit: sled::Tree,
    /// The service under test.
    pub node: Arc<SecureAggregates>,
    /// The cohort's signed masking keys, the node's own first.
    pub cohort: Vec<pb::SignedMaskingKey>,
}

impl SecureNode {
    /// Starts node `a` and signs masking keys for `b` and `c` with their certificates.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaves) = pki(&["a", "b", "c"]);
        let files = TlsFiles {
            ca: write(dir.path(), "ca.pem", &ca),
            cert: write(dir.path(), "cert.pem", &leaves[0].0),
            key: write(dir.path(), "key.pem", &leaves[0].1),
        };
        let store = Arc::new(Store::open(&dir.path().join("data"), 16 << 20).unwrap());
        let audit = store.tree(AUDIT_TREE).unwrap();
        let node = Arc::new(
            SecureAggregates::new(SecureAggregationParts {
                facility: "a".into(),
                network: NETWORK.into(),
                federation_tls: files,
                min_cohort: 3,
                store: store.clone(),
                rules: DisclosureRules {
                    small_cells: SmallCellRule::default(),
                    finest_grain: FinestGrain::default(),
                },
                policy: Policy::new(NETWORK, Vec::new()).unwrap(),
                ledger: None,
                audit: AuditTrail::new(audit.clone()),
            })
            .unwrap(),
        );
        let own = node
            .get_masking_key(gateway(pb::GetMaskingKeyRequest { epoch: 0 }))
            .await
            .unwrap()
            .into_inner()
            .key
            .unwrap();
        let mut cohort = vec![own];
        for (cert, key) in &leaves[1..] {
            let signer = MaskingKeySigner::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
            let secret = MaskingSecret::generate(Epoch::current()).unwrap();
            cohort.push(masking_key_to_wire(&signer.sign(&secret).unwrap()));
        }
        Self {
            dir,
            store,
            audit,
            node,
            cohort,
        }
    }
}

/// A network CA and node certificates for `facilities`, as PEM (certificate, key) pairs, with
/// the CA's PEM.
fn pki(facilities: &[&str]) -> (String, Vec<(String, String)>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaves = facilities
        .iter()
        .map(|f| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params.subject_alt_names.push(SanType::URI(
                format!("spiffe://{NETWORK}/facility/{f}")
                    .try_into()
                    .unwrap(),
            ));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        })
        .collect();
    (ca_pem, leaves)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `message` as the gateway sends it (the principal the access rule would have set).
pub fn gateway<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(Principal::gateway(NETWORK));
    request
}
