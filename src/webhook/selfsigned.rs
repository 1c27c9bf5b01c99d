//! A local certificate authority and serving certificate, for running `pytune serve` outside a
//! cluster (and for tests): `ca.crt`, `tls.crt` and `tls.key` in one directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// How long generated certificates are valid.
const VALIDITY_DAYS: i64 = 365;

/// The hosts the local serving certificate is for.
pub const LOCAL_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];

/// A certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that can issue serving certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
}

impl Authority {
    pub fn new(common_name: &str) -> Result<Authority> {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let cert = params
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        Ok(Authority {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// A new serving certificate (and key) for `hosts` (DNS names or IP addresses).
    pub fn issue(&self, hosts: &[&str]) -> Result<Pair> {
        let key = KeyPair::generate().context("cannot generate the serving key")?;
        let names: Vec<String> = hosts.iter().map(|host| host.to_string()).collect();
        let mut params =
            CertificateParams::new(names).context("invalid host name for the certificate")?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("pytune"),
        );
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign the serving certificate")?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The files of a local setup.
#[derive(Debug, Clone)]
pub struct LocalTls {
    pub ca_path: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub ca_pem: String,
    /// True when the files were just written, false when existing ones are reused.
    pub created: bool,
}

impl LocalTls {
    /// The CA in the form a webhook configuration's `caBundle` takes.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }
}

/// Existing files are renewed when the serving certificate expires within this many seconds.
const RENEW_BEFORE_SECONDS: i64 = 7 * 86_400;

/// Reuses `ca.crt`, `tls.crt` and `tls.key` in `dir` when all three exist and the certificate is
/// valid for another week; otherwise writes new ones for localhost and 127.0.0.1.
pub fn ensure(dir: &Path) -> Result<LocalTls> {
    let ca_path = dir.join("ca.crt");
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    if ca_path.is_file() && cert_path.is_file() && key_path.is_file() && !expiring(&cert_path) {
        let ca_pem = std::fs::read_to_string(&ca_path)
            .with_context(|| format!("cannot read {}", ca_path.display()))?;
        return Ok(LocalTls {
            ca_path,
            cert_path,
            key_path,
            ca_pem,
            created: false,
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let authority = Authority::new("pytune local CA")?;
    let pair = authority.issue(&LOCAL_HOSTS)?;
    write(&ca_path, &authority.cert_pem, 0o644)?;
    write(&cert_path, &pair.cert_pem, 0o644)?;
    write(&key_path, &pair.key_pem, 0o600)?;
    Ok(LocalTls {
        ca_path,
        cert_path,
        key_path,
        ca_pem: authority.cert_pem,
        created: true,
    })
}

/// True when the certificate at `path` cannot be read or expires soon.
fn expiring(path: &Path) -> bool {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let not_after = std::fs::read(path)
        .ok()
        .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok())
        .and_then(|der| crate::webhook::tls::not_after(der.as_ref()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    not_after.is_none_or(|not_after| not_after - now < RENEW_BEFORE_SECONDS)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_then_reuses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ensure(dir.path()).expect("created");
        assert!(first.created);
        let second = ensure(dir.path()).expect("reused");
        assert!(!second.created);
        assert_eq!(first.ca_pem, second.ca_pem);
        assert!(first.ca_bundle().starts_with("LS0tLS1CRUdJTi")); // "-----BEGIN"
        crate::webhook::tls::install_provider();
        crate::webhook::tls::CertStore::load(&second.cert_path, &second.key_path)
            .expect("pair loads");

        // An unreadable (or expiring) certificate is renewed, CA included.
        std::fs::write(&second.cert_path, "garbage").expect("write");
        let third = ensure(dir.path()).expect("renewed");
        assert!(third.created);
        assert_ne!(third.ca_pem, second.ca_pem);
        crate::webhook::tls::CertStore::load(&third.cert_path, &third.key_path)
            .expect("pair loads");
    }
}
