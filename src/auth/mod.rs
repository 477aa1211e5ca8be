//! Who is calling: a bearer token becomes a tenant, a subject and scopes.
//!
//! Modes: `none` (the embedded default: tenant `default`, subject `anonymous`) and `api_keys`
//! (keys from configuration). JWT is refused at start-up until it is built.

use crate::api::error::ApiError;
use crate::config::{AuthMode, AuthSettings};
use crate::domain::Job;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
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

    /// Whether the caller may see `job`: its owner, a subject it is shared with, or an admin of
    /// its tenant. Anyone else must get `404`.
    pub fn may_see(&self, job: &Job) -> bool {
        job.tenant == self.tenant && (self.is_admin() || job.is_visible_to(&self.subject))
    }
}

/// Turns request headers into a [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: AuthMode,
    /// (sha256 of key, caller): comparing digests keeps the comparison independent of where
    /// a guessed key first differs.
    keys: Vec<([u8; 32], Caller)>,
}

impl Authenticator {
    /// Builds the authenticator of the configured mode.
    pub fn new(settings: &AuthSettings) -> Self {
        let keys = settings
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
            .collect();
        Self {
            mode: settings.mode,
            keys,
        }
    }

    /// The caller of a request with these headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match self.mode {
            AuthMode::None => Ok(Caller {
                tenant: "default".into(),
                subject: "anonymous".into(),
                scopes: vec![],
            }),
            AuthMode::ApiKeys | AuthMode::Jwt => {
                let token = bearer(headers).ok_or_else(|| {
                    ApiError::Unauthorized("send Authorization: Bearer <key>".into())
                })?;
                let wanted = digest(token);
                self.keys
                    .iter()
                    .find(|(key, _)| key == &wanted)
                    .map(|(_, caller)| caller.clone())
                    .ok_or_else(|| ApiError::Unauthorized("the bearer token is not valid".into()))
            }
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl<S> axum::extract::FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = <Authenticator as axum::extract::FromRef<S>>::from_ref(state);
        auth.authenticate(&parts.headers)
    }
}
