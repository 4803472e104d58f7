//! TLS to PostgreSQL (rustls), with libpq's `sslmode` meanings, from the URL's `sslmode`
//! and `sslrootcert` (a PEM file of the CA certificates to trust):
//!
//! - `disable`: no TLS;
//! - `prefer` (the default, as libpq's): TLS when the server offers it, unverified;
//! - `require`: TLS or no connection; verified as `verify-ca` when `sslrootcert` is given,
//!   else unverified (it stops eavesdropping, not an impostor);
//! - `verify-ca`: TLS with a certificate chain to a CA of `sslrootcert`;
//! - `verify-full`: that, and the certificate must name the host connected to.
//!
//! A CA given with `prefer` is refused rather than ignored: whoever names a CA means the
//! server's certificate to be checked, and `prefer` checks nothing (and falls back to no
//! TLS). Certificates are checked by webpki, more strictly than libpq: the host must be in
//! the certificate's subject alternative names (not only its common name), and the server's
//! certificate must be issued by the CA, not be the CA itself.
//!
//! tokio-postgres knows only the first three, so these two parameters are taken out of
//! the URL here and the rest is its own.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a node's connections use TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL made ready to connect: tokio-postgres's configuration and the TLS
/// connector its `sslmode` asks for.
pub struct Connect {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: Mode,
}

/// Parses a `postgres://` URL with libpq's TLS parameters.
pub fn parse(url: &str) -> Result<Connect, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (Mode::Prefer, None);
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" if value == "system" => {
                return Err("sslrootcert=system (the system's CAs) is not supported: give the CA's PEM file".into());
            }
            "sslrootcert" => {
                root = Some(percent_decode(value).ok_or_else(|| format!("sslrootcert {value:?} is not a path"))?)
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    if mode == Mode::Prefer && root.is_some() {
        return Err("a CA is given (sslrootcert or --database-ca-file) but sslmode is prefer, which checks nothing \
                    and may not use TLS at all: add sslmode=verify-full (or verify-ca) to the URL"
            .into());
    }
    let roots = match &root {
        Some(path) => Some(read_roots(Path::new(path))?),
        None if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) => {
            return Err(format!(
                "sslmode={} needs the CA that signed the server's certificate: add sslrootcert=<PEM file> to the URL \
                 (or --database-ca-file)",
                if mode == Mode::VerifyCa { "verify-ca" } else { "verify-full" }
            ));
        }
        None => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (Mode::VerifyFull, Some(roots)) => chain_verifier(roots, &provider)?,
        (Mode::Require | Mode::VerifyCa, Some(roots)) => Arc::new(AnyName(chain_verifier(roots, &provider)?)),
        _ => Arc::new(Unverified(provider.signature_verification_algorithms)),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Connect { config, tls: MakeRustlsConnect::new(tls), mode })
}

/// A URL with `sslrootcert` set to `ca_file` unless it names one already.
pub fn with_root_cert(url: &str, ca_file: &Path) -> String {
    if url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("sslrootcert="))) {
        return url.to_owned();
    }
    let encoded: String = ca_file
        .to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslrootcert={encoded}")
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA file {} is not PEM certificates: {e}", path.display()))?;
    for cert in certs {
        roots.add(cert).map_err(|e| format!("a certificate of {} is not usable as a CA: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("the CA file {} holds no certificate", path.display()));
    }
    Ok(roots)
}

fn chain_verifier(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>, String> {
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| e.to_string())
}

/// `verify-ca`: the chain is verified, the name the certificate is for is not.
#[derive(Debug)]
struct AnyName(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: any certificate, but the handshake is still
/// signed by the key it presents (as libpq, this stops eavesdropping, not an impostor).
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_root_certs_are_read_from_the_url() {
        let c = parse("postgres://u@db.internal:5432/synctrig?sslmode=disable").unwrap();
        assert_eq!((c.mode, c.config.get_ssl_mode()), (Mode::Disable, SslMode::Disable));
        let c = parse("postgres://u@db/synctrig?application_name=x").unwrap();
        assert_eq!((c.mode, c.config.get_application_name()), (Mode::Prefer, Some("x")));
        let c = parse("postgres://u@db/synctrig?sslmode=require").unwrap();
        assert_eq!((c.mode, c.config.get_ssl_mode()), (Mode::Require, SslMode::Require));
        let e = parse("postgres://u@db/synctrig?sslmode=verify-full").err().unwrap();
        assert!(e.contains("needs the CA"), "{e}");
        let e = parse("postgres://u@db/synctrig?sslmode=verify-full&sslrootcert=/nonexistent.pem").err().unwrap();
        assert!(e.contains("cannot read the CA file /nonexistent.pem"), "{e}");
        assert!(parse("postgres://u@db/synctrig?sslmode=sometimes").is_err());
        let e = parse("postgres://u@db/synctrig?sslrootcert=/etc/ca.pem").err().unwrap();
        assert!(e.contains("sslmode is prefer, which checks nothing"), "{e}");
        let e = parse("postgres://u@db/synctrig?sslmode=verify-full&sslrootcert=system").err().unwrap();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn a_ca_file_is_added_unless_the_url_names_one() {
        let path = Path::new("/etc/synctrig/ca dir/ca.pem");
        assert_eq!(
            with_root_cert("postgres://u@db/s", path),
            "postgres://u@db/s?sslrootcert=/etc/synctrig/ca%20dir/ca.pem"
        );
        assert_eq!(
            with_root_cert("postgres://u@db/s?sslmode=verify-full", path),
            "postgres://u@db/s?sslmode=verify-full&sslrootcert=/etc/synctrig/ca%20dir/ca.pem"
        );
        assert_eq!(
            with_root_cert("postgres://u@db/s?sslrootcert=/a.pem", path),
            "postgres://u@db/s?sslrootcert=/a.pem"
        );
        assert_eq!(percent_decode("/etc/synctrig/ca%20dir/ca.pem").as_deref(), Some("/etc/synctrig/ca dir/ca.pem"));
    }
}
