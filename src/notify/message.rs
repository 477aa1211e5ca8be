//! What an e-mail about a finished job says: its subject, a plain-text body and the same as a
//! simple HTML part, in which every value is escaped. Pure: the signed links come in ready-made
//! (the handler signs them when it sends, so they live a full `email.link_ttl` from then).
//!
//! * succeeded export: "Your export “NAME” is ready", the rows, the size, the download link;
//! * failed export or import: the error's message;
//! * succeeded import: rows inserted and rejected, and a link to the rejects report if any.

use crate::domain::{ExportResult, ImportResult, Job, JobKind, JobState};
use crate::storage::SignedLink;
use bytesize::ByteSize;
use std::fmt::Write as _;
use time::OffsetDateTime;
use time::macros::format_description;

/// The signed links a message may carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// A succeeded export's file.
    pub download: Option<SignedLink>,
    /// A succeeded import's rejects report (only when rows were rejected).
    pub rejects: Option<SignedLink>,
}

/// A composed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Whether a job of `kind` that reached `state` is mailed: exports and imports that succeeded or
/// failed. A cancelled job is not: its client stopped it.
pub fn is_mailed(kind: JobKind, state: JobState) -> bool {
    matches!(kind, JobKind::Export | JobKind::Import)
        && matches!(state, JobState::Succeeded | JobState::Failed)
}

/// The message about `job`, or why there is none (a job that is not mailed, or a succeeded job
/// whose result cannot be read).
pub fn compose(job: &Job, links: &Links) -> Result<Content, String> {
    let what = match job.kind {
        JobKind::Export => "export",
        JobKind::Import => "import",
        other => return Err(format!("{} jobs are not mailed", other.as_str())),
    };
    let mut body = Body::default();
    let subject = match (job.kind, job.state) {
        (JobKind::Export, JobState::Succeeded) => {
            exported(&mut body, job, links)?;
            format!("Your export “{}” is ready", job.name)
        }
        (JobKind::Import, JobState::Succeeded) => {
            imported(&mut body, job, links)?;
            format!("Your import “{}” has finished", job.name)
        }
        (_, JobState::Failed) => {
            failed(&mut body, job, what);
            format!("Your {what} “{}” failed", job.name)
        }
        (_, state) => return Err(format!("a {what} that is {state} is not mailed")),
    };
    body.facts(&[("Job id", job.id.to_string())]);
    Ok(body.finish(subject))
}

fn exported(body: &mut Body, job: &Job, links: &Links) -> Result<(), String> {
    let result: ExportResult = read_result(job)?;
    let file = &result.file;
    body.paragraph(&format!("Your export “{}” is ready.", job.name));
    body.facts(&[
        ("Rows", thousands(file.rows)),
        ("Size", size(file.size_bytes)),
        ("File", file.filename.clone()),
    ]);
    match &links.download {
        Some(link) => body.link("Download it here", link),
        None => body.paragraph(&format!(
            "Download it from Ferry: GET /v1/exports/{}/download.",
            job.id
        )),
    }
    Ok(())
}

fn imported(body: &mut Body, job: &Job, links: &Links) -> Result<(), String> {
    let result: ImportResult = read_result(job)?;
    body.paragraph(&format!(
        "Your import “{}” into the table {} has finished.",
        job.name, result.table
    ));
    body.facts(&[
        ("Rows inserted", thousands(result.rows_inserted)),
        ("Rows rejected", thousands(result.rows_rejected)),
    ]);
    if let Some(link) = &links.rejects {
        body.link(
            "The rejected rows, each with its line number and the reason, are in this CSV",
            link,
        );
    }
    Ok(())
}

fn failed(body: &mut Body, job: &Job, what: &str) {
    body.paragraph(&format!("Your {what} “{}” failed.", job.name));
    let mut facts = vec![(
        "Error",
        job.error
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |e| e.message.clone()),
    )];
    if let Some(error) = &job.error {
        facts.push(("Code", error.code.clone()));
    }
    facts.push((
        "Attempts",
        format!("{} of {}", job.attempt, job.max_attempts),
    ));
    if let Some(rejected) = job.progress.rows_rejected.filter(|n| *n > 0) {
        facts.push(("Rows rejected", thousands(rejected)));
    }
    body.facts(&facts);
    body.paragraph(&format!(
        "Nothing was changed by this attempt. You can run it again from Ferry's page, or with POST /v1/{what}s/{}/retry.",
        job.id
    ));
}

fn read_result<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, String> {
    let result = job.result.clone().ok_or("the job has no result")?;
    serde_json::from_value(result).map_err(|e| format!("the job's result cannot be read: {e}"))
}

/// Both bodies, written side by side.
#[derive(Default)]
struct Body {
    text: String,
    html: String,
}

impl Body {
    fn paragraph(&mut self, text: &str) {
        let _ = write!(self.text, "{text}\n\n");
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
    }

    fn facts(&mut self, facts: &[(&str, String)]) {
        self.html.push_str("<table>\n");
        for (label, value) in facts {
            let _ = writeln!(self.text, "{label}: {value}");
            let _ = writeln!(
                self.html,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(label),
                escape(value)
            );
        }
        self.text.push('\n');
        self.html.push_str("</table>\n");
    }

