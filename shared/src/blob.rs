//! The S3 writer for exports (ARCHITECTURE.md `blob`): small objects in one PutObject, streams of
//! any size as a multipart upload whose memory stays bounded by about two parts, SSE-KMS with the
//! stack's key on every write (PRIVACY.md P8), erase by prefix over every version (P11), and key
//! segments that are safe whatever file name they come from.
//!
//! Keys and metadata may carry customer file names, so nothing here logs a key, a prefix or any
//! content, and no error carries them either: errors name the S3 operation (the step) that failed.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, ServerSideEncryption,
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::error::AwsError;

/// Part size unless [`BlobStore::with_part_size`] says otherwise.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's maximum part size (5 GiB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's maximum number of parts in one multipart upload.
pub const MAX_PARTS: i32 = 10_000;
/// S3's maximum key length, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Cap of [`metadata_value`], in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 1024;
/// S3's limit on all user metadata of one object (keys and values, UTF-8 bytes).
pub const MAX_METADATA_BYTES: usize = 2048;
/// DeleteObjects takes at most this many keys per call.
const DELETE_BATCH: usize = 1000;
/// First allocation of the part buffer; it doubles up to the part size, so small objects
/// never cost a whole part of memory.
const INITIAL_BUFFER: usize = 64 * 1024;
/// How long an error path waits for the part upload in flight before aborting the upload.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// What was stored: the key, the byte count and the SHA-256 of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub bytes: u64,
    pub sha256_hex: String,
}

/// Why a blob operation failed. Never carries object contents, keys or file names.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An S3 call failed; `operation` names the step (PutObject, CreateMultipartUpload,
    /// UploadPart, CompleteMultipartUpload, ...).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The input stream yielded an error (its own text).
    #[error("reading the input stream failed: {0}")]
    Source(String),
    /// The stream's length differs from the expected one. When the stream ran long, `got` is
    /// what had been read when it was stopped (more than `expected`).
    #[error("the input stream had {got} bytes where {expected} were expected")]
    LengthMismatch { expected: u64, got: u64 },
    /// The stream needs more than [`MAX_PARTS`] parts of this size.
    #[error("the object needs more than {MAX_PARTS} parts of {part_size} bytes")]
    TooManyParts { part_size: usize },
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    #[error("invalid prefix: {0}")]
    InvalidPrefix(&'static str),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(&'static str),
    /// S3 answered without something it always sends.
    #[error("{operation}: the response has no {missing}")]
    MissingField {
        operation: &'static str,
        missing: &'static str,
    },
    /// The body of a response broke off while being read.
    #[error("{operation}: reading the response body failed: {detail}")]
    Body {
        operation: &'static str,
        detail: String,
    },
    /// DeleteObjects answered with per-key errors.
    #[error(
        "DeleteObjects could not delete {failed} of {attempted} versions (first error: {code})"
    )]
    DeleteFailed {
        failed: usize,
        attempted: usize,
        code: String,
    },
    /// A request could not be built (a required field was missing).
    #[error("{operation}: building the request failed: {detail}")]
    Build {
        operation: &'static str,
        detail: String,
    },
}

fn build_err(operation: &'static str) -> impl FnOnce(aws_sdk_s3::error::BuildError) -> BlobError {
    move |e| BlobError::Build {
        operation,
        detail: e.to_string(),
    }
}

/// The bucket the exports land in, through one S3 client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: String,
    part_size: usize,
}

