//! Secure aggregation end to end, without I/O: real certificates from a test CA (rcgen), signed
//! and verified masking keys, every member's round 1 and round 2, and the gateway's unmask —
//! plus the attacks the design must withstand and the figures it costs.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use psonet_core::disclosure::discrete_gaussian::UniformSource;
use psonet_core::pb::{self, Dimension};
use psonet_core::query::AggregateQuery;
use psonet_core::secagg::cohort::Cohort;
use psonet_core::secagg::field::FieldElement;
use psonet_core::secagg::lanes::{LaneDomain, LaneSum};
use psonet_core::secagg::mask::{QueryId, Sign, apply_mask};
use psonet_core::secagg::masking_key::{
    Epoch, MaskingKeyError, MaskingKeySigner, MaskingKeyVerifier, MaskingSecret, SignedMaskingKey,
    signed_message,
};
use psonet_core::secagg::protocol::{
    GatewayUnmask, IncomingShare, NodeRound1, NodeRound2, ProtocolError, Round1Output,
    Round2Answer, UnmaskError, min_threshold,
};
use psonet_core::secagg::shamir;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NETWORK: &str = "test-pso";

/// A reproducible uniform source: the ChaCha20 keystream of a fixed seed.
struct Seeded(ChaCha20);

impl Seeded {
    fn new(seed: u8) -> Self {
        Self(ChaCha20::new(&[seed; 32].into(), &[1; 12].into()))
    }

    fn u32(&mut self) -> u32 {
        self.below(1 << 32) as u32
    }
}

