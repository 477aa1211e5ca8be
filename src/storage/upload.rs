//! Streaming multipart uploads with backpressure.
//!
//! An [`Upload`] gathers written bytes into one part of `part_size` bytes, sends full parts
//! concurrently, and makes the writer wait while `max_parts_in_flight` parts are on their way.
//! Memory is therefore bounded by about `part_size × (max_parts_in_flight + 1)`, whatever the
//! size of the file. With S3 the upload goes through object_store's [`MultipartStore`], so its
//! upload id is known from the start and can be kept in the job's checkpoint: if the worker is
//! killed, [`Storage::abort_stale_upload`] removes what it left. Locally the upload writes a
//! staging file next to the target (`name#N`) and renames it on completion.
//!
//! Dropping an `Upload` without [`Upload::finish`] or [`Upload::abort`] stops its parts; the
//! local staging file is removed, but an S3 multipart upload stays until aborted.

use super::{Backend, ObjectKey, Storage, StorageError};
use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{MultipartId, MultipartUpload, ObjectStoreExt, PutPayload, PutPayloadMut};
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Chunks at least this long are kept as they are; shorter ones are copied together so that a
/// stream of tiny writes (one per row) does not become millions of tiny buffers.
const COPY_BELOW: usize = 64 * 1024;

/// What one part's task returns: its index and, with S3, its id for completion.
type PartDone = Result<(usize, Option<PartId>), StorageError>;

/// A multipart upload in progress. Write with [`Upload::write`], then [`Upload::finish`] or
/// [`Upload::abort`].
#[derive(Debug)]
pub struct Upload {
    key: ObjectKey,
    sink: Sink,
    part_size: usize,
    max_in_flight: usize,
    /// The part being filled; never longer than `part_size`.
    buffer: PutPayloadMut,
    in_flight: JoinSet<PartDone>,
    /// Ids of finished S3 parts, by index.
    parts: Vec<Option<PartId>>,
    next_part: usize,
    size: u64,
}

/// Where parts go.
#[derive(Debug)]
enum Sink {
    S3 {
        store: Arc<PrefixStore<AmazonS3>>,
        path: Path,
        id: MultipartId,
    },
    Local(Box<dyn MultipartUpload>),
}

impl Storage {
    /// Starts a multipart upload to `key`; nothing is visible under the key until
    /// [`Upload::finish`] succeeds.
    pub async fn begin_upload(&self, key: &ObjectKey) -> Result<Upload, StorageError> {
        let path = key.path();
        let to_error = |e| StorageError::from_store(key.as_str(), e);
        let sink = match &self.inner.backend {
            Backend::S3(store) => Sink::S3 {
                id: store.create_multipart(&path).await.map_err(to_error)?,
                store: store.clone(),
                path,
            },
            Backend::Local(local) => {
                Sink::Local(local.store.put_multipart(&path).await.map_err(to_error)?)
            }
        };
        let (part_size, max_in_flight) = (self.inner.part_size, self.inner.max_parts_in_flight);
        Ok(Upload::new(key.clone(), sink, part_size, max_in_flight))
    }
}

impl Upload {
    fn new(key: ObjectKey, sink: Sink, part_size: usize, max_in_flight: usize) -> Self {
        Self {
            key,
            sink,
            part_size,
            max_in_flight,
            buffer: new_buffer(),
            in_flight: JoinSet::new(),
            parts: Vec::new(),
            next_part: 0,
            size: 0,
        }
    }

    /// The S3 multipart upload id, to keep in the job's checkpoint; `None` for the local store.
    pub fn upload_id(&self) -> Option<String> {
        match &self.sink {
            Sink::S3 { id, .. } => Some(id.clone()),
            Sink::Local(_) => None,
        }
    }

