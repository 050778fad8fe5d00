//! TLS for the broker connection (rustls with the ring provider): the broker certificate is checked against the
//! CA file named in `mqtt.ca_file` (or the system roots when none is given), optionally with a client certificate
//! for brokers that require mutual TLS. Every error names the config key and file it came from.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::MqttConfig;

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{key}: {} is not a PEM certificate file: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{key}: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The rustls client configuration for `cfg` (only called when `mqtt.tls = true`).
pub fn client_config(cfg: &MqttConfig) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(ca) => {
            for c in certs("mqtt.ca_file", ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("mqtt.ca_file: {}: {e}", ca.display()))?;
            }
        }
        None => {
            // the system store, as Debian's ca-certificates installs it
            let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
            for c in certs("mqtt.ca_file (not set; system roots)", system)? {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("mqtt.tls: {e}"))?
        .with_root_certificates(roots);
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certs("mqtt.client_cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "mqtt.client_key: {} is not a PEM private key: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("mqtt.client_cert: {e}"))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("mqtt.client_cert and mqtt.client_key must be given together".into()),
    }
}