    fn link(&mut self, intro: &str, (url, until): &SignedLink) {
        let until = until_text(*until);
        let _ = write!(
            self.text,
            "{intro} (the link works until {until}):\n{url}\n\n"
        );
        let _ = writeln!(
            self.html,
            "<p>{} (the link works until {}):<br><a href=\"{}\">{}</a></p>",
            escape(intro),
            escape(&until),
            escape(url),
            escape(url)
        );
    }

    fn finish(self, subject: String) -> Content {
        let html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: sans-serif\">\n{}<p>— Ferry</p>\n</body></html>\n",
            escape(&subject),
            self.html
        );
        Content {
            text: format!("{}— Ferry\n", self.text),
            html,
            subject,
        }
    }
}

/// `text` safe inside HTML text and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `58061` as `56.7 KiB (58,061 bytes)`.
fn size(bytes: u64) -> String {
    format!("{} ({} bytes)", ByteSize::b(bytes), thousands(bytes))
}

/// A link's expiry in UTC, to the minute.
fn until_text(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobError;
    use serde_json::json;
    use time::macros::datetime;

    fn link() -> SignedLink {
        (
            "https://files.example.com/f?a=1&b=\"2\"".to_owned(),
            datetime!(2026-11-24 08:00:30 UTC),
        )
    }

    fn export(state: JobState) -> Job {
        let mut job = Job::for_tests(JobKind::Export, state);
        job.name = "Q4 <users> & \"friends\"".to_owned();
        job.result = Some(json!({"file": {
            "key": "exports/acme/x/q4.csv", "format": "csv", "size_bytes": 58061, "rows": 1234567,
            "sha256": "00", "content_type": "text/csv", "filename": "Q4 users.csv"}}));
        job
    }

    #[test]
    fn a_ready_export_gives_its_rows_size_and_link_in_both_parts() {
        let links = Links {
            download: Some(link()),
            rejects: None,
        };
        let content = compose(&export(JobState::Succeeded), &links).unwrap();
        assert_eq!(
            content.subject,
            "Your export “Q4 <users> & \"friends\"” is ready"
        );
        assert!(
            content.text.contains("Rows: 1,234,567\n"),
            "{}",
            content.text
        );
        assert!(
            content.text.contains("Size: 56.7 KiB (58,061 bytes)\n"),
            "{}",
            content.text
        );
        assert!(
            content.text.contains(
                "(the link works until 2026-11-24 08:00 UTC):\nhttps://files.example.com/f?a=1&b=\"2\"\n"
            ),
            "{}",
            content.text
        );
        assert!(
            content
                .html
                .contains("<a href=\"https://files.example.com/f?a=1&amp;b=&quot;2&quot;\">")
        );
        assert!(
            content
                .html
                .contains("Q4 &lt;users&gt; &amp; &quot;friends&quot;"),
            "{}",
            content.html
        );
        assert!(!content.html.contains("<users>"), "every value is escaped");
    }

    #[test]
    fn a_failed_job_says_its_error() {
        let mut job = export(JobState::Failed);
        job.result = None;
        job.attempt = 3;
        job.error = Some(JobError {
            code: "query_failed".into(),
            message: "division by zero <here>".into(),
            transient: false,
        });
        let content = compose(&job, &Links::default()).unwrap();
        assert_eq!(
            content.subject,
            "Your export “Q4 <users> & \"friends\"” failed"
        );
        assert!(content.text.contains("Error: division by zero <here>\n"));
        assert!(content.text.contains("Attempts: 3 of 3\n"));
        assert!(content.html.contains("division by zero &lt;here&gt;"));
    }

    #[test]
    fn an_import_counts_its_rows_and_links_its_rejects_only_when_there_are_some() {
        let mut job = Job::for_tests(JobKind::Import, JobState::Succeeded);
        job.result = Some(json!({"rows_inserted": 2, "rows_rejected": 2000,
            "rejects_url": "/v1/imports/x/rejects", "table": "people", "connection": "local", "bytes": 10}));
        let links = Links {
            download: None,
            rejects: Some(link()),
        };
        let content = compose(&job, &links).unwrap();
        assert_eq!(content.subject, "Your import “Test job” has finished");
        assert!(content.text.contains("into the table people"));
        assert!(
            content
                .text
                .contains("Rows inserted: 2\nRows rejected: 2,000\n")
        );
        assert!(
            content
                .text
                .contains("rejected rows, each with its line number")
        );
        let clean = compose(&job, &Links::default()).unwrap();
        assert!(!clean.text.contains("https://"), "{}", clean.text);
    }

    #[test]
    fn cancelled_jobs_and_notifications_are_not_mailed() {
        assert!(!is_mailed(JobKind::Export, JobState::Cancelled));
        assert!(!is_mailed(JobKind::Email, JobState::Failed));
        assert!(!is_mailed(JobKind::Import, JobState::Expired));
        assert!(is_mailed(JobKind::Import, JobState::Failed));
        assert!(compose(&export(JobState::Cancelled), &Links::default()).is_err());
        let mut broken = export(JobState::Succeeded);
        broken.result = Some(json!({"file": 7}));
        assert!(compose(&broken, &Links::default()).is_err());
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
