//! `ferry generate`: the synthetic generator and the export codecs, writing a local file.

use crate::domain::export::RawGenerateSource;
use crate::domain::{ExportRequest, Format, Source};
use crate::pipeline::codecs::EncoderOptions;
use crate::pipeline::export::{ByteSink, DEFAULT_GZIP_LEVEL, Output, SinkError, run};
use crate::pipeline::sources::open_generator;
use anyhow::Context;
use bytes::Bytes;
use std::path::PathBuf;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Options of `ferry generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows to write.
    #[arg(long)]
    pub rows: u64,
    /// The seed; the same seed and columns give the same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A column as NAME:KIND (uuid, int, float, bool, name, email, company, city, country,
    /// phone, date, timestamp, text, json); repeat for more columns.
    #[arg(long = "column", value_name = "NAME:KIND")]
    pub columns: Vec<String>,
    /// A JSON file with the columns as in the API's generate source (for kind options).
    #[arg(long, conflicts_with = "columns")]
    pub columns_file: Option<PathBuf>,
    /// csv, csv.gz, jsonl, jsonl.gz, parquet or xlsx.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Where to write; `-` for standard output.
    #[arg(long, short, default_value = "-")]
    pub output: String,
}

/// A column of the generate source from `NAME:KIND` (a bare `NAME` is `text`), as `--column`
/// here and `--generate` of `ferry export` write it.
pub fn column(text: &str) -> serde_json::Value {
    let (name, kind) = text.split_once(':').unwrap_or((text, "text"));
    serde_json::json!({"name": name, "kind": kind})
}

/// Writes the file and returns (rows, bytes).
pub async fn execute(
    args: &Args,
    out: impl AsyncWrite + Unpin + Send,
) -> anyhow::Result<(u64, u64)> {
    let columns: serde_json::Value = match &args.columns_file {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => args.columns.iter().map(|c| column(c)).collect(),
    };
    let format: Format = serde_json::from_value(serde_json::Value::String(args.format.clone()))
        .map_err(|_| anyhow::anyhow!("unknown format {:?}", args.format))?;
    let request = ExportRequest {
        name: None,
        source: Some(crate::domain::export::RawSource::Generate(
            RawGenerateSource(serde_json::json!({
                "rows": args.rows, "seed": args.seed, "columns": columns,
            })),
        )),
        format,
        files: Vec::new(),
        compression: None,
        csv: None,
        notify: None,
        share_with: vec![],
    };
    let spec = request.parse("local")?;
    let Some(Source::Generate(generate)) = spec.parts.into_iter().next().map(|p| p.source) else {
        anyhow::bail!("not a generate source")
    };
    let encoding = format
        .encoding()
        .context("ferry generate writes one file: not a zip bundle")?;
    let output = Output {
        encoding,
        options: EncoderOptions::default(),
        gzip: format.is_gzip().then_some(DEFAULT_GZIP_LEVEL),
    };
    let mut sink = WriterSink(out);
    let written = run(
        open_generator(generate),
        &output,
        &mut sink,
        &CancellationToken::new(),
        |_, _| {},
    )
    .await?;
    sink.0.flush().await?;
    Ok((written.rows, written.bytes))
}

struct WriterSink<W>(W);

#[async_trait::async_trait]
impl<W: AsyncWrite + Unpin + Send> ByteSink for WriterSink<W> {
    async fn write(&mut self, data: Bytes) -> Result<(), SinkError> {
        self.0.write_all(&data).await.map_err(|e| SinkError {
            transient: false,
            message: e.to_string(),
        })
    }
}