impl UniformSource for Seeded {
    fn below(&mut self, n: u128) -> u128 {
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

/// A network CA.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

/// How a test certificate departs from a node certificate.
#[derive(Default)]
struct Leaf {
    uris: Vec<String>,
    client_only: bool,
    expired: bool,
}

impl Ca {
    fn new() -> Self {
        Self::named("psonet test-pso network CA 1")
    }

    fn named(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let der = params.self_signed(&key).unwrap().der().clone();
        Self {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    /// A certificate (DER) and its PKCS#8 key (DER), as `psonet pki` issues a node.
    fn issue(&self, leaf: Leaf) -> (Vec<u8>, Vec<u8>) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        for uri in leaf.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if leaf.client_only {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    fn node_certificate(&self, facility: &str) -> (Vec<u8>, Vec<u8>) {
        self.issue(Leaf {
            uris: vec![format!("spiffe://{NETWORK}/facility/{facility}")],
            ..Leaf::default()
        })
    }

    fn verifier(&self) -> MaskingKeyVerifier {
        MaskingKeyVerifier::new(NETWORK, std::slice::from_ref(&self.der)).unwrap()
    }
}

/// One facility node's secagg state.
struct Node {
    facility: String,
    secret: MaskingSecret,
    signed: SignedMaskingKey,
}

/// `n` nodes of one CA, and the cohort every one of them verifies.
fn network(ca: &Ca, n: usize) -> (Vec<Node>, Cohort) {
    let epoch = Epoch::current();
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let facility = format!("hospital-{i:03}");
            let (cert, key) = ca.node_certificate(&facility);
            let signer = MaskingKeySigner::new(cert, &key).unwrap();
            let secret = MaskingSecret::generate(epoch).unwrap();
            let signed = signer.sign(&secret).unwrap();
            Node {
                facility,
                secret,
                signed,
            }
        })
        .collect();
    let verifier = ca.verifier();
    let cohort = Cohort::new(
        nodes
            .iter()
            .map(|node| verifier.verify(&node.signed, UnixTime::now()).unwrap()),
    )
    .unwrap();
    (nodes, cohort)
}

const QUERY: QueryId = QueryId([42; 16]);

/// Round-1 outputs by facility, as the gateway collects them.
type Outputs = BTreeMap<String, Round1Output>;

fn round1(node: &Node, cohort: &Cohort, t: usize, x: &[u32], rng: &mut Seeded) -> Round1Output {
    NodeRound1 {
        facility: &node.facility,
        secret: &node.secret,
        cohort,
        query_id: QUERY,
        threshold: t,
        min_cohort: 3,
    }
    .mask(x, rng)
    .unwrap()
}

/// Round 1 of the nodes at `members`, each on its own vector.
fn round1_of(
    nodes: &[Node],
    members: &[usize],
    cohort: &Cohort,
    t: usize,
    xs: &[Vec<u32>],
    rng: &mut Seeded,
) -> Outputs {
    members
        .iter()
        .map(|i| {
            let node = &nodes[*i];
            (node.facility.clone(), round1(node, cohort, t, &xs[*i], rng))
        })
        .collect()
}

/// What the gateway relays to `to`: the round-1 shares addressed to it in `outputs`.
fn relay(to: &str, outputs: &Outputs) -> Vec<IncomingShare> {
    outputs
        .iter()
        .flat_map(|(from, out)| {
            out.shares
                .iter()
                .filter(|s| s.to == to)
                .map(|s| IncomingShare {
                    from: from.clone(),
                    ciphertext: s.ciphertext.clone(),
                })
        })
        .collect()
}

fn round2(
    node: &Node,
    output: &Round1Output,
    survivors: &[String],
    dropped: &[String],
    shares: &[IncomingShare],
) -> Result<Round2Answer, ProtocolError> {
    NodeRound2 {
        facility: &node.facility,
        secret: &node.secret,
        record: &output.record,
        min_cohort: 3,
        survivors,
        dropped,
        shares,
    }
    .answer()
}

/// Round 2 of `nodes`: the survivors are the members whose round-1 output the gateway relays
/// (`relayed`); each node answers from its own round-1 record in `recorded`.
fn round2_of<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    relayed: &Outputs,
    recorded: &Outputs,
    dropped: &[String],
) -> BTreeMap<String, Round2Answer> {
    let survivors: Vec<String> = relayed.keys().cloned().collect();
    nodes
        .into_iter()
        .map(|node| {
            let shares = relay(&node.facility, relayed);
            let answer = round2(
                node,
                &recorded[&node.facility],
                &survivors,
                dropped,
                &shares,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", node.facility));
            (node.facility.clone(), answer)
        })
        .collect()
}

/// The gateway's unmask of the survivors in `outputs`.
fn open(
    cohort: &Cohort,
    t: usize,
    lanes: usize,
    outputs: &Outputs,
    answers: &BTreeMap<String, Round2Answer>,
) -> Result<Vec<u32>, UnmaskError> {
    let masked: BTreeMap<String, Vec<u32>> = outputs
        .iter()
        .map(|(f, o)| (f.clone(), o.masked.clone()))
        .collect();
    GatewayUnmask {
        cohort,
        query_id: QUERY,
        threshold: t,
        lanes,
    }
    .sum(&masked, answers)
}

fn wrapping_sum<'a>(vectors: impl IntoIterator<Item = &'a Vec<u32>>, lanes: usize) -> Vec<u32> {
    let mut sum = vec![0u32; lanes];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v) {
            *s = s.wrapping_add(*x);
        }
    }
    sum
}

fn facilities(nodes: &[Node], members: &[usize]) -> Vec<String> {
    members.iter().map(|i| nodes[*i].facility.clone()).collect()
}

