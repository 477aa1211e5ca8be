//! `[email]`: the SMTP server e-mail notifications go through. Optional: without it, requests
//! that name an address are refused (`422`).

use super::{MAX_LINK_TTL, Secret};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// `[email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server: `smtps://user:pass@host[:465]` (implicit TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), or plain `smtp://host:port` (no TLS:
    /// for a relay on the same host, or tests). User and password are percent-encoded.
    pub smtp_url: Secret,
    /// The sender, e.g. `Ferry <exports@example.com>`.
    pub from: String,
    /// How long the download link in a message works (at most 7 days, S3's limit).
    #[serde(default = "default_link_ttl", with = "humantime_serde")]
    pub link_ttl: Duration,
    /// How long one delivery attempt may take, from connecting to the server's answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// The longest `timeout`: an attempt must end within the queue's limit on an `email` job.
const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);

fn default_link_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl EmailSettings {
    /// Settings for `smtp_url` and `from`, with the defaults for the rest.
    pub fn new(smtp_url: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            smtp_url: Secret::new(smtp_url),
            from: from.into(),
            link_ttl: default_link_ttl(),
            timeout: default_timeout(),
        }
    }

    /// What is wrong with these settings; nothing secret is quoted.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = check_smtp_url(self.smtp_url.expose()) {
            problems.push(format!("email.smtp_url {problem}"));
        }
        if let Err(error) = self.from.parse::<lettre::message::Mailbox>() {
            problems.push(format!(
                "email.from {:?} is not an address, or a name and an address like \"Ferry <exports@example.com>\" ({error})",
                self.from
            ));
        }
        if self.link_ttl > MAX_LINK_TTL || self.link_ttl < Duration::from_secs(1) {
            problems.push("email.link_ttl must be between 1s and 7d".to_owned());
        }
        if self.timeout < Duration::from_secs(1) || self.timeout > MAX_TIMEOUT {
            problems.push("email.timeout must be between 1s and 5m".to_owned());
        }
        problems
    }
}

/// Checks the shape of an SMTP URL: one of the three forms Ferry documents.
fn check_smtp_url(text: &str) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "is not a URL")?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("names no host");
    }
    let tls: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned())
        .collect();
    let other_query = url.query_pairs().any(|(k, _)| k != "tls");
    match (url.scheme(), tls.as_slice()) {
        _ if other_query => Err("takes no query parameter but tls=required"),
        ("smtps", []) => Ok(()),
        ("smtp", []) => Ok(()),
        ("smtp", [mode]) if mode == "required" => Ok(()),
        ("smtp" | "smtps", _) => Err("takes tls=required only (STARTTLS), with smtp://"),
        _ => Err(
            "must start with smtps:// (implicit TLS) or smtp:// (STARTTLS with ?tls=required, else plain)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_documented_forms_pass() {
        for url in [
            "smtps://user:p%40ss@smtp.example.com",
            "smtps://smtp.example.com:2465",
            "smtp://user:pass@smtp.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
        ] {
            assert_eq!(check_smtp_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn other_schemes_tls_modes_and_missing_hosts_are_refused() {
        for url in [
            "http://smtp.example.com",
            "smtp://smtp.example.com?tls=opportunistic",
            "smtps://smtp.example.com?tls=required",
            "smtp://smtp.example.com?timeout=5",
            "smtp:///nohost",
            "not a url",
        ] {
            assert!(check_smtp_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_bad_sender_a_long_link_and_a_zero_timeout_are_each_named() {
        let mut settings = EmailSettings::new("smtp://127.0.0.1:25", "Ferry <exports@example.com>");
        assert!(settings.problems().is_empty(), "{:?}", settings.problems());
        settings.from = "exports at example.com".to_owned();
        settings.link_ttl = Duration::from_secs(8 * 24 * 3600);
        settings.timeout = Duration::ZERO;
        let problems = settings.problems().join("\n");
        assert!(problems.contains("email.from"), "{problems}");
        assert!(problems.contains("email.link_ttl"), "{problems}");
        assert!(problems.contains("email.timeout"), "{problems}");
    }

    #[test]
    fn the_password_is_never_quoted_in_a_problem() {
        let settings = EmailSettings::new("ftp://user:hunter2@smtp.example.com", "a@example.com");
        let problems = settings.problems().join("\n");
        assert!(problems.contains("email.smtp_url"), "{problems}");
        assert!(!problems.contains("hunter2"), "{problems}");
    }
}
