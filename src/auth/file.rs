//! The auth file: one `[[token]]` table per token, holding its name, the SHA-256 of
//! the token (hex; `pulsebus hash-token` prints it) and its permissions.
//!
//! ```toml
//! [[token]]
//! name = "lesson-service"
//! sha256 = "<64 hex digits>"
//! publish = ["lessons", "lessons.*"]
//! subscribe = []
//!
//! [[token]]
//! name = "ops"
//! sha256 = "<64 hex digits>"
//! admin = true
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Authenticator, Pattern, Principal};

/// Why the auth file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file could not be read.
    #[error("cannot read auth file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("auth file {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its position.
        source: Box<toml::de::Error>,
    },
    /// A token's hash is not 64 hex digits.
    #[error(
        "auth file {path}: token '{name}' needs sha256 = 64 hex digits (see `pulsebus hash-token`)"
    )]
    BadHash {
        /// The file.
        path: PathBuf,
        /// The token's name.
        name: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// Reads the auth file into an authenticator (authentication on).
pub fn load(path: &Path) -> Result<Authenticator, AuthFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: AuthFile = toml::from_str(&text).map_err(|source| AuthFileError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut tokens = Vec::with_capacity(file.token.len());
    for entry in file.token {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(entry.sha256.trim(), &mut hash).map_err(|_| {
            AuthFileError::BadHash {
                path: path.to_path_buf(),
                name: entry.name.clone(),
            }
        })?;
        let patterns = |list: Vec<String>| list.iter().map(|p| Pattern::new(p)).collect();
        tokens.push((
            hash,
            Principal {
                name: entry.name,
                publish: patterns(entry.publish),
                subscribe: patterns(entry.subscribe),
                admin: entry.admin,
            },
        ));
    }
    Ok(Authenticator::with_tokens(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_token;

    #[test]
    fn a_valid_file_loads_and_a_bad_hash_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.toml");
        let hash = hex::encode(hash_token("t0ken"));
        std::fs::write(
            &path,
            format!("[[token]]\nname = \"svc\"\nsha256 = \"{hash}\"\npublish = [\"lessons.*\"]\n"),
        )
        .unwrap();
        let auth = load(&path).unwrap();
        let mut headers = tonic::metadata::MetadataMap::new();
        headers.insert("authorization", "Bearer t0ken".parse().unwrap());
        assert_eq!(auth.authenticate(&headers).unwrap().name, "svc");

        std::fs::write(&path, "[[token]]\nname = \"svc\"\nsha256 = \"abc\"\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("'svc'") && err.contains("64 hex"), "{err}");
        std::fs::write(
            &path,
            "[[token]]\nname = \"svc\"\nsha256 = \"abc\"\nsurprise = 1\n",
        )
        .unwrap();
        assert!(matches!(load(&path), Err(AuthFileError::Parse { .. })));
    }
}
