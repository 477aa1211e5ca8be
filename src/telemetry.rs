//! Logging: human-readable by default, JSON with `FERRY_LOG_FORMAT=json`; the level comes from
//! `FERRY_LOG` (an `EnvFilter` directive such as `info` or `ferry=debug`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, at start.
pub fn init() {
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FERRY_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        // One object per line: the event's fields at the top level, the innermost span as
        // `span` and every enclosing span, outermost first, as `spans`. A job's lines carry
        // its `job` span (job.id, job.kind, tenant, attempt) there (docs/operations.md).
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