    /// The key being written.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    /// Appends `data`. Waits while `max_parts_in_flight` parts are being uploaded, and fails
    /// with the first part that failed; after an error, [`Upload::abort`] the upload.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), StorageError> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = self.part_size - self.buffer.content_length();
            let chunk = data.split_to(room.min(data.len()));
            if chunk.len() >= COPY_BELOW {
                self.buffer.push(chunk);
            } else {
                self.buffer.extend_from_slice(&chunk);
            }
            if self.buffer.content_length() == self.part_size {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered, waits for every part and completes the upload; returns the
    /// object's size. On failure the upload is aborted and nothing is left under the key.
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        match self.complete().await {
            Ok(()) => {
                tracing::debug!(key = %self.key, bytes = self.size, "upload complete");
                Ok(self.size)
            }
            Err(error) => {
                if let Err(abort) = self.stop().await {
                    tracing::warn!(key = %self.key, error = %abort, "could not abort a failed upload");
                }
                Err(error)
            }
        }
    }

    /// Stops the parts in flight and discards everything uploaded so far.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        self.stop().await
    }

    /// Sends the buffered part, first waiting until fewer than `max_in_flight` are in flight.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        while let Some(done) = self.in_flight.try_join_next() {
            self.record(done)?;
        }
        while self.in_flight.len() >= self.max_in_flight {
            self.collect_one().await?;
        }
        let payload = std::mem::replace(&mut self.buffer, new_buffer()).freeze();
        let index = self.next_part;
        self.next_part += 1;
        let part = self.sink.put_part(&self.key, index, payload);
        // A part logs in the writer's span (a job's or a request's).
        self.in_flight.spawn(part.in_current_span());
        Ok(())
    }

    /// Waits for one part in flight.
    async fn collect_one(&mut self) -> Result<(), StorageError> {
        match self.in_flight.join_next().await {
            Some(done) => self.record(done),
            None => Ok(()),
        }
    }

    /// Keeps a finished part's id, or returns its failure.
    fn record(
        &mut self,
        done: Result<PartDone, tokio::task::JoinError>,
    ) -> Result<(), StorageError> {
        let (index, id) = done.map_err(|e| StorageError::Unreachable(Box::new(e)))??;
        if self.parts.len() <= index {
            self.parts.resize(index + 1, None);
        }
        self.parts[index] = id;
        Ok(())
    }

    /// Sends the last part, waits for all, and completes.
    async fn complete(&mut self) -> Result<(), StorageError> {
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        let key = self.key.as_str();
        let to_error = |e| StorageError::from_store(key, e);
        match &mut self.sink {
            Sink::S3 { store, path, id } => {
                let parts = std::mem::take(&mut self.parts)
                    .into_iter()
                    .collect::<Option<Vec<PartId>>>()
                    .ok_or_else(|| {
                        StorageError::Refused("a part of the upload is missing".into())
                    })?;
                store
                    .complete_multipart(path, id, parts)
                    .await
                    .map_err(to_error)?;
            }
            Sink::Local(upload) => {
                upload.complete().await.map_err(to_error)?;
            }
        }
        Ok(())
    }

    /// Cancels the parts in flight and aborts the upload; an upload the store no longer knows
    /// counts as aborted.
    async fn stop(&mut self) -> Result<(), StorageError> {
        self.in_flight.shutdown().await;
        let result = match &mut self.sink {
            Sink::S3 { store, path, id } => store.abort_multipart(path, id).await,
            Sink::Local(upload) => upload.abort().await,
        };
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::from_store(self.key.as_str(), e)),
        }
    }
}