#[test]
fn survivors_sums_open_exactly_for_3_to_12_members_with_random_dropouts() {
    let ca = Ca::new();
    let mut rng = Seeded::new(1);
    let lanes = 257;
    for n in 3..=12 {
        let (nodes, cohort) = network(&ca, n);
        let t = min_threshold(n);
        for trial in 0..4 {
            let xs: Vec<Vec<u32>> = (0..n)
                .map(|_| (0..lanes).map(|_| rng.u32()).collect())
                .collect();
            // Drop a random number of members before round 1, keeping |A| ≥ t.
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i as u128 + 1) as usize);
            }
            let drop_count = rng.below((n - t) as u128 + 1) as usize;
            let mut alive = order[drop_count..].to_vec();
            alive.sort_unstable();
            let dropped = facilities(&nodes, &order[..drop_count]);
            let outputs = round1_of(&nodes, &alive, &cohort, t, &xs, &mut rng);
            let mut answers = round2_of(
                alive.iter().map(|i| &nodes[*i]),
                &outputs,
                &outputs,
                &dropped,
            );
            // With nobody dropped, survivors beyond t may also fail round 2.
            if dropped.is_empty() {
                let spare = alive.len() - t;
                for f in facilities(&nodes, &alive)
                    .iter()
                    .take(rng.below(spare as u128 + 1) as usize)
                {
                    answers.remove(f);
                }
            }
            let sum = open(&cohort, t, lanes, &outputs, &answers)
                .unwrap_or_else(|e| panic!("n = {n}, trial {trial}: {e}"));
            let truth = wrapping_sum(alive.iter().map(|i| &xs[*i]), lanes);
            assert_eq!(sum, truth, "n = {n}, trial {trial}, dropped {dropped:?}");
        }
    }
}

#[test]
fn a_survivor_missing_round_two_after_a_dropout_gives_a_refusal_not_a_wrong_sum() {
    let ca = Ca::new();
    let n = 7;
    let (nodes, cohort) = network(&ca, n);
    let t = min_threshold(n);
    let mut rng = Seeded::new(7);
    let xs: Vec<Vec<u32>> = (0..n).map(|i| vec![i as u32, 100]).collect();
    let alive: Vec<usize> = (0..6).collect();
    let dropped = facilities(&nodes, &[6]);
    let outputs = round1_of(&nodes, &alive, &cohort, t, &xs, &mut rng);
    let mut answers = round2_of(&nodes[..6], &outputs, &outputs, &dropped);
    assert_eq!(open(&cohort, t, 2, &outputs, &answers), Ok(vec![15, 600]));
    // Every seed still has t = 5 shares without one answer, but that survivor's masks with the
    // dropped member stay in its vector.
    answers.remove(&nodes[1].facility);
    assert_eq!(
        open(&cohort, t, 2, &outputs, &answers),
        Err(UnmaskError::MissingDroppedKey {
            holder: nodes[1].facility.clone(),
            dropped: nodes[6].facility.clone(),
        })
    );
}

#[test]
fn a_gateway_that_calls_a_live_member_dropped_cannot_open_its_vector() {
    let ca = Ca::new();
    let n = 6;
    let (nodes, cohort) = network(&ca, n);
    let t = min_threshold(n);
    let lanes = 16_384;
    let mut rng = Seeded::new(2);
    // Realistic counts: mostly zeros, some small values.
    let xs: Vec<Vec<u32>> = (0..n)
        .map(|_| {
            (0..lanes)
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.below(20) as u32
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect();
    // Everybody answers round 1; the gateway then claims the victim dropped.
    let everyone: Vec<usize> = (0..n).collect();
    let outputs = round1_of(&nodes, &everyone, &cohort, t, &xs, &mut rng);
    let victim = &nodes[2];
    let dropped = vec![victim.facility.clone()];
    let mut without_victim = outputs.clone();
    without_victim.remove(&victim.facility);
    let survivors: Vec<String> = without_victim.keys().cloned().collect();
    // Relaying the victim's shares too is refused: a dropped member sent no shares.
    assert_eq!(
        round2(
            &nodes[0],
            &outputs[&nodes[0].facility],
            &survivors,
            &dropped,
            &relay(&nodes[0].facility, &outputs)
        ),
        Err(ProtocolError::ShareFromDropped(victim.facility.clone()))
    );
    // Without them, each survivor answers: seed shares for A, pairwise keys with the victim.
    let others = nodes.iter().filter(|n| n.facility != victim.facility);
    let answers = round2_of(others, &without_victim, &outputs, &dropped);
    assert!(
        answers
            .values()
            .all(|a| a.seed_shares.iter().all(|s| s.of != victim.facility))
    );
    // The survivors' sum still opens...
    let sum = open(&cohort, t, lanes, &without_victim, &answers).unwrap();
    assert_eq!(
        sum,
        wrapping_sum(
            xs.iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, x)| x),
            lanes
        )
    );
    // ...but the victim's vector minus every pairwise mask the gateway now knows is still
    // hidden by its self mask, whose seed no survivor revealed.
    let mut residual = outputs[&victim.facility].masked.clone();
    for (holder, answer) in &answers {
        let key = &answer.dropped_keys[0].key;
        apply_mask(
            &mut residual,
            key,
            Sign::between(&victim.facility, holder).opposite(),
        );
    }
    let victim_x = &xs[2];
    let equal = residual
        .iter()
        .zip(victim_x)
        .filter(|(r, x)| r == x)
        .count();
    assert!(
        equal <= 2,
        "{equal} of {lanes} lanes show the victim's value"
    );
    // The residual lanes look uniform: χ² over 16 buckets of the top 4 bits (15 degrees of
    // freedom; 37.7 is the 0.1% critical value). Fixed seed, so the figure is reproducible.
    let chi2 = |lanes: &[u32]| {
        let mut buckets = [0u32; 16];
        for r in lanes {
            buckets[(r >> 28) as usize] += 1;
        }
        let expected = lanes.len() as f64 / 16.0;
        buckets
            .iter()
            .map(|b| (f64::from(*b) - expected).powi(2) / expected)
            .sum::<f64>()
    };
    assert!(chi2(&residual) < 37.7, "χ² = {:.1}", chi2(&residual));
    // The same statistic on the victim's own vector is enormous: the test can tell.
    assert!(chi2(victim_x) > 1000.0, "{}", chi2(victim_x));
}

