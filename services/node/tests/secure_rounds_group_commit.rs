//! Secure-aggregation rounds of concurrent queries: every one is audited before it answers,
//! and their audit records share flushes (the store's group commit), so a node answering many
//! executions at once does not pay one fsync per round.

use psonet_core::disclosure::buckets::FinestGrain;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::month::Month;
use psonet_core::pb::{self, secure_aggregation_service_server::SecureAggregationService};
use psonet_core::secagg::masking_key::{Epoch, MaskingKeySigner, MaskingSecret};
use psonet_core::secagg::protocol::min_threshold;
use psonet_core::wire::masking_key_to_wire;
use psonet_node::aggregate::DisclosureRules;
use psonet_node::audit::{AUDIT_TREE, AuditTrail, records};
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

const NETWORK: &str = "net";

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

fn gateway<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(Principal::gateway(NETWORK));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rounds_are_each_audited_and_share_flushes() {
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
    let month = Month::current().minus(1).to_string();
    let rounds = 32u8;
    let flushes_before = store.flushes();
    let calls: Vec<_> = (0..rounds)
        .map(|i| {
            let node = node.clone();
            let request = pb::MaskedRoundRequest {
                query_id: vec![i; 16],
                query: Some(pb::AggregateRequest {
                    month_from: month.clone(),
                    month_to: month.clone(),
                    group_by: vec![pb::Dimension::Harm as i32],
                    ..Default::default()
                }),
                cohort: cohort.clone(),
                threshold: min_threshold(3) as u32,
            };
            tokio::spawn(async move { node.masked_round(gateway(request)).await })
        })
        .collect();
    for call in calls {
        let answer = call.await.unwrap().expect("round 1").into_inner();
        assert_eq!(answer.shares.len(), 3 * 32);
    }
    let flushes = store.flushes() - flushes_before;
    let audited = records(&audit).unwrap();
    let secure: Vec<_> = audited
        .iter()
        .filter_map(|r| r.secure_round.as_ref())
        .collect();
    assert_eq!(secure.len(), usize::from(rounds));
    assert!(secure.iter().all(|s| s.round == 1 && s.cohort_size == 3));
    assert!(secure.iter().all(|s| s.revealed.contains("masked vector")));
    println!(
        "{rounds} concurrent rounds, each audited and durable before it answered: {flushes} flushes"
    );
    assert!(
        flushes < u64::from(rounds),
        "{rounds} concurrent rounds needed {flushes} flushes"
    );
}
