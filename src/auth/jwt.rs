//! Bearer JWTs: verified against the configured HS256 secret or RS256/ES256 public keys, then
//! read into a [`Caller`].
//!
//! Each key is pinned to the one algorithm its type allows, and a token is only ever checked
//! against keys of the algorithm its header names: an HS256 token never meets an RSA key (the
//! classic confusion of using the public key as an HMAC secret), and `alg: none` is not an
//! algorithm `jsonwebtoken` knows. `exp` is required; `nbf` is honoured; `iss` and `aud` are
//! required and checked when configured. Refusals say why, never what the token contained.

use super::AuthError;
use super::Caller;
use crate::config::JwtSettings;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use serde_json::{Map, Value};

/// The length of an uncompressed P-256 point, the public key of ES256.
const P256_POINT_LEN: usize = 65;

/// A configured key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("auth.jwt.public_keys[{index}]: {reason}")]
pub struct KeyError {
    index: usize,
    reason: &'static str,
}

/// One verification key and the only algorithm it verifies.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    validation: Validation,
}

/// Claim names, from configuration.
#[derive(Debug, Clone)]
struct ClaimNames {
    tenant: String,
    subject: String,
    scope: String,
}

/// Verifies bearer JWTs and reads their claims.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Vec<Key>,
    claims: ClaimNames,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("claims", &self.claims)
            .finish()
    }
}

impl JwtVerifier {
    /// Parses the configured secret and keys; a key that is not an RSA or P-256 EC public key
    /// in PEM form is an error.
    pub fn new(settings: &JwtSettings) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.hs256_secret {
            let key = DecodingKey::from_secret(secret.expose().as_bytes());
            keys.push(Key {
                key,
                validation: validation(Algorithm::HS256, settings),
            });
        }
        for (index, pem) in settings.public_keys.iter().enumerate() {
            let (key, algorithm) = public_key(pem).map_err(|reason| KeyError { index, reason })?;
            keys.push(Key {
                key,
                validation: validation(algorithm, settings),
            });
        }
        let claims = ClaimNames {
            tenant: settings.tenant_claim.clone(),
            subject: settings.subject_claim.clone(),
            scope: settings.scope_claim.clone(),
        };
        Ok(Self { keys, claims })
    }

    /// The caller a token stands for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refused("the bearer token is not a well-formed JWT"))?;
        let mut outcome = Err(refused(
            "the token's algorithm (alg) does not match any configured key",
        ));
        let candidates = self
            .keys
            .iter()
            .filter(|k| k.validation.algorithms.contains(&header.alg));
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation) {
                Ok(data) => return self.caller(&data.claims),
                // Another key of the same algorithm may have signed it.
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => outcome = Err(reason(&e)),
                // The signature matched: what is wrong is the token itself.
                Err(e) => return Err(reason(&e)),
            }
        }
        outcome
    }

    fn caller(&self, claims: &Map<String, Value>) -> Result<Caller, AuthError> {
        Ok(Caller {
            tenant: text_claim(claims, &self.claims.tenant)?,
            subject: text_claim(claims, &self.claims.subject)?,
            scopes: scopes(claims, &self.claims.scope)?,
        })
    }
}

/// An RSA public key verifies RS256, a P-256 EC public key ES256; nothing else is accepted.
fn public_key(pem: &str) -> Result<(DecodingKey, Algorithm), &'static str> {
    if pem.contains("PRIVATE KEY") {
        return Err("this is a private key: configure the public key only");
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((key, Algorithm::RS256));
    }
    let key = DecodingKey::from_ec_pem(pem.as_bytes())
        .map_err(|_| "not an RSA or EC public key in PEM form")?;
    match key.kind() {
        DecodingKeyKind::SecretOrDer(point) if point.len() == P256_POINT_LEN => {
            Ok((key, Algorithm::ES256))
        }
        _ => Err("only P-256 EC keys (ES256) are supported"),
    }
}

fn validation(algorithm: Algorithm, settings: &JwtSettings) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = settings.leeway.as_secs();
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Why `jsonwebtoken` refused a token, in words that quote nothing from it.
fn reason(error: &jsonwebtoken::errors::Error) -> AuthError {
    let why = match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "the token's signature does not match any configured key",
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not the configured one",
        ErrorKind::InvalidAudience => "the token's audience (aud) is not the configured one",
        ErrorKind::MissingRequiredClaim(claim) => {
            return refused(format!("the token has no `{claim}` claim"));
        }
        ErrorKind::InvalidAlgorithm => "the token's algorithm (alg) does not match its key",
        _ => "the bearer token is not a valid JWT",
    };
    refused(why)
}

fn text_claim(claims: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match claims.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(refused(format!(
            "the token has no `{name}` claim with a non-empty string"
        ))),
    }
}

/// Scopes from a space-separated string or an array of strings; none when the claim is absent.
fn scopes(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, AuthError> {
    let not_scopes = || {
        refused(format!(
            "the token's `{name}` claim must be a space-separated string or an array of strings"
        ))
    };
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(not_scopes))
            .collect(),
        Some(_) => Err(not_scopes()),
    }
}

fn refused(why: impl Into<String>) -> AuthError {
    AuthError::Refused(why.into())
}

#[cfg(test)]
mod tests;