impl BlobStore {
    /// A store writing to `bucket` with SSE-KMS under `kms_key_id`; parts of 8 MiB.
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        kms_key_id: impl Into<String>,
    ) -> BlobStore {
        BlobStore {
            s3,
            bucket: bucket.into(),
            kms_key_id: kms_key_id.into(),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Use parts of `bytes` bytes, clamped to S3's limits (5 MiB ..= 5 GiB). Memory of
    /// [`BlobStore::put_stream`] is about twice this.
    pub fn with_part_size(mut self, bytes: usize) -> BlobStore {
        let max = usize::try_from(MAX_PART_SIZE).unwrap_or(usize::MAX);
        self.part_size = bytes.clamp(MIN_PART_SIZE, max);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// One PutObject of `body`: SSE-KMS with our key (bucket key on), the given content type and
    /// metadata (values must be printable ASCII: use [`metadata_value`] for anything else).
    pub async fn put_bytes(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Stored, BlobError> {
        check_key(key)?;
        let metadata = metadata_map(metadata)?;
        let sha256_hex = hex::encode(Sha256::digest(&body));
        let bytes = body.len() as u64;
        self.put_object(key, body, content_type, &metadata).await?;
        Ok(Stored {
            key: key.to_owned(),
            bytes,
            sha256_hex,
        })
    }

    /// Store a stream of chunks of any sizes, holding at most about two parts in memory.
    ///
    /// Up to one part (inclusive) it is a single PutObject; beyond, a multipart upload with one
    /// part uploading while the next is read. Any failure aborts the multipart upload before
    /// the error is returned; dropping the future midway aborts it from a spawned task (best
    /// effort). SHA-256 and length are computed on the way; a length other than `expected_len`
    /// fails, and nothing stays behind.
    pub async fn put_stream<S, E>(
        &self,
        key: &str,
        stream: S,
        content_type: &str,
        metadata: &[(&str, &str)],
        expected_len: Option<u64>,
    ) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: fmt::Display,
    {
        check_key(key)?;
        let metadata = metadata_map(metadata)?;
        let mut upload = Upload {
            store: self,
            key,
            content_type,
            metadata: &metadata,
            upload_id: None,
            parts: Vec::new(),
            in_flight: None,
        };
        match upload.run(stream, expected_len).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    /// Abort every in-progress multipart upload under `prefix` (what a crashed export leaves
    /// behind); returns how many were aborted. `prefix` must be non-empty and end with `/`.
    pub async fn abort_uploads_under(&self, prefix: &str) -> Result<u64, BlobError> {
        check_prefix(prefix)?;
        let mut aborted = 0;
        let mut key_marker: Option<String> = None;
        let mut upload_id_marker: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|e| AwsError::new("ListMultipartUploads", &e))?;
            let mut removed = 0;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if !key.starts_with(prefix) {
                    continue;
                }
                let result = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
                match result {
                    Ok(_) => removed += 1,
                    // Completed or aborted by someone else meanwhile: nothing left to do.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => {}
                    Err(e) => return Err(AwsError::new("AbortMultipartUpload", &e).into()),
                }
            }
            aborted += removed;
            if page.is_truncated() != Some(true) {
                break;
            }
            if removed > 0 {
                // What this page listed is gone: list again from the start (not every S3
                // implementation understands a marker naming a removed upload).
                continue;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && upload_id_marker.is_none() {
                return Err(BlobError::MissingField {
                    operation: "ListMultipartUploads",
                    missing: "next marker on a truncated page",
                });
            }
        }
        if aborted > 0 {
            tracing::info!(aborted, "aborted orphaned multipart uploads");
        }
        Ok(aborted)
    }

    /// Delete every object version and delete marker under `prefix` (erase, PRIVACY.md P11):
    /// ListObjectVersions page by page (up to 1,000 entries each), DeleteObjects in batches of
    /// up to 1,000, listing again from the start after each page it emptied. Returns how
    /// many versions and markers were deleted; running it again returns 0. `prefix` must be
    /// non-empty and end with `/`, so one tenant's erase can never reach `tenant2/`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        check_prefix(prefix)?;
        let mut deleted = 0u64;
        let mut key_marker: Option<String> = None;
        let mut version_id_marker: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_id_marker.take())
                .send()
                .await
                .map_err(|e| AwsError::new("ListObjectVersions", &e))?;
            let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
            let markers = page
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id()));
            let mut ids = Vec::new();
            for (key, version_id) in versions.chain(markers) {
                let Some(key) = key.filter(|k| k.starts_with(prefix)) else {
                    continue;
                };
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version_id.map(str::to_owned))
                        .build()
                        .map_err(build_err("DeleteObjects"))?,
                );
            }
            let mut removed = 0;
            for batch in ids.chunks(DELETE_BATCH) {
                removed += self.delete_batch(batch.to_vec()).await?;
            }
            deleted += removed;
            if page.is_truncated() != Some(true) {
                break;
            }
            if removed > 0 {
                // Everything this page listed is gone: list again from the start. Each round
                // removes something, so this ends; it also picks up versions written meanwhile,
                // and works where a marker naming a deleted version is not understood (moto).
                continue;
            }
            (key_marker, version_id_marker) = next_version_markers(&page)?;
        }
        tracing::info!(deleted, "deleted object versions under a prefix");
        Ok(deleted)
    }

    /// Delete the current object of each key (DeleteObjects in batches of up to 1,000, without
    /// version ids: in a versioned bucket each becomes a delete marker and its data a
    /// noncurrent version, which the lifecycle rule expires). Meant for keys just listed as
    /// current: deleting a key with no current object would only add another marker. Returns
    /// how many keys were deleted.
    pub async fn delete_keys(&self, keys: &[String]) -> Result<u64, BlobError> {
        let mut deleted = 0;
        for batch in keys.chunks(DELETE_BATCH) {
            let mut ids = Vec::with_capacity(batch.len());
            for key in batch {
                check_key(key)?;
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(build_err("DeleteObjects"))?,
                );
            }
            deleted += self.delete_batch(ids).await?;
        }
        Ok(deleted)
    }

    async fn delete_batch(&self, batch: Vec<ObjectIdentifier>) -> Result<u64, BlobError> {
        let attempted = batch.len();
        let delete = Delete::builder()
            .set_objects(Some(batch))
            .quiet(true)
            .build()
            .map_err(build_err("DeleteObjects"))?;
        let out = self
            .s3
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| AwsError::new("DeleteObjects", &e))?;
        let errors = out.errors();
        if let Some(first) = errors.first() {
            return Err(BlobError::DeleteFailed {
                failed: errors.len(),
                attempted,
                code: first.code().unwrap_or("unknown").to_owned(),
            });
        }
        Ok(attempted as u64)
    }

    /// One user metadata value of an object (HeadObject); `Ok(None)` if there is no such key
    /// or no such value.
    pub async fn metadata_of(&self, key: &str, name: &str) -> Result<Option<String>, BlobError> {
        Ok(self.metadata(key).await?.and_then(|mut m| m.remove(name)))
    }

    /// All user metadata of an object (one HeadObject); `Ok(None)` if there is no such key.
    pub async fn metadata(&self, key: &str) -> Result<Option<HashMap<String, String>>, BlobError> {
        check_key(key)?;
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(mut out) => Ok(Some(out.metadata.take().unwrap_or_default())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(AwsError::new("HeadObject", &e).into()),
        }
    }

    /// Whether no object is stored under `prefix` (one ListObjectsV2 of one key).
    pub async fn is_empty_under(&self, prefix: &str) -> Result<bool, BlobError> {
        check_prefix(prefix)?;
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| AwsError::new("ListObjectsV2", &e))?;
        Ok(out.contents().is_empty())
    }

    /// Read an object fully (manifests, tests). `Ok(None)` if there is no such key.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.get_bytes_capped(key, u64::MAX).await
    }

    /// Read an object of at most `max` bytes; `Ok(None)` if there is no such key, and
    /// [`BlobError::LengthMismatch`] (without reading further) if it is larger: memory never
    /// holds more than `max` bytes of it.
    pub async fn get_bytes_capped(&self, key: &str, max: u64) -> Result<Option<Bytes>, BlobError> {
        check_key(key)?;
        let mut out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(AwsError::new("GetObject", &e).into()),
        };
        let declared = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if declared > max {
            return Err(BlobError::LengthMismatch {
                expected: max,
                got: declared,
            });
        }
        let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body {
                operation: "GetObject",
                detail: e.to_string(),
            })?;
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(BlobError::LengthMismatch {
                    expected: max,
                    got: (buf.len() + chunk.len()) as u64,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Some(buf.freeze()))
    }

    /// Every current object key under `prefix`, in S3's order (paginated ListObjectsV2).
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::new("ListObjectsV2", &e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// The "directories" right under `prefix` (common prefixes at the next `/`), over every
    /// object version, so a prefix holding only old versions or delete markers is listed too
    /// (ListObjectVersions with a delimiter: the erase's own permission). `prefix` must be
    /// non-empty and end with `/`.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        check_prefix(prefix)?;
        let mut dirs: Vec<String> = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_id_marker: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_id_marker.take())
                .send()
                .await
                .map_err(|e| AwsError::new("ListObjectVersions", &e))?;
            for p in page.common_prefixes() {
                if let Some(dir) = p.prefix().filter(|d| d.starts_with(prefix))
                    && !dirs.iter().any(|d| d == dir)
                {
                    dirs.push(dir.to_owned());
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(dirs);
            }
            (key_marker, version_id_marker) = next_version_markers(&page)?;
        }
    }

    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<(), BlobError> {
        self.put_object_tagged(key, body, content_type, metadata, None)
            .await
    }

    /// Like [`BlobStore::put_bytes`], with the object tagged [`EXPIRES_TAG`]: the bucket's
    /// lifecycle rule for transient objects (job state, manifests no longer needed) removes
    /// it after the retention; untagged objects (exported items) stay while their connector
    /// exists.
    pub async fn put_bytes_expiring(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError> {
        check_key(key)?;
        self.put_object_tagged(key, body, content_type, &HashMap::new(), Some(EXPIRES_TAG))
            .await
    }

    /// Tag an existing object [`EXPIRES_TAG`] (a manifest no longer needed for removal
    /// detection). A missing object is not an error.
    pub async fn mark_expiring(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        let (k, v) = EXPIRES_TAG.split_once('=').unwrap_or((EXPIRES_TAG, ""));
        let tag = aws_sdk_s3::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| BlobError::Body {
                operation: "PutObjectTagging",
                detail: e.to_string(),
            })?;
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| BlobError::Body {
                operation: "PutObjectTagging",
                detail: e.to_string(),
            })?;
        match self
            .s3
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => Err(AwsError::new("PutObjectTagging", &e).into()),
        }
    }

    /// The body goes unsigned (`UNSIGNED-PAYLOAD`), here and in [`upload_part`]: SigV4 would
    /// hash every byte a second time (ours is hashed for the manifest already) for an integrity
    /// check that the SDK's CRC32 checksum header (on by default, verified by S3) and TLS give
    /// anyway (the bucket policy denies every request without TLS: `DenyInsecureTransport` in
    /// infra/template.yaml). The headers, key and metadata stay signed.
    async fn put_object_tagged(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &HashMap<String, String>,
        tagging: Option<&str>,
    ) -> Result<(), BlobError> {
        self.s3
            .put_object()
            .set_tagging(tagging.map(str::to_owned))
            .bucket(&self.bucket)
            .key(key)
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(body))
            .content_type(content_type)
            .set_metadata(non_empty(metadata))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .bucket_key_enabled(true)
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| AwsError::new("PutObject", &e))?;
        Ok(())
    }

    async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<String, BlobError> {
        let out = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata(non_empty(metadata))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .bucket_key_enabled(true)
            .send()
            .await
            .map_err(|e| AwsError::new("CreateMultipartUpload", &e))?;
        out.upload_id
            .filter(|id| !id.is_empty())
            .ok_or(BlobError::MissingField {
                operation: "CreateMultipartUpload",
                missing: "upload id",
            })
    }
}

