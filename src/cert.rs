//! Self-signed certificates: a local CA and a leaf made with rcgen, kept, reused and renewed.
//!
//! The CA lives ten years so a browser told to trust it keeps trusting it; the leaf lives 90 days
//! and is re-issued by the same CA when it nears expiry or when the configured host names change.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::config::TlsConfig;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const LEAF_CERT: &str = "cert.pem";
const LEAF_KEY: &str = "key.pem";
const CA_LIFETIME: Duration = Duration::days(3650);
const LEAF_LIFETIME: Duration = Duration::days(90);
/// A leaf this close to expiry is renewed at start-up, so a running server never serves an
/// expired one between restarts a week apart.
const RENEW_BEFORE: Duration = Duration::days(7);
/// Names the leaf always covers, so `https://localhost` and loopback IPs just work.
const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// What happened to the certificates at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// A new CA and leaf were generated.
    Created,
    /// The existing leaf was valid and covers the configured names.
    Reused,
    /// The leaf was re-issued (expired, near expiry, or names changed) by the existing CA.
    Renewed,
    /// Paths from the configuration were used as they are.
    Configured,
}

/// The server's certificate chain and key, ready for rustls.
pub struct Certificates {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// Base64 SHA-256 of the leaf's SubjectPublicKeyInfo, for Chrome's SPKI allow-list flag.
    pub spki_sha256: String,
    /// The generated CA certificate clients can trust, when the certificates are generated.
    pub ca_path: Option<PathBuf>,
    /// Whether they were created, reused, renewed or configured.
    pub provenance: Provenance,
}

impl Certificates {
    /// Loads the configured certificate, or creates, reuses or renews the generated ones.
    pub fn resolve(tls: &TlsConfig) -> anyhow::Result<Self> {
        if let (Some(cert), Some(key)) = (&tls.cert_path, &tls.key_path) {
            return Self::from_files(cert, key);
        }
        let wanted = wanted_names(&tls.hosts);
        let dir = &tls.cert_dir;
        let ca = load_ca(dir).unwrap_or(None);
        let (ca_pem, ca_key, mut provenance) = match ca {
            Some((pem, key)) => (pem, key, Provenance::Renewed),
            None => {
                let (pem, key) = create_ca(dir)?;
                (pem, key, Provenance::Created)
            }
        };
        let leaf_ok = provenance != Provenance::Created && leaf_is_current(dir, &wanted);
        if leaf_ok {
            provenance = Provenance::Reused;
        } else {
            issue_leaf(dir, &ca_pem, &ca_key, &wanted)?;
        }
        let mut certs = Self::from_files(&dir.join(LEAF_CERT), &dir.join(LEAF_KEY))?;
        certs.ca_path = Some(dir.join(CA_CERT));
        certs.provenance = provenance;
        Ok(certs)
    }

    /// Reads a PEM chain and key from disk.
    fn from_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificate {}", cert.display()))?;
        let Some(leaf) = chain.first() else {
            bail!("{} holds no certificate", cert.display());
        };
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading private key {}", key.display()))?;
        let spki_sha256 = spki_sha256(leaf)?;
        Ok(Self { chain, key, spki_sha256, ca_path: None, provenance: Provenance::Configured })
    }

    /// The Chromium command line that opens `https://<origin>/` over HTTP/3 while trusting this
    /// certificate by its public key (no CA import needed); kino prints it at start-up and in
    /// `kino cert`, and the browser tests run exactly what it prints.
    pub fn chrome_command(&self, origin: &str) -> String {
        format!(
            "chromium --origin-to-force-quic-on={origin} --ignore-certificate-errors-spki-list={} https://{origin}/",
            self.spki_sha256
        )
    }
}

/// The SAN set the leaf must carry, normalised so the comparison ignores order and spelling.
fn wanted_names(hosts: &[String]) -> BTreeSet<String> {
    LOCAL_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(hosts.iter().cloned())
        .map(|name| normalise(&name))
        .collect()
}

