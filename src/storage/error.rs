//! One semantic error for everything the storage layer does.
//!
//! object_store reports failures by mechanism (an HTTP status, an I/O error, a retry loop that
//! gave up); callers need to know what a failure *means*: is the object missing, is the key
//! bad, is it worth trying again? [`StorageError::from_store`] maps every backend error into
//! that vocabulary once, so job code can say `if err.is_transient()` and nothing else.

use axum::http::StatusCode;
use object_store::client::HttpError;
use std::error::Error as StdError;
use std::io;

/// A boxed cause kept for logs; never shown to clients.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object under this key.
    #[error("no object at {key}")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A key that could escape its directory or that a backend cannot store.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An argument other than the key is unusable (a link lifetime, a content type).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The `[storage]` settings cannot be used; stops the process at boot.
    #[error("storage configuration: {0}")]
    Config(String),
    /// The store could not be reached or failed on its side (network, timeout, 5xx, a full
    /// disk): the same request may succeed later.
    #[error("object storage unreachable: {0}")]
    Unreachable(#[source] Cause),
    /// The store refused the request and will refuse it again (credentials, permissions, a
    /// missing bucket, an unsupported operation).
    #[error("object storage refused the request: {0}")]
    Refused(#[source] Cause),
}

impl StorageError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// A stable snake_case code for job errors and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "file_not_found",
            Self::InvalidKey { .. } => "invalid_key",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Config(_) => "storage_config",
            Self::Unreachable(_) => "storage_unreachable",
            Self::Refused(_) => "storage_refused",
        }
    }

    /// Maps an object_store error for the object at `key`.
    pub fn from_store(key: &str, error: object_store::Error) -> Self {
        use object_store::Error as E;
        match error {
            E::NotFound { .. } => Self::NotFound {
                key: key.to_owned(),
            },
            E::InvalidPath { .. } => Self::InvalidKey {
                key: key.to_owned(),
                reason: "the store cannot name it",
            },
            E::JoinError { .. } => Self::Unreachable(Box::new(error)),
            E::Generic { .. } => classify(Box::new(error)),
            _ => Self::Refused(Box::new(error)),
        }
    }

    /// Maps an I/O error of the local store's own files (staging leftovers, the signing key).
    pub fn from_io(error: io::Error) -> Self {
        if io_is_transient(error.kind()) {
            Self::Unreachable(Box::new(error))
        } else {
            Self::Refused(Box::new(error))
        }
    }
}

/// Classifies a generic backend error by the first transport failure, HTTP status or I/O
/// error among its causes. One with none of them (credentials that could not be fetched, an
/// answer that could not be parsed, an unexpected redirect) counts as transient: retrying a
/// permanent fault costs a few attempts, failing a transient one for good loses the job.
fn classify(error: Cause) -> StorageError {
    let transient = causes(error.as_ref())
        .find_map(cause_is_transient)
        .unwrap_or(true);
    if transient {
        StorageError::Unreachable(error)
    } else {
        StorageError::Refused(error)
    }
}

/// Whether one cause is transient, if it tells.
fn cause_is_transient(cause: &(dyn StdError + 'static)) -> Option<bool> {
    if cause.downcast_ref::<HttpError>().is_some() {
        return Some(true);
    }
    if let Some(io) = cause.downcast_ref::<io::Error>() {
        return Some(io_is_transient(io.kind()));
    }
    http_status_in(&cause.to_string()).map(status_is_transient)
}

/// The HTTP status in an object_store request error's message. object_store keeps the error
/// type that carries the status private, so its message ("… non-2xx status code: 400 Bad
/// Request: …") is the only place to read it from.
fn http_status_in(message: &str) -> Option<StatusCode> {
    let (_, rest) = message.split_once("status code: ")?;
    StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()
}

/// The error and its chain of sources.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e| (*e).source())
}

/// 5xx, 408 and 429 may pass; other statuses will not.
fn status_is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Local I/O failures that a later attempt may not meet: a full disk, a timeout, an
/// interruption. A permission or a path problem stays.
fn io_is_transient(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::TimedOut
            | K::Interrupted
            | K::WouldBlock
            | K::StorageFull
            | K::QuotaExceeded
            | K::ResourceBusy
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(source: Cause) -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source,
        }
    }

    #[test]
    fn a_missing_object_maps_to_not_found() {
        let error = object_store::Error::NotFound {
            path: "a/b".into(),
            source: "gone".into(),
        };
        assert!(matches!(
            StorageError::from_store("a/b", error),
            StorageError::NotFound { key } if key == "a/b"
        ));
    }

    #[test]
    fn a_full_disk_is_transient_and_a_permission_problem_is_not() {
        let full = generic(Box::new(io::Error::from(io::ErrorKind::StorageFull)));
        assert!(StorageError::from_store("k", full).is_transient());
        let denied = generic(Box::new(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(!StorageError::from_store("k", denied).is_transient());
    }

    #[test]
    fn refused_credentials_are_permanent() {
        let error = object_store::Error::Unauthenticated {
            path: "k".into(),
            source: "bad signature".into(),
        };
        let mapped = StorageError::from_store("k", error);
        assert!(matches!(mapped, StorageError::Refused(_)));
        assert!(!mapped.is_transient());
    }

    #[test]
    fn a_status_in_a_request_error_message_decides() {
        let message = "Error performing PUT http://s3/b/k in 2ms - Server returned non-2xx status code: 400 Bad Request: <Error/>";
        assert_eq!(http_status_in(message), Some(StatusCode::BAD_REQUEST));
        assert!(!StorageError::from_store("k", generic(message.into())).is_transient());
        let busy = "Server returned non-2xx status code: 503 Service Unavailable: ";
        assert!(StorageError::from_store("k", generic(busy.into())).is_transient());
        assert_eq!(http_status_in("no status here"), None);
    }

    #[test]
    fn a_generic_error_that_says_nothing_is_retried() {
        assert!(
            StorageError::from_store("k", generic("credentials expired".into())).is_transient()
        );
    }

    #[test]
    fn server_errors_and_throttling_are_transient_client_errors_are_not() {
        assert!(status_is_transient(StatusCode::SERVICE_UNAVAILABLE));
        assert!(status_is_transient(StatusCode::TOO_MANY_REQUESTS));
        assert!(!status_is_transient(StatusCode::BAD_REQUEST));
        assert!(!status_is_transient(StatusCode::FORBIDDEN));
    }
}
