//! Serving certificate: PEM loading (leaf plus intermediates), a rustls config that picks up a
//! rotated certificate on the next handshake, and the expiry time for metrics.
//!
//! Kubernetes rotates a mounted Secret by swapping a `..data` symlink in the directory, so the
//! files are re-read by path (see [`CertStore::reload`]); a new pair replaces the running one only
//! when it parses and the key matches the leaf certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

use crate::webhook::unreadable::ReadFailure;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    // The PEM error goes in as text: its own message prints the markers as lists of bytes.
    #[error("invalid PEM certificate in {path}: {problem}")]
    BadCertificate { path: PathBuf, problem: String },
    #[error("no usable PEM private key in {path}: {problem}")]
    BadKey { path: PathBuf, problem: String },
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider pytune uses everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide provider. Safe to call more than once.
pub fn install_provider() {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses a certificate chain and its private key from PEM.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            problem: pem_problem(&err),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| TlsError::BadKey {
        path: key_path.to_path_buf(),
        problem: pem_problem(&err),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        source,
    })
}

/// A PEM error as the user can act on it, its markers as text.
fn pem_problem(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a section has no end line \"-----END {}-----\"; the file is cut short or not PEM",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "the line {:?} does not start a PEM section (\"-----BEGIN <LABEL>-----\")",
            String::from_utf8_lossy(line)
        ),
        pem::Error::NoItemsFound => {
            "nothing of that kind in it (a PEM \"-----BEGIN ...-----\" section)".to_string()
        }
        other => other.to_string(),
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The files are as last seen (or as unreadable as last reported).
    Unchanged,
    /// The files can be read again after failing, and are as last seen.
    Restored,
    /// New contents are in use.
    Replaced,
}

/// The serving certificate, swapped atomically on rotation; handshakes read the current one.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The file contents last tried, so an unchanged or known-bad pair is not parsed again.
    last_seen: Mutex<(Vec<u8>, Vec<u8>)>,
    read_failure: ReadFailure,
    expiry: Mutex<Option<i64>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair; fails when it is missing or invalid.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertStore, TlsError> {
        let (cert_pem, key_pem) = read_pair(cert_path, key_path)?;
        let key = certified_key(&cert_pem, &key_pem, cert_path, key_path)?;
        let expiry = leaf_not_after(&key);
        Ok(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: ArcSwap::from_pointee(key),
            last_seen: Mutex::new((cert_pem, key_pem)),
            read_failure: ReadFailure::default(),
            expiry: Mutex::new(expiry),
        })
    }

    /// Re-reads the files; swaps in the new pair only when it is valid. On error the running pair
    /// stays, and the same bad contents, like the same read error, are not reported twice.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let (cert_pem, key_pem) = match read_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => pair,
            Err(err) if self.read_failure.failed(&err.to_string()) => return Err(err),
            Err(_) => return Ok(Reloaded::Unchanged),
        };
        let restored = self.read_failure.succeeded();
        {
            let mut last = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            if last.0 == cert_pem && last.1 == key_pem {
                return Ok(if restored {
                    Reloaded::Restored
                } else {
                    Reloaded::Unchanged
                });
            }
            *last = (cert_pem.clone(), key_pem.clone());
        }
        let key = certified_key(&cert_pem, &key_pem, &self.cert_path, &self.key_path)?;
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner()) = leaf_not_after(&key);
        self.current.store(Arc::new(key));
        Ok(Reloaded::Replaced)
    }

    /// When the serving leaf certificate expires (Unix seconds), if its validity could be read.
    pub fn expiry(&self) -> Option<i64> {
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(cert_path)?, read(key_path)?))
}

/// TLS 1.2 and 1.3, `h2` and `http/1.1` by ALPN, the certificate from `store` at each handshake.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn leaf_not_after(key: &CertifiedKey) -> Option<i64> {
    key.cert.first().and_then(|leaf| not_after(leaf.as_ref()))
}

/// The `notAfter` of an X.509 certificate in DER, as Unix seconds.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, certificate, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = der_element(certificate)?;
    if tag != 0x30 {
        return None;
    }
    // version [0] (optional), serialNumber, signature, issuer, validity
    let (tag, _, rest) = der_element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..3 {
        let (_, _, rest) = der_element(tbs)?;
        tbs = rest;
    }
    let (tag, validity, _) = der_element(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = der_element(validity)?;
    let (tag, time, _) = der_element(rest)?;
    der_time(tag, std::str::from_utf8(time).ok()?)
}

/// One DER element: tag, contents, and what follows.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (bytes, after) = rest.split_at(octets);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte))
    };
    if rest.len() < length {
        return None;
    }
    let (contents, after) = rest.split_at(length);
    Some((tag, contents, after))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn der_time(tag: u8, text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if digits.len() == 12 => {
            let yy: i32 = digits.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        0x18 if digits.len() == 14 => (digits.get(..4)?.parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |at: usize| -> Option<u8> { rest.get(at..at + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let time = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::selfsigned::Authority;

    #[test]
    fn reads_the_expiry_of_a_certificate() {
        let authority = Authority::new("test CA").expect("CA");
        let leaf = authority.issue(&["localhost"]).expect("leaf");
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).expect("PEM");
        let expiry = not_after(der.as_ref()).expect("validity");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(expiry > now + 300 * 86_400 && expiry < now + 400 * 86_400);
        assert_eq!(der_time(0x17, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x18, "20491231235959Z"), Some(2_524_607_999));
        assert_eq!(not_after(b"\x30\x85"), None);
    }

    #[test]
    fn loads_chains_and_rejects_mismatched_keys() {
        install_provider();
        let authority = Authority::new("test CA").expect("CA");
        let one = authority.issue(&["localhost"]).expect("leaf");
        let two = authority.issue(&["localhost"]).expect("leaf");
        let chain = format!("{}{}", one.cert_pem, authority.cert_pem);
        let path = Path::new("x");
        let key = certified_key(chain.as_bytes(), one.key_pem.as_bytes(), path, path)
            .expect("chain loads");
        assert_eq!(key.cert.len(), 2);
        assert!(matches!(
            certified_key(one.cert_pem.as_bytes(), two.key_pem.as_bytes(), path, path),
            Err(TlsError::Mismatch { .. })
        ));
        assert!(matches!(
            certified_key(b"", one.key_pem.as_bytes(), path, path),
            Err(TlsError::NoCertificate(_))
        ));
        assert!(matches!(
            certified_key(one.cert_pem.as_bytes(), b"nope", path, path),
            Err(TlsError::BadKey { .. })
        ));
    }

    #[test]
    fn pem_errors_name_the_markers_as_text() {
        let authority = Authority::new("test CA").expect("CA");
        let leaf = authority.issue(&["localhost"]).expect("leaf");
        let path = Path::new("tls.crt");
        let cut = leaf.cert_pem.replace("-----END CERTIFICATE-----", "");
        let err = certified_key(cut.as_bytes(), leaf.key_pem.as_bytes(), path, path)
            .err()
            .map(|err| format!("{:#}", anyhow::Error::from(err)));
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid PEM certificate in tls.crt: a section has no end line \
                 \"-----END CERTIFICATE-----\"; the file is cut short or not PEM"
            )
        );
    }
}
