//! Standard Webhooks signing (<https://www.standardwebhooks.com>): what a receiver needs to
//! check that a delivery came from Ferry and was not replayed.
//!
//! A signature is `v1,` followed by the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`,
//! keyed with the secret's bytes. The secret is written `whsec_<base64 of the key>`; like the
//! reference implementations, the prefix may be left out (the rest is still base64), and the
//! base64 may be padded or not. A secret that is not base64 is refused rather than used as raw
//! bytes: a receiver built on any Standard Webhooks library would decode it and never match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The prefix of a secret's textual form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key accepted, in bytes: the specification's lower bound (24 to 64 bytes).
pub const MIN_KEY_BYTES: usize = 24;
/// The header carrying the message id, the same on every attempt (receivers deduplicate on it).
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the Unix time of the attempt, in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Base64 as found in secrets: the standard alphabet, padding optional.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a configured secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The part after `whsec_` is not base64.
    #[error("the webhook secret is not base64 after `whsec_`")]
    NotBase64,
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the webhook secret's key has {bytes} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort {
        /// The length of the decoded key.
        bytes: usize,
    },
}

/// A signing key, parsed from its `whsec_…` form. Never printed by `Debug`.
#[derive(Clone)]
pub struct WebhookSecret {
    mac: Hmac<Sha256>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (or the bare base64) into a key.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = SECRET_BASE64
            .decode(encoded.trim())
            .map_err(|_| SecretError::NotBase64)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SecretError::TooShort { bytes: key.len() });
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| SecretError::TooShort { bytes: key.len() })?;
        Ok(Self { mac })
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256>` of
/// `{msg_id}.{timestamp}.{body}`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = secret.mac.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three Standard Webhooks headers for one attempt, as (name, value) pairs.
pub fn headers(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (ID_HEADER, msg_id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, msg_id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example secret of the Standard Webhooks / Svix documentation (a 24-byte key).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    /// Computed independently with Python 3.11's standard library:
    /// `key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")`;
    /// `"v1," + base64.b64encode(hmac.new(key, b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}', hashlib.sha256).digest()).decode()`.
    /// It is also the value the Standard Webhooks documentation publishes for this example.
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret(text: &str) -> WebhookSecret {
        match WebhookSecret::parse(text) {
            Ok(secret) => secret,
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    #[test]
    fn signing_the_known_vector_gives_the_independently_computed_signature() {
        assert_eq!(sign(&secret(SECRET), MSG_ID, TIMESTAMP, BODY), EXPECTED);
    }

    #[test]
    fn a_secret_without_the_prefix_or_padding_is_the_same_key() {
        let bare = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(sign(&secret(bare), MSG_ID, TIMESTAMP, BODY), EXPECTED);
        // 25 bytes encode to 36 characters ending in `==`; both spellings decode alike.
        let padded = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==";
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            sign(&secret(padded), MSG_ID, TIMESTAMP, BODY),
            sign(&secret(unpadded), MSG_ID, TIMESTAMP, BODY)
        );
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        let error = WebhookSecret::parse("whsec_not base64 at all!").err();
        assert_eq!(error, Some(SecretError::NotBase64));
    }

    #[test]
    fn a_key_shorter_than_twenty_four_bytes_is_refused() {
        // 16 bytes.
        let error = WebhookSecret::parse("whsec_AAECAwQFBgcICQoLDA0ODw==").err();
        assert_eq!(error, Some(SecretError::TooShort { bytes: 16 }));
        assert_eq!(
            WebhookSecret::parse("whsec_").err(),
            Some(SecretError::TooShort { bytes: 0 })
        );
    }

    #[test]
    fn headers_carry_the_id_the_timestamp_and_the_signature() {
        let headers = headers(&secret(SECRET), MSG_ID, TIMESTAMP, BODY);
        assert_eq!(
            headers,
            [
                (ID_HEADER, MSG_ID.to_owned()),
                (TIMESTAMP_HEADER, "1614265330".to_owned()),
                (SIGNATURE_HEADER, EXPECTED.to_owned()),
            ]
        );
    }

    #[test]
    fn a_different_body_or_timestamp_changes_the_signature() {
        let key = secret(SECRET);
        assert_ne!(sign(&key, MSG_ID, TIMESTAMP, b"{}"), EXPECTED);
        assert_ne!(sign(&key, MSG_ID, TIMESTAMP + 1, BODY), EXPECTED);
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", secret(SECRET)), "WebhookSecret(***)");
    }
}
