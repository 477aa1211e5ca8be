//! Where a job asked to be told that it ended, read from its stored spec (the request as the
//! client sent it): an export's `notify.webhook_url` and `notify.email`, an import's
//! `callback_url` and `notify_email`.

use super::JobKind;
use serde::Deserialize;
use serde_json::Value;

/// The longest address accepted (RFC 5321's limit on a forward path, less its brackets).
const MAX_ADDRESS: usize = 254;

/// Checks an address a client asks Ferry to mail: one plain `local@domain` address (no display
/// name, no list), as lettre will send to it. The error says what is wrong, for a `422`.
pub fn check_address(address: &str) -> Result<(), String> {
    if address.len() > MAX_ADDRESS {
        return Err(format!(
            "an e-mail address has at most {MAX_ADDRESS} characters"
        ));
    }
    address
        .parse::<lettre::Address>()
        .map(drop)
        .map_err(|e| format!("not an e-mail address ({e}); give one like ops@example.com"))
}

/// The notification targets of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyTargets {
    /// An http(s) URL to POST a signed event to.
    pub webhook_url: Option<String>,
    /// An address to send one e-mail to.
    pub email: Option<String>,
}

/// The part of an export request that names targets; other fields are left to
/// [`super::ExportRequest`].
#[derive(Deserialize)]
struct ExportTargets {
    #[serde(default)]
    notify: Option<ExportNotify>,
}

#[derive(Deserialize)]
struct ExportNotify {
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// The part of an import request that names targets.
#[derive(Deserialize)]
struct ImportTargets {
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    notify_email: Option<String>,
}

impl NotifyTargets {
    /// The targets in the spec of a job of `kind`; none for kinds that are not client work.
    /// Fails only for a spec that is not the request it should be (a corrupt row).
    pub fn of(kind: JobKind, spec: &Value) -> Result<Self, serde_json::Error> {
        match kind {
            JobKind::Export => {
                let targets = ExportTargets::deserialize(spec)?;
                let (webhook_url, email) = targets
                    .notify
                    .map(|n| (n.webhook_url, n.email))
                    .unwrap_or_default();
                Ok(Self { webhook_url, email })
            }
            JobKind::Import => {
                let targets = ImportTargets::deserialize(spec)?;
                Ok(Self {
                    webhook_url: targets.callback_url,
                    email: targets.notify_email,
                })
            }
            JobKind::Webhook | JobKind::Email => Ok(Self::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_export_names_its_webhook_under_notify_and_an_import_as_callback_url() {
        let export =
            json!({"source": {"type": "sql"}, "notify": {"webhook_url": "https://a.example/h"}});
        let import = json!({"target": {"table": "t"}, "callback_url": "https://b.example/h"});
        assert_eq!(
            NotifyTargets::of(JobKind::Export, &export)
                .unwrap()
                .webhook_url
                .as_deref(),
            Some("https://a.example/h")
        );
        assert_eq!(
            NotifyTargets::of(JobKind::Import, &import)
                .unwrap()
                .webhook_url
                .as_deref(),
            Some("https://b.example/h")
        );
    }

    #[test]
    fn an_export_names_its_address_under_notify_and_an_import_as_notify_email() {
        let export = json!({"notify": {"email": "ops@example.com"}});
        let import = json!({"target": {"table": "t"}, "notify_email": "ada@example.com"});
        let export = NotifyTargets::of(JobKind::Export, &export).unwrap();
        assert_eq!(
            (export.webhook_url, export.email.as_deref()),
            (None, Some("ops@example.com"))
        );
        let import = NotifyTargets::of(JobKind::Import, &import).unwrap();
        assert_eq!(import.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn plain_addresses_pass_and_names_lists_and_junk_do_not() {
        assert_eq!(check_address("ops@example.com"), Ok(()));
        assert_eq!(check_address("first.last+tag@sub.example.co.uk"), Ok(()));
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "Ops <ops@example.com>",
            "a@example.com, b@example.com",
            "ops@exa mple.com",
            "ops@example.com\r\nBcc: x@example.com",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(check_address(&long).unwrap_err().contains("at most"));
    }

    #[test]
    fn a_spec_without_targets_has_none_and_a_spec_that_is_no_request_is_an_error() {
        let bare = json!({"source": {"type": "generate"}});
        assert_eq!(
            NotifyTargets::of(JobKind::Export, &bare).unwrap(),
            NotifyTargets::default()
        );
        assert_eq!(
            NotifyTargets::of(JobKind::Export, &json!({"notify": null})).unwrap(),
            NotifyTargets::default()
        );
        assert!(NotifyTargets::of(JobKind::Import, &json!("not a request")).is_err());
        assert!(
            NotifyTargets::of(JobKind::Export, &json!({"notify": {"webhook_url": 7}})).is_err()
        );
    }
}
