//! Built-in TLS (`server.tls_cert` / `server.tls_key`), for deployments
//! without a reverse proxy.
//!
//! rustls asks [`ReloadableCert`] for the certificate at every handshake,
//! so replacing the certificate it holds (on SIGHUP, [`ReloadableCert::reload`])
//! changes what new connections get while established connections keep
//! the session they negotiated. A certificate that fails to load on reload
//! is reported and the previous one stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// A certificate or key that cannot be used; the message names the
/// configuration key and the file, and says what is wrong in plain words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// What was loaded, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The end-entity certificate's subject (e.g. `CN=scim.example.com`).
    pub subject: String,
    /// The end of its validity period.
    pub not_after: String,
    /// Whether it has already expired (clients will refuse it).
    pub expired: bool,
}

/// The server certificate, replaceable while the server runs.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

/// The cryptography rustls uses: ring, whose build is a few C and assembly
/// files, where rustls' default aws-lc-rs adds minutes of C build to every
/// cold build. rustls deprecates ring's provider because it lacks the
/// post-quantum key exchange (X25519MLKEM768); the classical suites
/// (X25519, P-256, AES-GCM, ChaCha20) are what every SCIM client negotiates.
#[expect(deprecated, reason = "ring instead of aws-lc-rs, see above")]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ReloadableCert {
    /// Loads the PEM certificate chain at `cert_path` and the PEM private key
    /// at `key_path`.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<(Self, CertSummary), TlsError> {
        let (key, summary) = load_pair(cert_path, key_path)?;
        let cert = ReloadableCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
        };
        Ok((cert, summary))
    }

    /// Reads both files again; on success new handshakes get the new
    /// certificate, on failure the current one stays.
    pub fn reload(&self) -> Result<CertSummary, TlsError> {
        let (key, summary) = load_pair(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(summary)
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The rustls configuration of the listener: TLS 1.2 and 1.3, no client
/// certificates, the certificate from `cert`. actix-web adds the ALPN
/// protocols itself.
pub fn server_config(cert: Arc<ReloadableCert>) -> Result<ServerConfig, TlsError> {
    Ok(ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(cert))
}

/// Reads the certificate chain and the key and checks that they belong
/// together.
fn load_pair(cert_path: &Path, key_path: &Path) -> Result<(CertifiedKey, CertSummary), TlsError> {
    let cert_err =
        |why: String| TlsError(format!("server.tls_cert ({}): {why}", cert_path.display()));
    let key_err = |why: String| TlsError(format!("server.tls_key ({}): {why}", key_path.display()));

    let cert_pem =
        std::fs::read(cert_path).map_err(|e| cert_err(format!("cannot read it: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(pem_problem(&e)))?;
    let Some(leaf) = chain.first() else {
        return Err(cert_err(
            "holds no certificate: expected a PEM block starting with \
             -----BEGIN CERTIFICATE-----"
                .into(),
        ));
    };
    let summary = summarize(leaf).map_err(cert_err)?;

    let key_pem = std::fs::read(key_path).map_err(|e| key_err(format!("cannot read it: {e}")))?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(key_err(
                "holds no private key: expected a PEM block starting with \
                 -----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or \
                 -----BEGIN EC PRIVATE KEY-----"
                    .into(),
            ))
        }
        Err(e) => return Err(key_err(pem_problem(&e))),
    };
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => key_err(format!(
            "this private key does not belong to the certificate in {} ({})",
            cert_path.display(),
            summary.subject
        )),
        other => key_err(format!(
            "the private key cannot be used (RSA, ECDSA P-256/P-384 and Ed25519 keys are supported): {other}"
        )),
    })?;
    Ok((certified, summary))
}

/// A PEM syntax problem in words.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => {
            "is not valid PEM: a block has no -----END ...----- line".into()
        }
        pem::Error::IllegalSectionStart { .. } => {
            "is not valid PEM: a -----BEGIN ...----- line is malformed".into()
        }
        pem::Error::Base64Decode(_) => {
            "is not valid PEM: the text between BEGIN and END is not base64".into()
        }
        other => format!("is not valid PEM: {other}"),
    }
}

/// The subject and expiry of a DER certificate.
fn summarize(der: &CertificateDer<'_>) -> Result<CertSummary, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|_| {
        "the first PEM block is not a valid X.509 certificate (its contents cannot be decoded)"
            .to_string()
    })?;
    let validity = cert.validity();
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        not_after: validity.not_after.to_string(),
        expired: validity.time_to_expiration().is_none(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn err(cert: &Path, key: &Path) -> String {
        ReloadableCert::load(cert, key).unwrap_err().to_string()
    }

    #[test]
    fn bad_files_are_explained_in_plain_words() {
        let dir = tempfile::tempdir().unwrap();
        let (a_crt, a_key) = write_pair(dir.path(), "a.example");
        let (_, b_key) = write_pair(dir.path(), "b.example");
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello\n").unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let not_x509 = dir.path().join("notx509.pem");
        std::fs::write(
            &not_x509,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();

        let cases = [
            (err(&missing, &a_key), "server.tls_cert", "cannot read it"),
            (
                err(&garbage, &a_key),
                "server.tls_cert",
                "holds no certificate",
            ),
            (err(&broken, &a_key), "server.tls_cert", "no -----END"),
            (
                err(&not_x509, &a_key),
                "server.tls_cert",
                "not a valid X.509",
            ),
            (
                err(&a_crt, &a_crt),
                "server.tls_key",
                "holds no private key",
            ),
            (err(&a_crt, &b_key), "server.tls_key", "does not belong"),
        ];
        for (msg, key, why) in cases {
            assert!(msg.starts_with(key), "{msg}");
            assert!(msg.contains(why), "{msg} should say {why}");
            assert!(!msg.contains("Der("), "{msg}");
        }
    }

    #[test]
    fn reload_swaps_the_certificate_and_a_bad_file_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = write_pair(dir.path(), "a.example");
        let (cert, summary) = ReloadableCert::load(&crt, &key).unwrap();
        assert_eq!(summary.subject, "CN=rcgen self signed cert");
        assert!(!summary.expired);
        let first = Arc::clone(&cert.current.read().unwrap());

        std::fs::write(&crt, "not a certificate").unwrap();
        assert!(cert.reload().is_err());
        assert!(Arc::ptr_eq(&first, &cert.current.read().unwrap()));

        let (b_crt, b_key) = write_pair(dir.path(), "b.example");
        std::fs::rename(b_crt, &crt).unwrap();
        std::fs::rename(b_key, &key).unwrap();
        cert.reload().unwrap();
        let now = Arc::clone(&cert.current.read().unwrap());
        assert_ne!(first.cert, now.cert);
    }
}
