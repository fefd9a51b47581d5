//! Native TLS, for a server with no TLS-terminating proxy in front: rustls with the
//! ring provider, HTTP/1.1 only, the certificate chain and private key read from PEM
//! files at start-up and again on SIGHUP (a reload that fails keeps serving the
//! previous certificate). `serve` does each handshake inside its connection's task.

use std::sync::{Arc, PoisonError, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate chain from {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("cannot read the TLS private key from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the TLS certificate and key are not usable together: {0}")]
    Config(String),
}

/// The files, and the acceptor currently built from them.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<RwLock<TlsAcceptor>>,
}

impl Tls {
    /// Reads and checks the files. Blocking (small file reads).
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let acceptor = TlsAcceptor::from(server_config(files)?);
        Ok(Self {
            files: files.clone(),
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again; new connections use them once this returns `Ok`, and on
    /// an error nothing changes. Blocking (small file reads).
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = TlsAcceptor::from(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = acceptor;
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// Reads the TLS certificate and key again (SIGHUP); on an error the server keeps the
/// ones it has.
pub async fn reload_tls(tls: &Tls) {
    let reloading = tls.clone();
    match tokio::task::spawn_blocking(move || reloading.reload()).await {
        Ok(Ok(())) => tracing::info!(
            cert = %tls.files().cert.display(),
            "TLS certificate reloaded; new connections use it"
        ),
        Ok(Err(error)) => {
            tracing::error!(%error, "TLS certificate not reloaded; keeping the previous one");
        }
        Err(error) => tracing::error!(%error, "TLS reload task failed"),
    }
}

fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate {
        path: files.cert.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|error| cert_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| cert_error(error.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in the file".to_owned()));
    }
    // The error names the file and what is wrong with it, never the key's bytes.
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| TlsError::Key {
        path: files.key.display().to_string(),
        reason: error.to_string(),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Config(error.to_string()))?;
    // The server speaks HTTP/1 only (see `serve`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> TlsFiles {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).expect("write key");
        files
    }

    #[test]
    fn loads_a_pair_and_names_the_file_that_is_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = write_pair(dir.path(), "good");
        let tls = Tls::load(&good).expect("a matching pair loads");
        tls.reload().expect("and reloads");

        let missing = TlsFiles {
            cert: dir.path().join("absent.crt"),
            key: good.key.clone(),
        };
        let error = Tls::load(&missing).err().expect("no such file").to_string();
        assert!(
            error.contains("certificate") && error.contains("absent.crt"),
            "{error}"
        );

        let not_pem = dir.path().join("empty.crt");
        std::fs::write(&not_pem, "hello").expect("write");
        let error = Tls::load(&TlsFiles {
            cert: not_pem,
            key: good.key.clone(),
        })
        .err()
        .expect("no certificate")
        .to_string();
        assert!(error.contains("no CERTIFICATE"), "{error}");

        let other = write_pair(dir.path(), "other");
        let error = Tls::load(&TlsFiles {
            cert: good.cert.clone(),
            key: good.cert.clone(),
        })
        .err()
        .expect("a certificate is no key")
        .to_string();
        assert!(error.contains("private key"), "{error}");
        let error = Tls::load(&TlsFiles {
            cert: good.cert.clone(),
            key: other.key.clone(),
        })
        .err()
        .expect("the key of another certificate")
        .to_string();
        assert!(error.contains("not usable together"), "{error}");

        // A reload that fails keeps the acceptor that works.
        std::fs::write(&good.cert, "broken").expect("write");
        assert!(tls.reload().is_err());
        let _still_there = tls.acceptor();
    }
}