fn non_empty(metadata: &HashMap<String, String>) -> Option<HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.clone())
}

type PartFuture = Pin<Box<dyn Future<Output = Result<CompletedPart, BlobError>> + Send>>;

/// Upload one part; owns everything so it can run while the next part is read.
fn upload_part(
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    part_number: i32,
    body: Bytes,
) -> PartFuture {
    Box::pin(async move {
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| AwsError::new("UploadPart", &e))?;
        let e_tag = out.e_tag.ok_or(BlobError::MissingField {
            operation: "UploadPart",
            missing: "ETag",
        })?;
        Ok(CompletedPart::builder()
            .part_number(part_number)
            .e_tag(e_tag)
            .build())
    })
}

/// One `put_stream` call. Dropping it with a multipart upload still open aborts that upload
/// from a spawned task (best effort: needs a live Tokio runtime).
struct Upload<'a> {
    store: &'a BlobStore,
    key: &'a str,
    content_type: &'a str,
    metadata: &'a HashMap<String, String>,
    /// Set once the stream outgrew one part; cleared when completed or aborted.
    upload_id: Option<String>,
    /// Parts uploaded so far, in order.
    parts: Vec<CompletedPart>,
    /// At most one part upload running while the next part is read.
    in_flight: Option<PartFuture>,
}

