//! Who may do what: bearer tokens (gRPC metadata `authorization: Bearer <token>`) with
//! permissions per topic pattern. Tokens are stored and compared only as SHA-256
//! hashes and never logged; a principal is known by its name.
//!
//! Health and reflection stay open; every EventBus call is authenticated by
//! [`Authenticator::authenticate`] (a tonic interceptor) and authorised per topic by
//! [`Principal::check`].

mod file;
mod pattern;

pub use file::{AuthFileError, load};
pub use pattern::Pattern;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

/// What a call wants to do to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish to it.
    Publish,
    /// Subscribe, ack, seek, read or list its consumers.
    Subscribe,
    /// Delete its consumers (administration).
    Admin,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Admin => "admin",
        })
    }
}

/// Why a call was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable `authorization: Bearer ...` header.
    #[error("authentication required: send `authorization: Bearer <token>`")]
    Missing,
    /// A token that matches no configured one.
    #[error("unknown or revoked token")]
    Unknown,
    /// The principal may not do that to that topic.
    #[error("'{principal}' may not {action} topic '{topic}'")]
    Denied {
        /// The token's name.
        principal: String,
        /// What was attempted.
        action: Action,
        /// On which topic.
        topic: String,
    },
}

/// An authenticated caller and its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (for logs and messages; never the token).
    pub name: String,
    /// Topics it may publish to.
    pub publish: Vec<Pattern>,
    /// Topics it may subscribe to (and ack, seek, read, list consumers of).
    pub subscribe: Vec<Pattern>,
    /// May do everything.
    pub admin: bool,
}

impl Principal {
    /// The caller when authentication is off: allowed everything.
    pub fn anyone() -> Self {
        Self {
            name: "anonymous".to_owned(),
            publish: Vec::new(),
            subscribe: Vec::new(),
            admin: true,
        }
    }

    /// Whether it may do `action` to `topic`.
    pub fn may(&self, action: Action, topic: &str) -> bool {
        let matches = |patterns: &[Pattern]| patterns.iter().any(|p| p.matches(topic));
        self.admin
            || match action {
                Action::Publish => matches(&self.publish),
                Action::Subscribe => matches(&self.subscribe),
                Action::Admin => false,
            }
    }

    /// [`Principal::may`], as an error naming who, what and where.
    pub fn check(&self, action: Action, topic: &str) -> Result<(), AuthError> {
        if self.may(action, topic) {
            return Ok(());
        }
        Err(AuthError::Denied {
            principal: self.name.clone(),
            action,
            topic: topic.to_owned(),
        })
    }

    /// Whether it may see `topic` at all (ListTopics shows only those).
    pub fn sees(&self, topic: &str) -> bool {
        self.may(Action::Publish, topic) || self.may(Action::Subscribe, topic)
    }
}

/// Maps presented tokens to principals; with no tokens configured, everyone is allowed.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    by_hash: Option<HashMap<[u8; 32], Arc<Principal>>>,
}

impl Authenticator {
    /// Authentication off.
    pub fn open() -> Self {
        Self::default()
    }

    /// Authentication on, with these principals keyed by their token's SHA-256.
    pub fn with_tokens(tokens: impl IntoIterator<Item = ([u8; 32], Principal)>) -> Self {
        let by_hash = tokens.into_iter().map(|(h, p)| (h, Arc::new(p))).collect();
        Self {
            by_hash: Some(by_hash),
        }
    }

    /// The caller of a request with these headers.
    pub fn authenticate(&self, headers: &MetadataMap) -> Result<Arc<Principal>, AuthError> {
        let Some(by_hash) = &self.by_hash else {
            return Ok(Arc::new(Principal::anyone()));
        };
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        by_hash
            .get(&hash_token(token))
            .cloned()
            .ok_or(AuthError::Unknown)
    }
}

/// The SHA-256 of a token, as configured in the auth file (hex) and compared here.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: Option<&str>) -> MetadataMap {
        let mut map = MetadataMap::new();
        if let Some(v) = value {
            map.insert("authorization", v.parse().unwrap());
        }
        map
    }

    fn lessons_publisher() -> Principal {
        Principal {
            name: "lesson-service".into(),
            publish: vec![Pattern::new("lessons.*")],
            subscribe: vec![],
            admin: false,
        }
    }

    #[test]
    fn tokens_are_matched_by_hash_and_missing_or_unknown_ones_refused() {
        let auth = Authenticator::with_tokens([(hash_token("s3cret"), lessons_publisher())]);
        assert_eq!(
            auth.authenticate(&headers(Some("Bearer s3cret")))
                .unwrap()
                .name,
            "lesson-service"
        );
        assert!(matches!(
            auth.authenticate(&headers(None)),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth.authenticate(&headers(Some("Basic s3cret"))),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth.authenticate(&headers(Some("Bearer nope"))),
            Err(AuthError::Unknown)
        ));
        assert!(
            Authenticator::open()
                .authenticate(&headers(None))
                .unwrap()
                .admin
        );
    }

    #[test]
    fn permissions_follow_the_patterns_per_action() {
        let p = lessons_publisher();
        assert!(p.may(Action::Publish, "lessons.math"));
        assert!(!p.may(Action::Publish, "payments"));
        assert!(!p.may(Action::Subscribe, "lessons.math"));
        assert!(!p.may(Action::Admin, "lessons.math"));
        let err = p
            .check(Action::Subscribe, "lessons.math")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "'lesson-service' may not subscribe topic 'lessons.math'"
        );
    }
}