#[test]
fn below_threshold_round_two_answers_cannot_open_anything() {
    let ca = Ca::new();
    let n = 6;
    let (nodes, cohort) = network(&ca, n);
    let t = min_threshold(n);
    let mut rng = Seeded::new(3);
    let everyone: Vec<usize> = (0..n).collect();
    let xs = vec![vec![1, 2, 3]; n];
    let outputs = round1_of(&nodes, &everyone, &cohort, t, &xs, &mut rng);
    let answers = round2_of(&nodes[..t - 1], &outputs, &outputs, &[]);
    assert_eq!(
        open(&cohort, t, 3, &outputs, &answers),
        Err(UnmaskError::MissingSeedShares {
            member: nodes[0].facility.clone(),
            have: t - 1,
            need: t
        })
    );
    // A node refuses a round 2 whose survivors are below the threshold.
    let survivors = facilities(&nodes, &everyone);
    let (few, rest) = survivors.split_at(t - 1);
    assert_eq!(
        round2(&nodes[0], &outputs[&nodes[0].facility], few, rest, &[]),
        Err(ProtocolError::TooFewSurvivors {
            survivors: t - 1,
            need: t
        })
    );
}

#[test]
fn a_query_vector_opens_to_network_counts_and_contributor_numbers() {
    let query = AggregateQuery::from_wire(&pb::AggregateRequest {
        month_from: "2026-01".into(),
        month_to: "2026-06".into(),
        group_by: vec![Dimension::Category as i32, Dimension::Harm as i32],
        ..Default::default()
    })
    .unwrap();
    let domain = LaneDomain::of(&query).unwrap();
    let layout = domain.layout();
    let ca = Ca::new();
    let n = 5;
    let (nodes, cohort) = network(&ca, n);
    let t = min_threshold(n);
    let mut rng = Seeded::new(4);
    // Facility i holds i events in one rare cell (facility 0 none).
    let rare = domain.cells[17];
    let xs: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            let cells = [(rare, i as u64)].into();
            let values = domain.exact_values(&cells, &BTreeMap::new(), &BTreeMap::new());
            layout.encode(&values, &[], n).unwrap()
        })
        .collect();
    let everyone: Vec<usize> = (0..n).collect();
    let outputs = round1_of(&nodes, &everyone, &cohort, t, &xs, &mut rng);
    let answers = round2_of(&nodes, &outputs, &outputs, &[]);
    let sum = open(&cohort, t, layout.len(), &outputs, &answers).unwrap();
    let read = layout.decode(&sum, n).unwrap();
    // 0 + 1 + 2 + 3 + 4 events from four facilities: no facility's 1–4 is visible, the sum is.
    assert_eq!(
        read.counts[17],
        LaneSum {
            value: 10,
            contributors: 4
        }
    );
    assert_eq!(read.counts.iter().map(|c| c.value).sum::<i64>(), 10);
    // An unmask with a wrong self-mask seed would read as noise and fail the indicator check.
    let mut corrupt = sum.clone();
    apply_mask(
        &mut corrupt,
        &psonet_core::secagg::mask::self_mask_key(FieldElement::ONE, &QUERY),
        Sign::Plus,
    );
    assert!(layout.decode(&corrupt, n).is_err());
}