impl Sink {
    /// The upload of one part, ready to be spawned.
    fn put_part(
        &mut self,
        key: &ObjectKey,
        index: usize,
        payload: PutPayload,
    ) -> BoxFuture<'static, PartDone> {
        let key = key.as_str().to_owned();
        match self {
            Sink::S3 { store, path, id } => {
                let (store, path, id) = (store.clone(), path.clone(), id.clone());
                Box::pin(async move {
                    let bytes = payload.content_length();
                    let part = store.put_part(&path, &id, index, payload).await;
                    if part.is_ok() {
                        tracing::debug!(key = %key, part = index, bytes, "part stored");
                    }
                    part.map(|part| (index, Some(part)))
                        .map_err(|e| StorageError::from_store(&key, e))
                })
            }
            Sink::Local(upload) => {
                let bytes = payload.content_length();
                let part = upload.put_part(payload);
                Box::pin(async move {
                    part.await
                        .map(|()| {
                            tracing::debug!(key = %key, part = index, bytes, "part stored");
                            (index, None)
                        })
                        .map_err(|e| StorageError::from_store(&key, e))
                })
            }
        }
    }
}

/// An empty part buffer that copies small writes into 64 KiB blocks.
fn new_buffer() -> PutPayloadMut {
    PutPayloadMut::new().with_block_size(COPY_BELOW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{PutResult, UploadPart};
    use std::sync::Mutex;
    use tokio::sync::Semaphore;

    /// A local-style upload whose parts finish only when the test lets them.
    #[derive(Debug)]
    struct GatedUpload {
        gate: Arc<Semaphore>,
        /// Lengths of the parts started, in order.
        started: Arc<Mutex<Vec<usize>>>,
    }

    #[async_trait::async_trait]
    impl MultipartUpload for GatedUpload {
        fn put_part(&mut self, data: PutPayload) -> UploadPart {
            self.started.lock().unwrap().push(data.content_length());
            let gate = self.gate.clone();
            Box::pin(async move {
                gate.acquire().await.unwrap().forget();
                Ok(())
            })
        }

        async fn complete(&mut self) -> object_store::Result<PutResult> {
            Ok(PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            })
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            Ok(())
        }
    }

    fn gated(
        part_size: usize,
        max_in_flight: usize,
    ) -> (Upload, Arc<Semaphore>, Arc<Mutex<Vec<usize>>>) {
        let fake = GatedUpload {
            gate: Arc::new(Semaphore::new(0)),
            started: Arc::default(),
        };
        let (gate, started) = (fake.gate.clone(), fake.started.clone());
        let key = ObjectKey::parse("t/file.csv").unwrap();
        let upload = Upload::new(key, Sink::Local(Box::new(fake)), part_size, max_in_flight);
        (upload, gate, started)
    }

    #[tokio::test]
    async fn a_writer_waits_while_the_maximum_number_of_parts_is_in_flight() {
        let (mut upload, gate, started) = gated(10, 2);
        upload.write(Bytes::from_static(&[1; 20])).await.unwrap();
        assert_eq!(*started.lock().unwrap(), [10, 10]);

        {
            let third = upload.write(Bytes::from_static(&[2; 10]));
            tokio::pin!(third);
            assert!(
                futures::poll!(third.as_mut()).is_pending(),
                "a third part went out"
            );
            assert_eq!(started.lock().unwrap().len(), 2);
            gate.add_permits(1);
            third.await.unwrap();
        }
        assert_eq!(*started.lock().unwrap(), [10, 10, 10]);
        gate.add_permits(2);
        assert_eq!(upload.finish().await.unwrap(), 30);
    }

    #[tokio::test]
    async fn writes_are_cut_into_parts_of_exactly_part_size_and_a_short_last_one() {
        let (mut upload, gate, started) = gated(10, 8);
        gate.add_permits(100);
        for chunk in [3usize, 9, 1, 15, 4] {
            upload.write(Bytes::from(vec![0; chunk])).await.unwrap();
            assert!(upload.buffer.content_length() < 10);
        }
        assert_eq!(upload.finish().await.unwrap(), 32);
        assert_eq!(*started.lock().unwrap(), [10, 10, 10, 2]);
    }

    #[tokio::test]
    async fn an_empty_upload_sends_no_part_and_completes() {
        let (upload, _gate, started) = gated(10, 2);
        assert_eq!(upload.finish().await.unwrap(), 0);
        assert!(started.lock().unwrap().is_empty());
    }
}
