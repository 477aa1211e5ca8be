//! Where a job asked to be told that it ended, read from its stored spec (the request as the
//! client sent it): an export's `notify.webhook_url`, an import's `callback_url`.

use super::JobKind;
use serde::Deserialize;
use serde_json::Value;

/// The notification targets of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyTargets {
    /// An http(s) URL to POST a signed event to.
    pub webhook_url: Option<String>,
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
}

/// The part of an import request that names targets.
#[derive(Deserialize)]
struct ImportTargets {
    #[serde(default)]
    callback_url: Option<String>,
}

impl NotifyTargets {
    /// The targets in the spec of a job of `kind`; none for kinds that are not client work.
    /// Fails only for a spec that is not the request it should be (a corrupt row).
    pub fn of(kind: JobKind, spec: &Value) -> Result<Self, serde_json::Error> {
        match kind {
            JobKind::Export => {
                let targets = ExportTargets::deserialize(spec)?;
                let notify = targets.notify;
                Ok(Self {
                    webhook_url: notify.and_then(|n| n.webhook_url),
                })
            }
            JobKind::Import => {
                let targets = ImportTargets::deserialize(spec)?;
                Ok(Self {
                    webhook_url: targets.callback_url,
                })
            }
            JobKind::Webhook => Ok(Self::default()),
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
