//! Signed download links.
//!
//! With S3 the store signs: a SigV4 pre-signed `GET` whose `response-content-disposition` and
//! `response-content-type` parameters are part of the signature, so the store itself sends the
//! file as an attachment under the chosen name and refuses a link that was altered.
//!
//! The local store cannot sign, so Ferry does:
//! `{public_base}/files/{key}?expires={unix}&filename={name}&type={content type}&sig={hex}`,
//! where `sig` is HMAC-SHA256 over the key, the expiry, the file name and the content type.
//! [`verify`] checks such a link (in constant time) before [`super::serve`] hands out a byte.

use super::disposition::content_disposition;
use super::{ObjectKey, StorageError};
use axum::http::HeaderValue;
use hmac::{Hmac, Mac};
use object_store::signer::{Method, SignedUrlOptions, Signer};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;
use time::OffsetDateTime;

/// The longest a link may live: what S3 allows for a pre-signed URL.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest content type accepted for a link.
const MAX_CONTENT_TYPE: usize = 200;
/// Characters escaped in a key segment of a link's path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/');

/// The type a Ferry-signed link carries when it grants an upload (`PUT`) rather than a download.
pub const UPLOAD_TYPE: &str = "application/x-ferry-upload";

/// A link and the moment it stops working.
pub type SignedLink = (String, OffsetDateTime);

/// The HMAC key of Ferry-signed links. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct LinkSigner {
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigner(***)")
    }
}

/// What a Ferry-signed link grants: one key, under one name and type, until a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The object.
    pub key: ObjectKey,
    /// Unix seconds after which the link is refused.
    pub expires: i64,
    /// The name the file is saved under.
    pub filename: String,
    /// The `Content-Type` it is served with.
    pub content_type: String,
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed, altered, or signed with another key.
    Invalid(&'static str),
    /// Genuine but past its expiry.
    Expired,
}

impl LinkSigner {
    /// A signer with `key`; 32 random bytes are plenty.
    pub fn new(key: &[u8]) -> Result<Self, StorageError> {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| StorageError::Config("the link signing key is unusable".to_owned()))?;
        Ok(Self { keyed })
    }

    /// The MAC of a grant. Each field is length-prefixed so no two grants share an input.
    fn mac(&self, grant: &Grant) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(b"ferry-link-v1");
        let expires = grant.expires.to_string();
        for field in [
            grant.key.as_str(),
            &expires,
            &grant.filename,
            &grant.content_type,
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    /// The hex signature of `grant`.
    pub fn sign(&self, grant: &Grant) -> String {
        hex::encode(self.mac(grant).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is this signer's signature of `grant`, compared in constant time.
    pub fn is_signed(&self, grant: &Grant, signature: &str) -> bool {
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        self.mac(grant).verify_slice(&bytes).is_ok()
    }
}

/// Checks the arguments every link shares: a lifetime of 1 s to 7 days and a content type
/// that is a plain header value.
pub fn check_link_args(content_type: &str, ttl: Duration) -> Result<(), StorageError> {
    if ttl < Duration::from_secs(1) || ttl > MAX_LINK_TTL {
        return Err(StorageError::InvalidArgument(format!(
            "a link lives between 1s and 7d, not {ttl:?}"
        )));
    }
    let printable = content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    if content_type.is_empty() || content_type.len() > MAX_CONTENT_TYPE || !printable {
        return Err(StorageError::InvalidArgument(
            "the content type must be a short printable ASCII header value".to_owned(),
        ));
    }
    Ok(())
}

/// A Ferry-signed link to `grant` under `public_base`.
pub fn local_link(signer: &LinkSigner, public_base: &str, grant: &Grant) -> SignedLink {
    let path: Vec<String> = grant
        .key
        .as_str()
        .split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("expires", &grant.expires.to_string())
        .append_pair("filename", &grant.filename)
        .append_pair("type", &grant.content_type)
        .append_pair("sig", &signer.sign(grant))
        .finish();
    let url = format!("{public_base}/files/{}?{query}", path.join("/"));
    (url, expires_at(grant.expires))
}

/// The grant of a link's key (from its path) and query string, if it is genuine and current.
pub fn verify(
    signer: &LinkSigner,
    key: &str,
    query: &str,
    now: OffsetDateTime,
) -> Result<Grant, Refusal> {
    let key =
        ObjectKey::parse(key).map_err(|_| Refusal::Invalid("the link names no valid file"))?;
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .ok_or(Refusal::Invalid("the link is incomplete"))
    };
    let signature = param("sig")?;
    let expires = param("expires")?
        .parse::<i64>()
        .map_err(|_| Refusal::Invalid("the link's expiry is malformed"))?;
    let grant = Grant {
        key,
        expires,
        filename: param("filename")?,
        content_type: param("type")?,
    };
    if !signer.is_signed(&grant, &signature) {
        return Err(Refusal::Invalid("the link's signature does not match"));
    }
    if now.unix_timestamp() > grant.expires {
        return Err(Refusal::Expired);
    }
    Ok(grant)
}

/// Unix seconds `ttl` from `now`, in whole seconds as S3 counts them (never later than the
/// store's own expiry: its clock starts when it signs, just after `now`).
pub fn expiry(now: OffsetDateTime, ttl: Duration) -> i64 {
    let whole = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    now.unix_timestamp().saturating_add(whole)
}

/// The moment of a unix timestamp; the far future if it cannot be represented.
pub fn expires_at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH + MAX_LINK_TTL)
}