/// What happened first while waiting for input: the part in flight finished, or the stream
/// yielded.
enum Step<T> {
    Part(Box<Result<CompletedPart, BlobError>>),
    Item(Option<T>),
}

impl Upload<'_> {
    async fn run<S, E>(&mut self, stream: S, expected_len: Option<u64>) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: fmt::Display,
    {
        let part_size = self.store.part_size;
        let mut stream = std::pin::pin!(stream);
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let mut buf = BytesMut::new();
        while let Some(mut chunk) = self.next_chunk(stream.as_mut()).await? {
            hasher.update(&chunk);
            total += chunk.len() as u64;
            if let Some(expected) = expected_len
                && total > expected
            {
                return Err(BlobError::LengthMismatch {
                    expected,
                    got: total,
                });
            }
            while !chunk.is_empty() {
                if buf.len() == part_size {
                    // A full part and more data behind it: it goes as a part.
                    let part = std::mem::take(&mut buf).freeze();
                    self.send_part(part).await?;
                    buf = BytesMut::with_capacity(part_size);
                }
                let n = (part_size - buf.len()).min(chunk.len());
                reserve_bounded(&mut buf, n, part_size);
                buf.extend_from_slice(&chunk.split_to(n));
            }
        }
        if let Some(expected) = expected_len
            && total != expected
        {
            return Err(BlobError::LengthMismatch {
                expected,
                got: total,
            });
        }
        let stored = Stored {
            key: self.key.to_owned(),
            bytes: total,
            sha256_hex: hex::encode(hasher.finalize()),
        };
        if self.upload_id.is_none() {
            self.store
                .put_object(self.key, buf.freeze(), self.content_type, self.metadata)
                .await?;
            return Ok(stored);
        }
        self.send_part(buf.freeze()).await?;
        self.finish_in_flight().await?;
        self.complete().await?;
        tracing::debug!(
            parts = self.parts.len(),
            bytes = total,
            "multipart upload completed"
        );
        Ok(stored)
    }

    /// The next non-empty chunk, or `None` at the end; drives the part in flight meanwhile.
    async fn next_chunk<S, E>(
        &mut self,
        mut stream: Pin<&mut S>,
    ) -> Result<Option<Bytes>, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        loop {
            let step = match self.in_flight.as_mut() {
                None => Step::Item(stream.next().await),
                Some(part) => tokio::select! {
                    biased;
                    done = part => Step::Part(Box::new(done)),
                    item = stream.next() => Step::Item(item),
                },
            };
            match step {
                Step::Part(done) => {
                    self.in_flight = None;
                    self.parts.push((*done)?);
                }
                Step::Item(None) => return Ok(None),
                Step::Item(Some(Err(e))) => return Err(BlobError::Source(e.to_string())),
                Step::Item(Some(Ok(chunk))) if chunk.is_empty() => {}
                Step::Item(Some(Ok(chunk))) => return Ok(Some(chunk)),
            }
        }
    }

    /// Wait for the part in flight, open the multipart upload if needed, start uploading `body`.
    async fn send_part(&mut self, body: Bytes) -> Result<(), BlobError> {
        self.finish_in_flight().await?;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .create_multipart(self.key, self.content_type, self.metadata)
                    .await?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let part_number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        if part_number > MAX_PARTS {
            return Err(BlobError::TooManyParts {
                part_size: self.store.part_size,
            });
        }
        self.in_flight = Some(upload_part(
            self.store.s3.clone(),
            self.store.bucket.clone(),
            self.key.to_owned(),
            upload_id,
            part_number,
            body,
        ));
        Ok(())
    }

    async fn finish_in_flight(&mut self) -> Result<(), BlobError> {
        if let Some(part) = self.in_flight.take() {
            self.parts.push(part.await?);
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), BlobError> {
        let Some(upload_id) = self.upload_id.clone() else {
            return Ok(());
        };
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(self.parts.clone()))
            .build();
        self.store
            .s3
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.key)
            .upload_id(upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| AwsError::new("CompleteMultipartUpload", &e))?;
        self.upload_id = None;
        Ok(())
    }

    /// After a failure: let the part in flight settle (so no part lands after the abort), then
    /// abort the multipart upload. Failures here are logged; the original error is what counts.
    async fn abort(&mut self) {
        // Cleared only once the abort is sent: if this is cancelled, `Drop` still aborts.
        let Some(upload_id) = self.upload_id.clone() else {
            self.in_flight = None;
            return;
        };
        if let Some(part) = self.in_flight.take() {
            let _ = tokio::time::timeout(IN_FLIGHT_GRACE, part).await;
        }
        let result = self
            .store
            .s3
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.key)
            .upload_id(upload_id)
            .send()
            .await;
        self.upload_id = None;
        if let Err(e) = result {
            let e = AwsError::new("AbortMultipartUpload", &e);
            tracing::warn!(error = %e, "aborting a failed multipart upload failed");
        }
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        self.in_flight = None;
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("a cancelled multipart upload could not be aborted: no runtime");
            return;
        };
        let s3 = self.store.s3.clone();
        let bucket = self.store.bucket.clone();
        let key = self.key.to_owned();
        runtime.spawn(async move {
            let result = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = result {
                let e = AwsError::new("AbortMultipartUpload", &e);
                tracing::warn!(error = %e, "aborting a cancelled multipart upload failed");
            }
        });
    }
}

