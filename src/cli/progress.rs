//! How a client shows progress: an indicatif bar on stderr when stderr is a terminal, and
//! otherwise plain lines on the injected writer (a log, a CI job, a test) — every state change,
//! and progress at most once a second, e.g. `running 120000 rows 24.0%`.

use super::client::{CliError, Client, Job, Kind};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// At most one plain progress line per this interval (state changes are always written).
const LINE_INTERVAL: Duration = Duration::from_secs(1);
/// Positions of a percent bar: a tenth of a percent each.
const BAR_STEPS: u64 = 1000;

/// A progress display for one job (or one upload).
pub struct Display {
    mode: Mode,
    interval: Duration,
    last_state: Option<String>,
    last_line: Option<Instant>,
}

enum Mode {
    Bar(ProgressBar),
    Lines,
}

impl Display {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar()
        } else {
            Self::lines()
        }
    }

    /// Plain lines on the writer given to each call.
    pub fn lines() -> Self {
        Self::lines_every(LINE_INTERVAL)
    }

    /// Plain lines, progress at most once per `interval`.
    pub fn lines_every(interval: Duration) -> Self {
        Self {
            mode: Mode::Lines,
            interval,
            last_state: None,
            last_line: None,
        }
    }

    fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(Some(BAR_STEPS), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{wide_bar}] {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            mode: Mode::Bar(bar),
            interval: LINE_INTERVAL,
            last_state: None,
            last_line: None,
        }
    }

    /// Shows a new version of the job.
    pub fn job(&mut self, job: &Job, err: &mut dyn Write) {
        let changed = self.last_state.as_deref() != Some(job.state.as_str());
        self.last_state = Some(job.state.clone());
        self.show(&job_line(job), job.progress.percent, changed, err);
    }

    /// Shows an upload's progress: `sent` of `total` bytes.
    pub fn upload(&mut self, sent: u64, total: u64, err: &mut dyn Write) {
        let percent = (total > 0).then(|| sent as f64 * 100.0 / total as f64);
        let first = self.last_state.is_none();
        self.last_state = Some("uploading".to_owned());
        let done = sent >= total;
        self.show(&upload_line(sent, total), percent, first || done, err);
    }

    /// Removes the bar, if any, and makes sure the final job's line is written once.
    pub fn done(&mut self, job: &Job, err: &mut dyn Write) {
        self.finish();
        if matches!(self.mode, Mode::Bar(_)) {
            let _ = writeln!(err, "{}", job_line(job));
        }
    }

    /// Removes the bar, if any (the caller then writes the outcome).
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn show(&mut self, line: &str, percent: Option<f64>, always: bool, err: &mut dyn Write) {
        match &self.mode {
            Mode::Bar(bar) => {
                if let Some(percent) = percent {
                    bar.set_position((percent.clamp(0.0, 100.0) * 10.0) as u64);
                }
                bar.set_message(line.to_owned());
            }
            Mode::Lines => {
                let due = self
                    .last_line
                    .is_none_or(|at| at.elapsed() >= self.interval);
                if always || due {
                    // A progress line that cannot be written is no reason to stop the job.
                    let _ = writeln!(err, "{line}");
                    self.last_line = Some(Instant::now());
                }
            }
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Follows a job with a progress display on stderr (`err` for plain lines) and returns the
/// final job; its last line is always written.
pub async fn follow(
    client: &Client,
    kind: Kind,
    id: &str,
    err: &mut dyn Write,
) -> Result<Job, CliError> {
    let mut display = Display::for_stderr();
    let job = client
        .follow(kind, id, &mut |job| display.job(job, err))
        .await?;
    display.done(&job, err);
    Ok(job)
}

/// `running 120000 rows 24.0%`, plus inserted and rejected rows of an import.
pub fn job_line(job: &Job) -> String {
    let progress = &job.progress;
    let mut line = format!("{} {} rows", job.state, progress.rows);
    if let Some(percent) = progress.percent {
        line.push_str(&format!(" {percent:.1}%"));
    }
    if let (Some(inserted), Some(rejected)) = (progress.rows_inserted, progress.rows_rejected) {
        line.push_str(&format!(" ({inserted} inserted, {rejected} rejected)"));
    }
    line
}

/// `uploading 1048576 of 4194304 bytes 25.0%`.
pub fn upload_line(sent: u64, total: u64) -> String {
    if total == 0 {
        return format!("uploading {sent} bytes");
    }
    let percent = sent as f64 * 100.0 / total as f64;
    format!("uploading {sent} of {total} bytes {percent:.1}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, rows: u64, percent: Option<f64>) -> Job {
        Job::from_value(serde_json::json!({
            "id": "1", "kind": "export", "state": state,
            "progress": {"rows": rows, "bytes": 0, "percent": percent}
        }))
        .unwrap()
    }

    #[test]
    fn a_job_line_gives_the_state_rows_and_percent() {
        assert_eq!(
            job_line(&job("running", 120000, Some(24.0))),
            "running 120000 rows 24.0%"
        );
        assert_eq!(job_line(&job("queued", 0, None)), "queued 0 rows");
    }

    #[test]
    fn plain_lines_show_every_state_change_but_progress_at_most_once_an_interval() {
        let mut display = Display::lines_every(Duration::from_secs(3600));
        let mut out = Vec::new();
        display.job(&job("queued", 0, None), &mut out);
        display.job(&job("running", 10, Some(1.0)), &mut out);
        display.job(&job("running", 20, Some(2.0)), &mut out);
        display.job(&job("running", 30, Some(3.0)), &mut out);
        display.job(&job("succeeded", 40, Some(100.0)), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "queued 0 rows\nrunning 10 rows 1.0%\nsucceeded 40 rows 100.0%\n"
        );
    }

    #[test]
    fn upload_lines_give_bytes_sent_of_the_total_and_always_the_last_one() {
        let mut display = Display::lines_every(Duration::from_secs(3600));
        let mut out = Vec::new();
        display.upload(0, 200, &mut out);
        display.upload(100, 200, &mut out);
        display.upload(200, 200, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "uploading 0 of 200 bytes 0.0%\nuploading 200 of 200 bytes 100.0%\n"
        );
    }
}