#[test]
fn masking_keys_are_refused_unless_chain_identity_and_signature_all_hold() {
    let ca = Ca::new();
    let verifier = ca.verifier();
    let now = UnixTime::now();
    let secret = MaskingSecret::generate(Epoch::current()).unwrap();
    let (cert, key) = ca.node_certificate("st-mary");
    let signer = MaskingKeySigner::new(cert, &key).unwrap();
    assert_eq!((signer.network(), signer.facility()), (NETWORK, "st-mary"));
    let good = signer.sign(&secret).unwrap();
    let verified = verifier.verify(&good, now).unwrap();
    assert_eq!(verified.facility(), "st-mary");
    assert_eq!(verified.public_key(), &secret.public_key());

    // A tampered signature, or a substituted public key under the original signature.
    let mut tampered = good.clone();
    let last = tampered.signature.len() - 1;
    tampered.signature[last] ^= 1;
    assert_eq!(
        verifier.verify(&tampered, now),
        Err(MaskingKeyError::BadSignature)
    );
    let mut substituted = good.clone();
    substituted.public_key = MaskingSecret::generate(Epoch::current())
        .unwrap()
        .public_key();
    assert_eq!(
        verifier.verify(&substituted, now),
        Err(MaskingKeyError::BadSignature)
    );

    // A certificate from another CA; and from one that copies our CA's name.
    let other_ca = Ca::named("psonet test-pso network CA 2");
    let (cert, key) = other_ca.node_certificate("st-mary");
    let foreign = MaskingKeySigner::new(cert, &key)
        .unwrap()
        .sign(&secret)
        .unwrap();
    assert_eq!(
        verifier.verify(&foreign, now),
        Err(MaskingKeyError::Untrusted(webpki::Error::UnknownIssuer))
    );
    let (cert, key) = Ca::new().node_certificate("st-mary");
    let lookalike = MaskingKeySigner::new(cert, &key)
        .unwrap()
        .sign(&secret)
        .unwrap();
    assert_eq!(
        verifier.verify(&lookalike, now),
        Err(MaskingKeyError::Untrusted(
            webpki::Error::InvalidSignatureForPublicKey
        ))
    );

    // A genuine certificate of another facility, with the key claiming st-mary.
    let (cert, key) = ca.node_certificate("county-general");
    let mut impostor = MaskingKeySigner::new(cert, &key)
        .unwrap()
        .sign(&secret)
        .unwrap();
    impostor.facility = "st-mary".into();
    assert_eq!(
        verifier.verify(&impostor, now),
        Err(MaskingKeyError::WrongIdentity {
            expected: format!("spiffe://{NETWORK}/facility/st-mary"),
            found: format!("spiffe://{NETWORK}/facility/county-general"),
        })
    );

    // Two URI SANs: the certificate does not name one facility. Sign by hand (the signer
    // refuses such a certificate too).
    let (cert, key) = ca.issue(Leaf {
        uris: vec![
            format!("spiffe://{NETWORK}/facility/st-mary"),
            format!("spiffe://{NETWORK}/facility/county-general"),
        ],
        ..Leaf::default()
    });
    assert_eq!(
        MaskingKeySigner::new(cert.clone(), &key).err(),
        Some(MaskingKeyError::SeveralUriSans(2))
    );
    let two = hand_signed(cert, &key, "st-mary", &secret);
    assert_eq!(
        verifier.verify(&two, now),
        Err(MaskingKeyError::SeveralUriSans(2))
    );

    // A client-only certificate (a facility's local client, not its node), an expired one,
    // and a key presented for another network.
    let (cert, key) = ca.issue(Leaf {
        uris: vec![format!("spiffe://{NETWORK}/facility/st-mary")],
        client_only: true,
        ..Leaf::default()
    });
    let client = MaskingKeySigner::new(cert, &key)
        .unwrap()
        .sign(&secret)
        .unwrap();
    assert!(matches!(
        verifier.verify(&client, now),
        Err(MaskingKeyError::Untrusted(
            webpki::Error::RequiredEkuNotFoundContext(_)
        ))
    ));
    let (cert, key) = ca.issue(Leaf {
        uris: vec![format!("spiffe://{NETWORK}/facility/st-mary")],
        expired: true,
        ..Leaf::default()
    });
    let old = MaskingKeySigner::new(cert, &key)
        .unwrap()
        .sign(&secret)
        .unwrap();
    assert!(matches!(
        verifier.verify(&old, now),
        Err(MaskingKeyError::Untrusted(
            webpki::Error::CertExpired { .. }
        ))
    ));
    let mut elsewhere = good.clone();
    elsewhere.network = "other-pso".into();
    assert!(matches!(
        verifier.verify(&elsewhere, now),
        Err(MaskingKeyError::WrongNetwork { .. })
    ));
    // Every refusal reads as a sentence that names what failed.
    let message = verifier.verify(&foreign, now).unwrap_err().to_string();
    assert!(message.contains("network CA"), "{message}");
}

