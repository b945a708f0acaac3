//! TLS for local test servers: a throw-away PKI made with rcgen and an HTTPS server built on
//! [`RawServer`] and tokio-rustls.

use std::io::Write;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::raw_server::{RawRequest, RawServer};

/// The names every test server certificate is valid for.
const SERVER_NAMES: [&str; 3] = ["127.0.0.1", "127.0.0.2", "localhost"];

/// A server certificate and the PEM bundle a client must trust to accept it.
pub struct TestPki {
    /// The roots to trust, as written to [`TestPki::ca_path`].
    pub roots_pem: String,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
    roots_file: tempfile::NamedTempFile,
}

impl TestPki {
    /// A test CA and a server certificate it issued; the bundle holds the CA.
    pub fn with_ca() -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "llm-sidecar test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(SERVER_NAMES.map(String::from)).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "llm-sidecar test server");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        TestPki::new(ca_cert.pem(), leaf.der().clone(), leaf_key)
    }

    /// A self-signed server certificate (as `openssl req -x509` or a local LLM server makes);
    /// the bundle holds that certificate itself.
    pub fn self_signed() -> TestPki {
        let certified = rcgen::generate_simple_self_signed(SERVER_NAMES.map(String::from)).unwrap();
        TestPki::new(
            certified.cert.pem(),
            certified.cert.der().clone(),
            certified.signing_key,
        )
    }

    fn new(roots_pem: String, leaf: CertificateDer<'static>, key: KeyPair) -> TestPki {
        let mut roots_file = tempfile::Builder::new()
            .prefix("llm-sidecar-test-ca-")
            .suffix(".pem")
            .tempfile()
            .unwrap();
        roots_file.write_all(roots_pem.as_bytes()).unwrap();
        roots_file.flush().unwrap();
        TestPki {
            roots_pem,
            leaf,
            key: key.serialize_der(),
            roots_file,
        }
    }

    /// Path of the PEM bundle, for `caCertificates`.
    pub fn ca_path(&self) -> String {
        self.roots_file.path().to_str().unwrap().to_owned()
    }

    /// A TLS acceptor presenting the server certificate, offering HTTP/1.1 only.
    pub fn acceptor(&self) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![self.leaf.clone()], key)
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

/// An HTTPS server on a loopback address: each request on a kept-alive TLS connection gets
/// `respond(request)` (head and body). Failed handshakes close the connection.
pub fn https_server(
    ip: &str,
    pki: &TestPki,
    respond: impl Fn(&RawRequest) -> Vec<u8> + Send + Sync + 'static,
) -> RawServer {
    let acceptor = pki.acceptor();
    let respond = Arc::new(respond);
    RawServer::start_on(ip, move |conn| {
        let acceptor = acceptor.clone();
        let respond = Arc::clone(&respond);
        async move {
            let Ok(mut conn) = conn.upgrade(|tcp| acceptor.accept(tcp)).await else {
                return;
            };
            while let Some(request) = conn.read_request().await {
                if !conn.write(&respond(&request)).await {
                    return;
                }
            }
        }
    })
}

/// `https://<addr><path>` for a server from [`https_server`].
pub fn https_url(server: &RawServer, path: &str) -> String {
    format!("https://{}{}", server.addr(), path)
}
