//! TLS for the gRPC listener (rustls): a certificate and key turn it on; a client CA
//! makes it mutual (clients must present a certificate that CA signed).

use std::path::Path;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::ServerError;
use crate::config::TlsConfig;

/// The TLS settings to serve with, or `None` for plaintext.
pub fn server_tls(config: &TlsConfig) -> Result<Option<ServerTlsConfig>, ServerError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::TlsFile {
        path: path.to_path_buf(),
        source,
    })
}
