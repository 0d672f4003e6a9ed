//! Reading a peer's TLS refusal directly.
//!
//! Under TLS 1.3 a server checks the client certificate after the client considers the
//! handshake done, so a refused client often sees only "broken pipe" when its first request
//! races the server's alert. When a call fails that way, this probe repeats the handshake alone
//! and *reads* instead of writing, so the alert (unknown CA, certificate required, …) arrives.

use psonet_serve::diagnose::{Failure, diagnose_tls_io_as};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Handshakes with `addr` as `identity` (a directory with cert.pem and key.pem, or none) and
/// trusts `ca`; returns the refusal the peer sends, if any, explained from `own_certificate`
/// (the leaf in `identity`, DER) when given.
pub async fn probe(
    addr: &str,
    host: &str,
    ca: &Path,
    identity: Option<&Path>,
    own_certificate: Option<&[u8]>,
    peer: &str,
) -> Option<Failure> {
    let config = client_config(ca, identity)?;
    let tcp = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut tls = match TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return diagnose_tls_io_as(&e, peer, own_certificate),
    };
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(3), tls.read(&mut byte)).await {
        Ok(Err(e)) => diagnose_tls_io_as(&e, peer, own_certificate),
        _ => None,
    }
}

fn client_config(ca: &Path, identity: Option<&Path>) -> Option<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).ok()? {
        roots.add(cert.ok()?).ok()?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(dir) => {
            let certs = CertificateDer::pem_file_iter(dir.join("cert.pem"))
                .ok()?
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).ok()?;
            builder.with_client_auth_cert(certs, key).ok()?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Some(config)
}
