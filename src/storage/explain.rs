//! What to fix when the object store cannot be used: the start-up check turns a
//! [`StorageError`] into one sentence that names the setting at fault, instead of a job failing
//! later on a cloud metadata address.

use super::StorageError;
use crate::config::StorageSettings;
use std::error::Error as StdError;

/// The cloud instance metadata address object_store asks for credentials when none are set.
const INSTANCE_METADATA: &str = "169.254.169.254";

/// Says what `error`, met when first using the store of `settings`, asks the operator to fix.
pub fn explain(error: &StorageError, settings: &StorageSettings) -> String {
    let chain = chain(error);
    let bucket = bucket(settings);
    let endpoint = settings.endpoint.as_deref().unwrap_or("AWS S3");
    if chain.contains(INSTANCE_METADATA) {
        return format!(
            "no S3 credentials are set: set storage.access_key_id and storage.secret_access_key \
             (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); without them Ferry asked the cloud \
             instance metadata service ({INSTANCE_METADATA}), which gave none"
        );
    }
    if let Some(code) = s3_code(&chain) {
        return match code {
            "NoSuchBucket" => format!(
                "the bucket {bucket:?} does not exist at {endpoint}: create it, or correct \
                 storage.url"
            ),
            "InvalidAccessKeyId" => format!(
                "{endpoint} does not know the access key id: correct storage.access_key_id \
                 (or AWS_ACCESS_KEY_ID)"
            ),
            "SignatureDoesNotMatch" => "the secret key does not belong to the access key id: \
                 correct storage.secret_access_key (or AWS_SECRET_ACCESS_KEY)"
                .to_owned(),
            "AccessDenied" => format!(
                "the credentials may not use the bucket {bucket:?}: allow them to list, read, \
                 write and delete objects and to abort multipart uploads there"
            ),
            other => format!("{endpoint} refused the bucket {bucket:?} with {other}"),
        };
    }
    match error {
        StorageError::Unreachable(_) => format!(
            "{endpoint} does not answer ({}): check storage.endpoint and that the store runs",
            last_cause(error)
        ),
        StorageError::Config(message) => message.clone(),
        _ => last_cause(error),
    }
}

/// Every message in `error`'s chain, joined.
fn chain(error: &StorageError) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// The innermost cause's message: the one that says what really failed.
fn last_cause(error: &StorageError) -> String {
    let mut last: &dyn StdError = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The `<Code>` of an S3 error answer in `text`.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let length = text[start..].find("</Code>")?;
    Some(&text[start..start + length])
}

/// The bucket named by `storage.url`, for messages.
fn bucket(settings: &StorageSettings) -> String {
    settings
        .url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StorageSettings {
        StorageSettings {
            url: Some("s3://files/exports".into()),
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..StorageSettings::default()
        }
    }

    fn refused(body: &str) -> StorageError {
        StorageError::Refused(format!("Server returned non-2xx status code: {body}").into())
    }

    #[test]
    fn each_s3_refusal_names_the_setting_to_fix() {
        let cases = [
            (
                "<Error><Code>NoSuchBucket</Code></Error>",
                "the bucket \"files\" does not exist at http://127.0.0.1:9000",
            ),
            (
                "<Error><Code>InvalidAccessKeyId</Code></Error>",
                "correct storage.access_key_id",
            ),
            (
                "<Error><Code>SignatureDoesNotMatch</Code></Error>",
                "correct storage.secret_access_key",
            ),
            (
                "<Error><Code>AccessDenied</Code></Error>",
                "may not use the bucket \"files\"",
            ),
            (
                "<Error><Code>SlowDown</Code></Error>",
                "refused the bucket \"files\" with SlowDown",
            ),
        ];
        for (body, expected) in cases {
            let text = explain(&refused(body), &settings());
            assert!(text.contains(expected), "{body}: {text}");
        }
    }

    #[test]
    fn missing_credentials_are_named_not_the_metadata_address_alone() {
        let error = refused("PUT http://169.254.169.254/latest/api/token: 403 Forbidden");
        let text = explain(&error, &settings());
        assert!(text.starts_with("no S3 credentials are set"), "{text}");
        assert!(text.contains("storage.access_key_id"), "{text}");
    }

    #[test]
    fn an_unreachable_endpoint_is_named_with_the_innermost_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let text = explain(&StorageError::Unreachable(Box::new(io)), &settings());
        assert_eq!(
            text,
            "http://127.0.0.1:9000 does not answer (connection refused): check storage.endpoint \
             and that the store runs"
        );
    }
}