/// A pre-signed S3 `GET` of `path` that makes the store answer with our disposition and type.
pub async fn presigned_get(
    store: &dyn Signer,
    key: &ObjectKey,
    filename: &str,
    content_type: &str,
    ttl: Duration,
) -> Result<SignedLink, StorageError> {
    let now = OffsetDateTime::now_utc();
    let options = SignedUrlOptions::new().with_query([
        (
            "response-content-disposition",
            content_disposition(filename),
        ),
        ("response-content-type", content_type.to_owned()),
    ]);
    let url = store
        .signed_url_opts(Method::GET, &key.path(), ttl, &options)
        .await
        .map_err(|e| StorageError::from_store(key.as_str(), e))?;
    Ok((url.to_string(), expires_at(expiry(now, ttl))))
}

/// `content_type` as a header value, or `application/octet-stream` if it cannot be one.
pub fn content_type_header(content_type: &str) -> HeaderValue {
    HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn grant() -> Grant {
        Grant {
            key: ObjectKey::parse("exports/acme/1/users report.csv").unwrap(),
            expires: NOW + 60,
            filename: "Users & \"friends\" 😀.csv".to_owned(),
            content_type: "text/csv; charset=utf-8".to_owned(),
        }
    }

    /// The key (decoded, as a router sees it) and the query of a link.
    fn split(url: &str) -> (String, String) {
        let rest = url.strip_prefix("http://ferry.test/files/").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let key = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .unwrap();
        (key.into_owned(), query.to_owned())
    }

    #[test]
    fn a_fresh_link_verifies_and_grants_exactly_what_was_signed() {
        let signer = LinkSigner::new(b"k1").unwrap();
        let (url, at) = local_link(&signer, "http://ferry.test", &grant());
        assert_eq!(at.unix_timestamp(), NOW + 60);
        let (key, query) = split(&url);
        assert_eq!(verify(&signer, &key, &query, now()), Ok(grant()));
    }

    #[test]
    fn any_altered_part_of_a_link_is_refused() {
        let signer = LinkSigner::new(b"k1").unwrap();
        let (url, _) = local_link(&signer, "http://ferry.test", &grant());
        let (key, query) = split(&url);
        let altered = [
            (key.replace("users", "admins"), query.clone()),
            (key.clone(), query.replace("expires=", "expires=9")),
            (key.clone(), query.replace("filename=", "filename=x")),
            (key.clone(), query.replace("type=text", "type=image")),
            (key.clone(), query.replace("sig=", "sig=00")),
        ];
        for (key, query) in altered {
            assert!(
                matches!(
                    verify(&signer, &key, &query, now()),
                    Err(Refusal::Invalid(_))
                ),
                "{key} ? {query}"
            );
        }
    }

    #[test]
    fn a_link_signed_with_another_key_or_without_signature_is_refused() {
        let (url, _) = local_link(
            &LinkSigner::new(b"k1").unwrap(),
            "http://ferry.test",
            &grant(),
        );
        let (key, query) = split(&url);
        let other = LinkSigner::new(b"k2").unwrap();
        assert!(matches!(
            verify(&other, &key, &query, now()),
            Err(Refusal::Invalid(_))
        ));
        let unsigned = query.split("&sig=").next().unwrap();
        let signer = LinkSigner::new(b"k1").unwrap();
        assert!(matches!(
            verify(&signer, &key, unsigned, now()),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            verify(&signer, &key, "", now()),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn a_genuine_link_is_refused_one_second_after_it_expires() {
        let signer = LinkSigner::new(b"k1").unwrap();
        let (url, _) = local_link(&signer, "http://ferry.test", &grant());
        let (key, query) = split(&url);
        let at_expiry = now() + Duration::from_secs(60);
        assert!(verify(&signer, &key, &query, at_expiry).is_ok());
        let after = at_expiry + Duration::from_secs(1);
        assert_eq!(verify(&signer, &key, &query, after), Err(Refusal::Expired));
    }

    #[test]
    fn fields_cannot_be_shifted_between_each_other() {
        let signer = LinkSigner::new(b"k1").unwrap();
        let mut a = grant();
        a.filename = "a\nb".to_owned();
        a.content_type = "c".to_owned();
        let mut b = grant();
        b.filename = "a".to_owned();
        b.content_type = "b\nc".to_owned();
        assert_ne!(signer.sign(&a), signer.sign(&b));
    }

    #[test]
    fn link_arguments_are_checked() {
        assert!(check_link_args("text/csv", Duration::from_secs(3600)).is_ok());
        assert!(check_link_args("text/csv", Duration::from_millis(10)).is_err());
        assert!(check_link_args("text/csv", MAX_LINK_TTL + Duration::from_secs(1)).is_err());
        assert!(check_link_args("text/csv\r\nX: y", Duration::from_secs(60)).is_err());
        assert!(check_link_args("", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn expiry_counts_whole_seconds() {
        assert_eq!(expiry(now(), Duration::from_millis(1500)), NOW + 1);
        assert_eq!(expiry(now(), Duration::from_secs(5)), NOW + 5);
    }
}