#[test]
fn a_signer_refuses_a_key_that_is_not_its_certificates() {
    let ca = Ca::new();
    let (cert, _) = ca.node_certificate("st-mary");
    let (_, other_key) = ca.node_certificate("st-mary");
    assert_eq!(
        MaskingKeySigner::new(cert, &other_key).err(),
        Some(MaskingKeyError::KeyDoesNotMatchCertificate)
    );
    // PEM as `psonet pki` writes it works the same.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.subject_alt_names.push(SanType::URI(
        format!("spiffe://{NETWORK}/facility/st-mary")
            .try_into()
            .unwrap(),
    ));
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let signer =
        MaskingKeySigner::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    assert_eq!(signer.facility(), "st-mary");
}

/// A masking key signed directly with ring, for certificates the signer would refuse.
fn hand_signed(
    cert: Vec<u8>,
    pkcs8: &[u8],
    facility: &str,
    secret: &MaskingSecret,
) -> SignedMaskingKey {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).unwrap();
    let public_key = secret.public_key();
    let message = signed_message(NETWORK, secret.epoch(), facility, &public_key);
    SignedMaskingKey {
        network: NETWORK.into(),
        epoch: secret.epoch(),
        facility: facility.into(),
        public_key,
        signature: key.sign(&rng, &message).unwrap().as_ref().to_vec(),
        certificate: cert,
    }
}

