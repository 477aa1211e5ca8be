//! Redeeming a Ferry-signed link to the local store: the signature and expiry are checked
//! before anything touches the disk, and a link only does what it was signed for (a download
//! link never uploads, an upload link never downloads). The HTTP side is `api::files`.

use super::links::{self, Refusal, UPLOAD_TYPE};
use super::{Backend, ObjectKey, Storage};
use std::path::PathBuf;
use time::OffsetDateTime;

/// What a link is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUse {
    /// `GET`: download the file.
    Download,
    /// `PUT`: upload the file.
    Upload,
}

/// Why a link was not honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The store is S3: it serves its own links, Ferry serves none.
    #[error("no files are served here")]
    NotServedHere,
    /// Malformed, altered, signed with another key, or used for what it was not signed for.
    #[error("{0}")]
    Invalid(&'static str),
    /// Genuine, but past its expiry.
    #[error("the link has expired; ask for a fresh one")]
    Expired,
}

/// A link that checked out: the object, its path on disk, and the signed name and type.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub key: ObjectKey,
    pub file: PathBuf,
    pub filename: String,
    pub content_type: String,
}

impl Storage {
    /// Checks the link to `key` with `query` (exactly as Ferry wrote it) for `purpose`.
    pub fn redeem(&self, key: &str, query: &str, purpose: LinkUse) -> Result<Redeemed, LinkError> {
        let Backend::Local(local) = &self.inner.backend else {
            return Err(LinkError::NotServedHere);
        };
        let grant = links::verify(&local.signer, key, query, OffsetDateTime::now_utc()).map_err(
            |refusal| match refusal {
                Refusal::Invalid(why) => LinkError::Invalid(why),
                Refusal::Expired => LinkError::Expired,
            },
        )?;
        match (purpose, grant.content_type == UPLOAD_TYPE) {
            (LinkUse::Upload, false) => Err(LinkError::Invalid(
                "this link downloads a file; it does not upload one",
            )),
            (LinkUse::Download, true) => Err(LinkError::Invalid(
                "this link uploads a file; it does not download one",
            )),
            _ => {
                let file = local
                    .store
                    .path_to_filesystem(&grant.key.path())
                    .map_err(|_| LinkError::Invalid("the link names no valid file"))?;
                Ok(Redeemed {
                    key: grant.key,
                    file,
                    filename: grant.filename,
                    content_type: grant.content_type,
                })
            }
        }
    }
}