fn normalise(name: &str) -> String {
    let name = name.trim().trim_start_matches('[').trim_end_matches(']');
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

fn load_ca(dir: &Path) -> anyhow::Result<Option<(String, KeyPair)>> {
    let (Ok(pem), Ok(key)) =
        (std::fs::read_to_string(dir.join(CA_CERT)), std::fs::read_to_string(dir.join(CA_KEY)))
    else {
        return Ok(None);
    };
    let der = CertificateDer::from_pem_slice(pem.as_bytes())?;
    let (_, cert) = X509Certificate::from_der(&der)?;
    if cert.validity().not_after.timestamp() < (OffsetDateTime::now_utc() + RENEW_BEFORE).unix_timestamp() {
        return Ok(None);
    }
    Ok(Some((pem, KeyPair::from_pem(&key)?)))
}

fn create_ca(dir: &Path) -> anyhow::Result<(String, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_LIFETIME;
    params.distinguished_name = name("kino local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key)?;
    let pem = cert.pem();
    crate::fs::write_private(&dir.join(CA_KEY), key.serialize_pem().as_bytes())?;
    crate::fs::write_atomic(&dir.join(CA_CERT), pem.as_bytes(), 0o644)?;
    Ok((pem, key))
}

fn leaf_is_current(dir: &Path, wanted: &BTreeSet<String>) -> bool {
    let check = || -> anyhow::Result<bool> {
        std::fs::metadata(dir.join(LEAF_KEY))?;
        let facts = facts(&dir.join(LEAF_CERT))?;
        let fresh = facts.not_after > (OffsetDateTime::now_utc() + RENEW_BEFORE).unix_timestamp();
        Ok(fresh && &facts.names == wanted)
    };
    check().unwrap_or(false)
}

/// What `kino doctor` and the renewal check read from a certificate file (its first PEM block).
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Valid from, seconds since the epoch.
    pub(crate) not_before: i64,
    /// Valid until, seconds since the epoch.
    pub(crate) not_after: i64,
    /// Its DNS names and IP addresses (subject alternative names), normalised.
    pub(crate) names: BTreeSet<String>,
    /// The certificate itself (DER), to look for in a trust store.
    pub(crate) der: Vec<u8>,
}

/// Reads the first certificate of a PEM file.
pub(crate) fn facts(path: &Path) -> anyhow::Result<Facts> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = CertificateDer::from_pem_slice(&pem).with_context(|| format!("parsing {}", path.display()))?;
    let (_, cert) = X509Certificate::from_der(&der)?;
    let names = cert
        .subject_alternative_name()?
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(normalise(dns)),
                    GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let validity = cert.validity();
    Ok(Facts {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        names,
        der: der.to_vec(),
    })
}

/// The generated CA, leaf and key paths under `dir`.
pub(crate) fn generated_paths(dir: &Path) -> [PathBuf; 3] {
    [dir.join(CA_CERT), dir.join(LEAF_CERT), dir.join(LEAF_KEY)]
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn issue_leaf(dir: &Path, ca_pem: &str, ca_key: &KeyPair, wanted: &BTreeSet<String>) -> anyhow::Result<()> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + LEAF_LIFETIME;
    params.distinguished_name = name("kino");
    params.subject_alt_names = wanted
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(name.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    crate::fs::write_private(&dir.join(LEAF_KEY), key.serialize_pem().as_bytes())?;
    let chain = format!("{}{}", cert.pem(), ca_pem);
    crate::fs::write_atomic(&dir.join(LEAF_CERT), chain.as_bytes(), 0o644)?;
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "kino");
    dn
}

/// Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (what Chrome's SPKI list expects).
fn spki_sha256(cert: &CertificateDer<'_>) -> anyhow::Result<String> {
    let (_, parsed) = X509Certificate::from_der(cert).context("parsing the leaf certificate")?;
    let digest = ring::digest::digest(&ring::digest::SHA256, parsed.public_key().raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(dir: &Path, hosts: &[&str]) -> TlsConfig {
        TlsConfig {
            cert_dir: dir.to_owned(),
            hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            cert_path: None,
            key_path: None,
            hsts: false,
        }
    }

    #[test]
    fn created_then_reused_then_renewed_when_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let first = Certificates::resolve(&tls(dir.path(), &[])).unwrap();
        assert_eq!(first.provenance, Provenance::Created);
        let ca_before = std::fs::read(dir.path().join(CA_CERT)).unwrap();

        let second = Certificates::resolve(&tls(dir.path(), &["LOCALHOST"])).unwrap();
        assert_eq!(second.provenance, Provenance::Reused);
        assert_eq!(second.spki_sha256, first.spki_sha256);

        let third = Certificates::resolve(&tls(dir.path(), &["media.example"])).unwrap();
        assert_eq!(third.provenance, Provenance::Renewed);
        assert_ne!(third.spki_sha256, first.spki_sha256);
        assert_eq!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca_before, "CA is kept");
    }

    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Certificates::resolve(&tls(dir.path(), &[])).unwrap();
        for key in [CA_KEY, LEAF_KEY] {
            let mode = std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn spki_hash_is_base64_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certificates::resolve(&tls(dir.path(), &[])).unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(&certs.spki_sha256).unwrap();
        assert_eq!(raw.len(), 32);
        assert!(certs.chrome_command("localhost:8443").contains(&certs.spki_sha256));
    }
}