#[test]
fn shamir_recovers_from_any_threshold_subset_of_a_twelve_member_cohort() {
    let mut rng = Seeded::new(5);
    let n = 12;
    let t = min_threshold(n);
    let secret = FieldElement::random(&mut rng);
    let shares = shamir::split(secret, t, n, &mut rng).unwrap();
    for _ in 0..200 {
        let mut pool = shares.clone();
        for i in (1..n).rev() {
            pool.swap(i, rng.below(i as u128 + 1) as usize);
        }
        assert_eq!(shamir::reconstruct(&pool[..t], t), Ok(secret));
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Figures for the README and the issue: run with
/// `cargo test --release -p psonet-core --test secagg -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; prints figures"]
fn measure_masking_unmasking_and_sharing() {
    let ca = Ca::new();
    let n = 50;
    let lanes = 6_000;
    let (nodes, cohort) = network(&ca, n);
    let t = min_threshold(n);
    let mut rng = Seeded::new(6);
    let verifier = ca.verifier();
    let (_, verify) = time(|| {
        for node in &nodes {
            verifier.verify(&node.signed, UnixTime::now()).unwrap();
        }
    });
    println!("verify {n} masking keys (chain, SAN, signature): {verify:?}");
    let (_, agree) = time(|| {
        for member in cohort.members() {
            nodes[0].secret.agree(&member.public_key).unwrap();
        }
    });
    println!("X25519 agreements with {n} members: {agree:?}");
    let (_, stream) = time(|| {
        let mut v = vec![0u32; lanes];
        for _ in 0..n {
            apply_mask(
                &mut v,
                &psonet_core::secagg::mask::MaskKey::from_bytes([3; 32]),
                Sign::Plus,
            );
        }
    });
    println!("ChaCha20 masks, {n} × {lanes} lanes: {stream:?}");
    let xs: Vec<Vec<u32>> = (0..n)
        .map(|_| (0..lanes).map(|_| rng.below(50) as u32).collect())
        .collect();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let outputs: Outputs = nodes
        .iter()
        .zip(&xs)
        .map(|(node, x)| {
            // The epoch's first query computes the X25519 agreements; later ones reuse them.
            let (out, first) = time(|| round1(node, &cohort, t, x, &mut rng));
            let (_, again) = time(|| round1(node, &cohort, t, x, &mut rng));
            cold.push(first);
            warm.push(again);
            (node.facility.clone(), out)
        })
        .collect();
    cold.sort();
    warm.sort();
    println!(
        "round 1, one node, {n} members × {lanes} lanes (49 pairwise + 1 self mask, {n} sealed shares): median {:?} (max {:?}) with the epoch's agreements cached; {:?} for the epoch's first query",
        warm[n / 2],
        warm[n - 1],
        cold[n / 2]
    );
    let (answers, round2_time) = time(|| round2_of(&nodes, &outputs, &outputs, &[]));
    println!(
        "round 2, all {n} nodes (no dropouts): {round2_time:?} total, {:?} per node",
        round2_time / n as u32
    );
    let (sum, unmask) = time(|| open(&cohort, t, lanes, &outputs, &answers).unwrap());
    assert_eq!(sum, wrapping_sum(&xs, lanes));
    println!("gateway unmask, {n} survivors × {lanes} lanes, none dropped: {unmask:?}");

    // Five members drop after round 1: 45 survivors, 45 × 5 pairwise keys to remove.
    let alive: Outputs = outputs.into_iter().skip(5).collect();
    let dropped: Vec<String> = nodes[..5].iter().map(|n| n.facility.clone()).collect();
    let answers = round2_of(&nodes[5..], &alive, &alive, &dropped);
    let (sum, unmask) = time(|| open(&cohort, t, lanes, &alive, &answers).unwrap());
    assert_eq!(sum, wrapping_sum(&xs[5..], lanes));
    println!("gateway unmask, 45 survivors, 5 dropped after round 1: {unmask:?}");

    for n in [50, 500] {
        let t = min_threshold(n);
        let secret = FieldElement::random(&mut rng);
        let (shares, split) = time(|| shamir::split(secret, t, n, &mut rng).unwrap());
        let (back, reconstruct) = time(|| shamir::reconstruct(&shares, t).unwrap());
        assert_eq!(back, secret);
        println!("Shamir n = {n}, t = {t}: split {split:?}, reconstruct {reconstruct:?}");
    }

    let members: Vec<String> = (0..500).map(|i| format!("f{i:03}")).collect();
    let mut history = psonet_core::secagg::differencing::ParticipantSets::new();
    let mut admitted = 0;
    let (_, check) = time(|| {
        for k in 0..20 {
            // Overlapping windows of 400 of 500 members.
            let set = members
                .iter()
                .cycle()
                .skip(k * 5)
                .take(400)
                .cloned()
                .collect();
            if history.admit(set).is_ok() {
                admitted += 1;
            }
        }
    });
    println!(
        "differencing: 20 participant sets of 400 over 500 facilities ({admitted} admitted): {check:?}"
    );
}