/// Make room for `additional` more bytes, never beyond `limit` capacity: doubles from
/// [`INITIAL_BUFFER`] with exact allocations (`BytesMut::reserve` could overshoot the part).
fn reserve_bounded(buf: &mut BytesMut, additional: usize, limit: usize) {
    let needed = buf.len() + additional;
    if needed <= buf.capacity() {
        return;
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(INITIAL_BUFFER)
        .min(limit)
        .max(needed);
    let mut bigger = BytesMut::with_capacity(target);
    bigger.extend_from_slice(buf);
    *buf = bigger;
}

/// Where the ListObjectVersions page after a truncated `page` starts: its next key and version
/// id markers (at least one must be there, or the listing could not go on).
fn next_version_markers(
    page: &aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput,
) -> Result<(Option<String>, Option<String>), BlobError> {
    let key = page.next_key_marker().map(str::to_owned);
    let version = page.next_version_id_marker().map(str::to_owned);
    if key.is_none() && version.is_none() {
        return Err(BlobError::MissingField {
            operation: "ListObjectVersions",
            missing: "next marker on a truncated page",
        });
    }
    Ok((key, version))
}

fn check_key(key: &str) -> Result<(), BlobError> {
    if key.is_empty() {
        return Err(BlobError::InvalidKey("must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(BlobError::InvalidKey("is longer than 1,024 bytes"));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), BlobError> {
    if prefix.is_empty() || prefix == "/" {
        return Err(BlobError::InvalidPrefix("must not be empty"));
    }
    if !prefix.ends_with('/') {
        return Err(BlobError::InvalidPrefix("must end with '/'"));
    }
    Ok(())
}

/// User metadata as S3 takes it: names of ASCII letters, digits, `-` and `_`; values of
/// printable ASCII; at most 2 KiB in all. Errors never echo a value.
fn metadata_map(metadata: &[(&str, &str)]) -> Result<HashMap<String, String>, BlobError> {
    let mut map = HashMap::with_capacity(metadata.len());
    let mut total = 0;
    for (name, value) in metadata {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(BlobError::InvalidMetadata(
                "names may only contain ASCII letters, digits, '-' and '_'",
            ));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(BlobError::InvalidMetadata(
                "values must be printable ASCII (encode them with metadata_value)",
            ));
        }
        total += name.len() + value.len();
        if map
            .insert(name.to_ascii_lowercase(), (*value).to_owned())
            .is_some()
        {
            return Err(BlobError::InvalidMetadata("a name is given twice"));
        }
    }
    if total > MAX_METADATA_BYTES {
        return Err(BlobError::InvalidMetadata("more than 2 KiB in all"));
    }
    Ok(map)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, c: char) {
    let mut utf8 = [0u8; 4];
    for &b in c.encode_utf8(&mut utf8).as_bytes() {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn is_key_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether a dot at `i` must be escaped: first, last, or right after another dot (so no
/// leading/trailing dot and never a `..` anywhere).
fn dot_escaped(chars: &[char], i: usize) -> bool {
    i == 0 || i + 1 == chars.len() || chars[i - 1] == '.'
}

/// Encoded length of one char in context (ignores the trailing-dot and device-name rules,
/// which change the total by at most a few bytes).
fn unit_len(chars: &[char], i: usize) -> usize {
    let c = chars[i];
    if is_key_safe(c) && !(c == '.' && (i == 0 || chars[i - 1] == '.')) {
        1
    } else {
        3 * c.len_utf8()
    }
}

/// Windows device names (matched on the part before the first dot, any case).
fn is_device_name(segment: &str) -> bool {
    let stem = segment.split('.').next().unwrap_or(segment);
    let stem = stem.to_ascii_lowercase();
    match stem.as_str() {
        "con" | "prn" | "aux" | "nul" => true,
        s if s.len() == 4 && (s.starts_with("com") || s.starts_with("lpt")) => {
            s.as_bytes()[3].is_ascii_digit()
        }
        _ => false,
    }
}

/// The full encoding of `chars`, with every rule of [`safe_key_segment`] but the cap.
fn encode_segment(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if is_key_safe(c) && !(c == '.' && dot_escaped(chars, i)) {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    if out.is_empty() {
        return "_".to_owned();
    }
    if is_device_name(&out) {
        out.insert(0, '_');
    } else if let Some(rest) = out.strip_prefix('_') {
        // Keep the mapping injective: `_` alone and `_con` must not look like what `` and
        // `con` become.
        if rest.is_empty() || is_device_name(rest) {
            out.replace_range(..1, "%5F");
        }
    }
    out
}

/// The longest encoding of `stem[..k] + ext` that fits `max`, if any with at least one char.
fn fit(stem: &[char], ext: &[char], max: usize) -> Option<String> {
    // Estimate k from the per-char lengths, then step down until the real encoding fits.
    let ext_len: usize = {
        let joined: Vec<char> = std::iter::once('x').chain(ext.iter().copied()).collect();
        (1..joined.len()).map(|i| unit_len(&joined, i)).sum()
    };
    let mut k = 0;
    let mut used = 0;
    while k < stem.len() {
        let next = used + unit_len(stem, k);
        if next + ext_len > max {
            break;
        }
        used = next;
        k += 1;
    }
    loop {
        if k + ext.len() == 0 {
            return None;
        }
        let candidate: Vec<char> = stem[..k].iter().chain(ext).copied().collect();
        let encoded = encode_segment(&candidate);
        if encoded.len() <= max {
            return Some(encoded);
        }
        if k == 0 {
            return None;
        }
        k -= 1;
    }
}

/// Longest extension (with its dot, in chars) that truncation keeps.
const MAX_EXTENSION_CHARS: usize = 16;

/// An S3 key segment made safe from any file name.
///
/// Every char outside `[A-Za-z0-9._-]` is percent-encoded as UTF-8 (`%XX`, upper-case hex; `%`
/// itself too), so the result has no `/`, `\`, control or invisible characters (NUL, CR, LF,
/// TAB, DEL, U+2028/9...) and no spaces. A dot is escaped (`%2E`) when it leads, trails or
/// follows another dot, so there is no leading/trailing dot and no `..` at all. Windows device
/// names (`con`, `NUL.txt`, `com1`...) get a leading `_` (and a name that already looks like that
/// gets its `_` escaped, so distinct names stay distinct). Under the cap the mapping is injective
/// and, device names aside, [`decode_metadata_value`] reverses it.
///
/// Longer results are cut to `max_bytes` at a char boundary (never inside an escape or a UTF-8
/// sequence), keeping a short extension (up to 16 chars, at most half the cap). Never empty: `_`
/// when nothing is left (also when `max_bytes` is too small for anything else).
/// The object tag (`key=value`) of transient objects, which the bucket's lifecycle expires
/// (infra/template.yaml, rule `expire-transient-objects`).
pub const EXPIRES_TAG: &str = "retention=expire";

pub fn safe_key_segment(name: &str, max_bytes: usize) -> String {
    let max = max_bytes.max(1);
    let chars: Vec<char> = name.chars().collect();
    let full = encode_segment(&chars);
    if full.len() <= max {
        return full;
    }
    let ext_start = chars
        .iter()
        .rposition(|&c| c == '.')
        .filter(|&p| p > 0 && chars.len() - p <= MAX_EXTENSION_CHARS);
    if let Some(p) = ext_start {
        let (stem, ext) = chars.split_at(p);
        if encode_segment(ext).len() <= max / 2
            && let Some(fitted) = fit(stem, ext, max)
        {
            return fitted;
        }
    }
    fit(&chars, &[], max).unwrap_or_else(|| "_".to_owned())
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// An S3 metadata value carrying an original file name: every char but RFC 3986's unreserved
/// ones percent-encoded as UTF-8, so any name survives S3's ASCII-only metadata; cut at a char
/// boundary to at most 1,024 bytes. [`decode_metadata_value`] gives the name back.
pub fn metadata_value(original: &str) -> String {
    let mut out = String::with_capacity(original.len().min(MAX_METADATA_VALUE_BYTES));
    for c in original.chars() {
        let len = if is_unreserved(c) {
            1
        } else {
            3 * c.len_utf8()
        };
        if out.len() + len > MAX_METADATA_VALUE_BYTES {
            break;
        }
        if is_unreserved(c) {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    out
}

/// The inverse of [`metadata_value`] (and of [`safe_key_segment`] for names under its cap that
/// are not device names): `None` if `value` is not well-formed percent-encoded UTF-8.
pub fn decode_metadata_value(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "../../etc/passwd",
        "a\u{0}b\nc\r\td",
        "résumé 履歴書.pdf",
        "con",
        "CON",
        "COM1.txt",
        "lpt9",
        "nul.tar.gz",
        "_con",
        "_",
        "",
        "%2F",
        "%",
        "..",
        ".",
        "...",
        ".hidden",
        "   ",
        " lead",
        "trail ",
        "trail.",
        "a/b\\c",
        "\u{2028}",
        "\u{2029}",
        "\u{7f}",
        "a..b",
        "a.%2Eb",
        "name.pdf",
        "name.pdf ",
        "😀.png",
        "x:y*z?\"<>|",
    ];

    fn assert_safe(input: &str, out: &str, max: usize) {
        let ctx = format!("{input:?} -> {out:?}");
        assert!(!out.is_empty(), "{ctx}");
        assert!(out.len() <= max.max(1), "{ctx}");
        assert!(
            out.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._%-".contains(&b)),
            "{ctx}"
        );
        assert!(!out.contains('/') && !out.contains('\\'), "{ctx}");
        assert!(!out.contains(".."), "{ctx}");
        assert!(!out.starts_with('.') && !out.ends_with('.'), "{ctx}");
        assert!(!out.starts_with(' ') && !out.ends_with(' '), "{ctx}");
        assert!(!is_device_name(out), "{ctx}");
        // Every escape is complete: `%` followed by two upper-case hex digits.
        let b = out.as_bytes();
        for (i, _) in out.match_indices('%') {
            let hex = b.get(i + 1..i + 3).unwrap_or_default();
            assert!(
                hex.len() == 2
                    && hex
                        .iter()
                        .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                "{ctx}"
            );
        }
        // Never split inside a UTF-8 sequence: the result always decodes.
        assert!(decode_metadata_value(out).is_some(), "{ctx}");
    }

    #[test]
    fn hostile_names_become_safe_segments() {
        for max in [255, 64, 16, 8, 4, 3, 1] {
            for name in HOSTILE {
                let out = safe_key_segment(name, max);
                assert_safe(name, &out, max);
                assert_eq!(out, safe_key_segment(name, max), "deterministic");
            }
        }
    }

    #[test]
    fn names_under_the_cap_round_trip_through_percent_decoding() {
        for name in HOSTILE {
            let out = safe_key_segment(name, 1024);
            if name.is_empty() || *name == "_" || is_device_name(name.trim_start_matches('_')) {
                continue;
            }
            assert_eq!(decode_metadata_value(&out).as_deref(), Some(*name), "{out}");
        }
    }

    #[test]
    fn specific_examples() {
        assert_eq!(
            safe_key_segment("../../etc/passwd", 255),
            "%2E%2E%2F.%2E%2Fetc%2Fpasswd"
        );
        assert_eq!(safe_key_segment("..", 255), "%2E%2E");
        assert_eq!(safe_key_segment(".hidden", 255), "%2Ehidden");
        assert_eq!(safe_key_segment("   ", 255), "%20%20%20");
        assert_eq!(safe_key_segment("a/b\\c", 255), "a%2Fb%5Cc");
        assert_eq!(safe_key_segment("\u{2028}", 255), "%E2%80%A8");
        assert_eq!(safe_key_segment("%2F", 255), "%252F");
        assert_eq!(safe_key_segment("a\u{0}b\nc\r\td", 255), "a%00b%0Ac%0D%09d");
        assert_eq!(safe_key_segment("con", 255), "_con");
        assert_eq!(safe_key_segment("COM1.txt", 255), "_COM1.txt");
        assert_eq!(safe_key_segment("_con", 255), "%5Fcon");
        assert_eq!(safe_key_segment("console.txt", 255), "console.txt");
        assert_eq!(safe_key_segment("", 255), "_");
        assert_eq!(safe_key_segment("_", 255), "%5F");
        assert_eq!(
            safe_key_segment("résumé 履歴書.pdf", 255),
            "r%C3%A9sum%C3%A9%20%E5%B1%A5%E6%AD%B4%E6%9B%B8.pdf"
        );
    }

    #[test]
    fn distinct_names_map_to_distinct_segments() {
        let mut seen = std::collections::HashMap::new();
        for name in HOSTILE {
            let out = safe_key_segment(name, 255);
            if let Some(other) = seen.insert(out.clone(), *name) {
                panic!("{other:?} and {name:?} both map to {out:?}");
            }
        }
    }

    /// Pseudo-random names from a hostile alphabet: the mapping stays injective and safe.
    #[test]
    fn random_hostile_names_stay_safe_and_injective() {
        let alphabet: Vec<char> = "aZ09._-~ /\\%\u{0}\n\r\t\u{7f}\u{2028}\u{2029}éü履😀:*?\"<>|"
            .chars()
            .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seen = std::collections::HashMap::new();
        for _ in 0..5000 {
            let len = (next() % 12) as usize;
            let name: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let out = safe_key_segment(&name, 1024);
            assert_safe(&name, &out, 1024);
            if let Some(other) = seen.insert(out.clone(), name.clone()) {
                assert_eq!(other, name, "two names map to {out:?}");
            }
            let capped = safe_key_segment(&name, 7);
            assert_safe(&name, &capped, 7);
        }
    }

    #[test]
    fn long_names_are_capped_and_keep_their_extension() {
        let long = format!("{}.pdf", "x".repeat(300));
        let out = safe_key_segment(&long, 100);
        assert_eq!(out.len(), 100);
        assert!(out.ends_with(".pdf"), "{out}");
        assert_safe(&long, &out, 100);

        let wide = format!("{}.docx", "履".repeat(200));
        for max in [255, 100, 50, 20, 14] {
            let out = safe_key_segment(&wide, max);
            assert_safe(&wide, &out, max);
            assert!(out.ends_with(".docx"), "{max}: {out}");
            assert!(
                out.len() > max.saturating_sub(9),
                "{max}: {out} is needlessly short"
            );
        }

        // A cut that leaves a dot before the extension still has no `..`.
        let dotted = format!("{}.{}.pdf", "a".repeat(20), "b".repeat(20));
        for max in 8..60 {
            let out = safe_key_segment(&dotted, max);
            assert_safe(&dotted, &out, max);
        }

        // A long extension is not kept, the name is just cut.
        let long_ext = format!("name.{}", "e".repeat(100));
        let out = safe_key_segment(&long_ext, 30);
        assert_eq!(out, format!("name.{}", "e".repeat(25)));

        // Escapes are never split.
        let out = safe_key_segment(&"é".repeat(50), 10);
        assert_eq!(out, "%C3%A9");
    }

    #[test]
    fn tiny_caps_never_give_an_empty_segment() {
        assert_eq!(safe_key_segment("履", 0), "_");
        assert_eq!(safe_key_segment("履", 5), "_");
        assert_eq!(safe_key_segment("ab", 0), "a");
        assert_eq!(safe_key_segment(".x", 2), "_");
    }

    #[test]
    fn metadata_value_round_trips_unicode_and_controls() {
        for name in [
            "résumé 履歴書.pdf",
            "a\u{0}b\r\n",
            "\u{2028}x",
            "plain-name_1.txt~",
        ] {
            let v = metadata_value(name);
            assert!(v.bytes().all(|b| b.is_ascii_graphic()), "{v}");
            assert_eq!(decode_metadata_value(&v).as_deref(), Some(name));
        }
        assert_eq!(metadata_value("a b"), "a%20b");
    }

    #[test]
    fn metadata_value_is_capped_at_a_char_boundary() {
        let name = "履".repeat(400);
        let v = metadata_value(&name);
        assert!(v.len() <= MAX_METADATA_VALUE_BYTES);
        assert_eq!(v.len(), 9 * 113);
        let back = decode_metadata_value(&v).unwrap_or_default();
        assert_eq!(back, "履".repeat(113));
        assert_eq!(metadata_value(&"a".repeat(2000)).len(), 1024);
    }

    #[test]
    fn malformed_escapes_do_not_decode() {
        assert_eq!(decode_metadata_value("%"), None);
        assert_eq!(decode_metadata_value("%G0"), None);
        assert_eq!(decode_metadata_value("%C3"), None);
        assert_eq!(decode_metadata_value("a%20b").as_deref(), Some("a b"));
    }

    #[test]
    fn metadata_is_checked_without_echoing_values() {
        let err = metadata_map(&[("original-name", "résumé")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("printable ASCII") && !err.contains("résumé"),
            "{err}"
        );
        assert!(metadata_map(&[("bad name", "x")]).is_err());
        assert!(metadata_map(&[("a", "x"), ("A", "y")]).is_err());
        assert!(metadata_map(&[("a", &"x".repeat(2048))]).is_err());
        assert!(metadata_map(&[("original-name", "r%C3%A9sum%C3%A9")]).is_ok());
    }

    #[test]
    fn prefixes_for_erase_must_be_scoped() {
        assert!(check_prefix("").is_err());
        assert!(check_prefix("/").is_err());
        assert!(check_prefix("acme").is_err());
        assert!(check_prefix("acme/").is_ok());
    }

    #[test]
    fn part_size_is_clamped_to_s3_limits() {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let store = BlobStore::new(aws_sdk_s3::Client::from_conf(conf), "b", "k");
        assert_eq!(store.part_size, DEFAULT_PART_SIZE);
        assert_eq!(store.clone().with_part_size(1).part_size, MIN_PART_SIZE);
        assert_eq!(
            store.clone().with_part_size(6 * 1024 * 1024).part_size,
            6 * 1024 * 1024
        );
        assert_eq!(store.bucket(), "b");
    }

    #[test]
    fn part_buffer_never_grows_past_the_part_size() {
        let limit = 5 * 1024 * 1024 + 3;
        let mut buf = BytesMut::new();
        while buf.len() < limit {
            let n = (limit - buf.len()).min(777_777);
            reserve_bounded(&mut buf, n, limit);
            let before = buf.capacity();
            buf.extend_from_slice(&vec![7u8; n]);
            assert_eq!(buf.capacity(), before, "no hidden reallocation");
            assert!(buf.capacity() <= limit);
        }
        assert_eq!(buf.len(), limit);
    }

    #[test]
    fn put_stream_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let store = BlobStore::new(aws_sdk_s3::Client::from_conf(conf), "b", "k");
        let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::new())]);
        let fut = store.put_stream("k", stream, "application/octet-stream", &[], None);
        assert_send(&fut);
        // Even when the stream's error type is not Send.
        let stream =
            futures::stream::repeat_with(|| Err::<Bytes, _>(NotSend(std::rc::Rc::new(())))).take(1);
        let fut = store.put_stream("k", stream, "application/octet-stream", &[], None);
        assert_send(&fut);
    }

    struct NotSend(std::rc::Rc<()>);
    impl fmt::Display for NotSend {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "not send ({})", std::rc::Rc::strong_count(&self.0))
        }
    }
}
