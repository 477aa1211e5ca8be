//! Who is calling: a bearer token becomes a tenant, a subject and scopes.
//!
//! Modes: `none` (the embedded default: tenant `default`, subject `anonymous`), `api_keys`
//! (keys from configuration) and `jwt` (signed tokens, see [`jwt`]).

pub mod jwt;

use crate::config::{AuthMode, AuthSettings, ConnectionSettings};
use crate::domain::Job;
use axum::http::{HeaderMap, header};
use jwt::{JwtVerifier, KeyError};
use sha2::{Digest, Sha256};

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether the caller has the `admin` scope of its tenant.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == "admin")
    }

    /// Whether the caller may use `connection` (and see it, its tables and its templates):
    /// every caller when it names no scopes, else callers with one of them or `admin`.
    pub fn may_use(&self, connection: &ConnectionSettings) -> bool {
        connection.scopes.is_empty()
            || self.is_admin()
            || self.scopes.iter().any(|s| connection.scopes.contains(s))
    }

    /// Whether the caller may see `job`: its owner, a subject it is shared with, or an admin of
    /// its tenant. Anyone else must get `404`.
    pub fn may_see(&self, job: &Job) -> bool {
        job.tenant == self.tenant && (self.is_admin() || job.is_visible_to(&self.subject))
    }
}

/// Why a request has no [`Caller`]; the API answers it with `401`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token was sent.
    #[error("send Authorization: Bearer <token>")]
    Missing,
    /// The token was refused, and why (in words that quote nothing from it).
    #[error("{0}")]
    Refused(String),
}

/// Turns request headers into a [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    scheme: Scheme,
}

/// The configured mode with what it needs to check a token.
#[derive(Debug, Clone)]
enum Scheme {
    None,
    /// (sha256 of key, caller): comparing digests keeps the comparison independent of where
    /// a guessed key first differs.
    ApiKeys(Vec<([u8; 32], Caller)>),
    Jwt(Box<JwtVerifier>),
}

impl Authenticator {
    /// Builds the authenticator of the configured mode; fails on a JWT key that does not parse.
    pub fn new(settings: &AuthSettings) -> Result<Self, KeyError> {
        let scheme = match settings.mode {
            AuthMode::None => Scheme::None,
            AuthMode::ApiKeys => Scheme::ApiKeys(api_keys(settings)),
            AuthMode::Jwt => Scheme::Jwt(Box::new(JwtVerifier::new(&settings.jwt)?)),
        };
        Ok(Self { scheme })
    }

    /// The caller of a request with these headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        match &self.scheme {
            Scheme::None => Ok(Caller {
                tenant: "default".into(),
                subject: "anonymous".into(),
                scopes: vec![],
            }),
            Scheme::ApiKeys(keys) => api_key(keys, bearer_token(headers)?),
            Scheme::Jwt(verifier) => verifier.verify(bearer_token(headers)?),
        }
    }
}

fn api_keys(settings: &AuthSettings) -> Vec<([u8; 32], Caller)> {
    settings
        .api_keys
        .iter()
        .map(|k| {
            let caller = Caller {
                tenant: k.tenant.clone(),
                subject: k.subject.clone(),
                scopes: k.scopes.clone(),
            };
            (digest(k.key.expose()), caller)
        })
        .collect()
}

fn api_key(keys: &[([u8; 32], Caller)], token: &str) -> Result<Caller, AuthError> {
    let wanted = digest(token);
    keys.iter()
        .find(|(key, _)| key == &wanted)
        .map(|(_, caller)| caller.clone())
        .ok_or_else(|| AuthError::Refused("the bearer token is not valid".into()))
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    bearer(headers)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::Missing)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn jwt_mode_without_a_bearer_token_is_unauthorized() {
        let mut settings = AuthSettings {
            mode: AuthMode::Jwt,
            ..AuthSettings::default()
        };
        settings.jwt.hs256_secret = Some(Secret::new("x".repeat(32)));
        let auth = Authenticator::new(&settings).expect("an authenticator");
        let result = auth.authenticate(&HeaderMap::new());
        assert!(matches!(result, Err(AuthError::Missing)), "{result:?}");
    }

    #[test]
    fn a_bad_jwt_key_stops_the_authenticator_from_being_built() {
        let mut settings = AuthSettings {
            mode: AuthMode::Jwt,
            ..AuthSettings::default()
        };
        settings.jwt.public_keys = vec!["not a key".into()];
        assert!(Authenticator::new(&settings).is_err());
    }
}
