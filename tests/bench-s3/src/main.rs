//! `bench-s3`: the S3 server `make bench` stores exports in, so that storage is not what the
//! benchmark measures (moto serves one request at a time in Python; in production S3's own work
//! happens on AWS's machines, not beside the export on the same two cores).
//!
//! s3s's HTTP service (request parsing, SigV4 checked, S3's XML) over an in-memory store: each
//! object is kept as the chunks it arrived in, so a 2 GiB multipart object is never copied into
//! one buffer (its parts become its chunks). The first version served s3s-fs's file-system
//! store; every file operation there is a hop through tokio's blocking pool, which cost about
//! 0.8 ms of CPU per request (`perf`: futex wake-ups and context switches), more CPU than the
//! export it served. What the export sends is implemented: PutObject, GetObject, HeadObject,
//! DeleteObject(s), ListObjectsV2 and ListObjectVersions (no delimiter; one version per key,
//! `null`, as S3 answers for objects written while versioning was off), the multipart calls
//! and ListMultipartUploads, PutObjectTagging (accepted, not kept), CreateBucket and HeadBucket.
//! The SSE-KMS headers are accepted and ignored: encryption is not exercised here (the
//! integration tests, on moto, cover it). Bucket settings are not implemented.
//!
//! ```text
//! bench-s3 [--host 127.0.0.1] [--port 0] [--access-key K --secret-key S]
//! ```
//! prints `{"endpoint":"http://HOST:PORT"}` on stdout once listening, serves until stdin closes
//! (the bench holds it open) or the process is killed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// One stored object: its bytes as the chunks they arrived in.
struct Stored {
    chunks: Vec<Bytes>,
    size: i64,
    e_tag: String,
    modified: Timestamp,
    content_type: Option<ContentType>,
    metadata: Option<Metadata>,
}

/// An open multipart upload: its parts by number (chunks and ETag), and what the object gets.
struct Upload {
    parts: BTreeMap<i32, (Vec<Bytes>, i64, String)>,
    initiated: Timestamp,
    content_type: Option<ContentType>,
    metadata: Option<Metadata>,
}

/// (bucket, key) → object.
type Objects = BTreeMap<(String, String), Arc<Stored>>;
/// (bucket, key, upload id) → upload.
type Uploads = BTreeMap<(String, String, String), Upload>;

#[derive(Default)]
struct BenchS3 {
    buckets: Mutex<BTreeSet<String>>,
    objects: Mutex<Objects>,
    uploads: Mutex<Uploads>,
    next_upload: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

/// A body read to its end, as its chunks, with its size and MD5 (hex, S3's ETag of a
/// single-part object).
async fn read_body(body: Option<StreamingBlob>) -> S3Result<(Vec<Bytes>, i64, String)> {
    let mut chunks = Vec::new();
    let mut size = 0i64;
    let mut md5 = Md5::new();
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| s3_error!(IncompleteBody, "the body broke off"))?;
            md5.update(&chunk);
            size += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            chunks.push(chunk);
        }
    }
    Ok((chunks, size, hex(&md5.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn blob(chunks: Vec<Bytes>) -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::iter(
        chunks.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

impl BenchS3 {
    fn check_bucket(&self, bucket: &str) -> S3Result<()> {
        if lock(&self.buckets).contains(bucket) {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }

    fn object(&self, bucket: &str, key: &str) -> S3Result<Arc<Stored>> {
        self.check_bucket(bucket)?;
        lock(&self.objects)
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| s3_error!(NoSuchKey))
    }

    fn store(&self, bucket: String, key: String, object: Stored) {
        lock(&self.objects).insert((bucket, key), Arc::new(object));
    }

    /// One page of the objects under `prefix`, after `after`: (key, object) and whether more
    /// follow.
    fn page(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        max: i32,
    ) -> (Vec<(String, Arc<Stored>)>, bool) {
        let max = usize::try_from(max.clamp(1, 1000)).unwrap_or(1000);
        let objects = lock(&self.objects);
        let start = if after.as_bytes() > prefix.as_bytes() {
            after
        } else {
            prefix
        };
        let mut it = objects
            .range((bucket.to_owned(), start.to_owned())..)
            .take_while(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter(|((_, k), _)| k.as_str() > after);
        let page = it
            .by_ref()
            .take(max)
            .map(|((_, k), o)| (k.clone(), o.clone()))
            .collect();
        (page, it.next().is_some())
    }
}

#[async_trait::async_trait]
impl S3 for BenchS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        lock(&self.buckets).insert(req.input.bucket);
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.check_bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let i = req.input;
        self.check_bucket(&i.bucket)?;
        let (chunks, size, e_tag) = read_body(i.body).await?;
        self.store(
            i.bucket,
            i.key,
            Stored {
                chunks,
                size,
                e_tag: e_tag.clone(),
                modified: now(),
                content_type: i.content_type,
                metadata: i.metadata,
            },
        );
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if req.input.range.is_some() {
            return Err(s3_error!(NotImplemented, "bench-s3 serves whole objects"));
        }
        let o = self.object(&req.input.bucket, &req.input.key)?;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(blob(o.chunks.clone())),
            content_length: Some(o.size),
            content_type: o.content_type.clone(),
            metadata: o.metadata.clone(),
            e_tag: Some(ETag::Strong(o.e_tag.clone())),
            last_modified: Some(o.modified.clone()),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let o = self.object(&req.input.bucket, &req.input.key)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(o.size),
            content_type: o.content_type.clone(),
            metadata: o.metadata.clone(),
            e_tag: Some(ETag::Strong(o.e_tag.clone())),
            last_modified: Some(o.modified.clone()),
            ..Default::default()
        }))
    }

    /// Accepted and not kept: the bench never reads tags back.
    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.object(&req.input.bucket, &req.input.key)?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.check_bucket(&req.input.bucket)?;
        lock(&self.objects).remove(&(req.input.bucket, req.input.key));
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let i = req.input;
        self.check_bucket(&i.bucket)?;
        let mut objects = lock(&self.objects);
        let deleted = i
            .delete
            .objects
            .into_iter()
            .map(|o| {
                objects.remove(&(i.bucket.clone(), o.key.clone()));
                DeletedObject {
                    key: Some(o.key),
                    version_id: o.version_id,
                    ..Default::default()
                }
            })
            .collect();
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..Default::default()
        }))
    }

    /// Keys under `prefix` after `start-after` / the continuation token (the last key of the
    /// previous page); no delimiter (the export sends none).
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        if i.delimiter.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "bench-s3 lists without a delimiter"
            ));
        }
        self.check_bucket(&i.bucket)?;
        let after = i
            .continuation_token
            .clone()
            .or_else(|| i.start_after.clone())
            .unwrap_or_default();
        let prefix = i.prefix.clone().unwrap_or_default();
        let (page, truncated) = self.page(&i.bucket, &prefix, &after, i.max_keys.unwrap_or(1000));
        let next = truncated
            .then(|| page.last().map(|p| p.0.clone()))
            .flatten();
        let contents: Vec<Object> = page
            .into_iter()
            .map(|(key, o)| Object {
                key: Some(key),
                size: Some(o.size),
                e_tag: Some(ETag::Strong(o.e_tag.clone())),
                last_modified: Some(o.modified.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: i.prefix,
            max_keys: i.max_keys,
            key_count: Some(i32::try_from(contents.len()).unwrap_or(i32::MAX)),
            continuation_token: i.continuation_token,
            start_after: i.start_after,
            is_truncated: Some(truncated),
            next_continuation_token: next,
            contents: Some(contents),
            ..Default::default()
        }))
    }

    /// Every current object under `prefix` as its only version (`null`), continuing after
    /// `key-marker`.
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let i = req.input;
        self.check_bucket(&i.bucket)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let after = i.key_marker.clone().unwrap_or_default();
        let (page, truncated) = self.page(&i.bucket, &prefix, &after, i.max_keys.unwrap_or(1000));
        let last = page.last().map(|p| p.0.clone());
        let versions: Vec<ObjectVersion> = page
            .into_iter()
            .map(|(key, o)| ObjectVersion {
                key: Some(key),
                e_tag: Some(ETag::Strong(o.e_tag.clone())),
                size: Some(o.size),
                last_modified: Some(o.modified.clone()),
                is_latest: Some(true),
                version_id: Some("null".to_owned()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: i.prefix,
            max_keys: i.max_keys,
            key_marker: i.key_marker,
            version_id_marker: i.version_id_marker,
            is_truncated: Some(truncated),
            next_key_marker: if truncated { last } else { None },
            next_version_id_marker: truncated.then(|| "null".to_owned()),
            versions: Some(versions),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = req.input;
        self.check_bucket(&i.bucket)?;
        let id = format!("upload-{}", self.next_upload.fetch_add(1, Ordering::Relaxed));
        lock(&self.uploads).insert(
            (i.bucket.clone(), i.key.clone(), id.clone()),
            Upload {
                parts: BTreeMap::new(),
                initiated: now(),
                content_type: i.content_type,
                metadata: i.metadata,
            },
        );
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let i = req.input;
        let id = (i.bucket, i.key, i.upload_id);
        if !lock(&self.uploads).contains_key(&id) {
            return Err(s3_error!(NoSuchUpload));
        }
        let (chunks, size, e_tag) = read_body(i.body).await?;
        let mut uploads = lock(&self.uploads);
        let upload = uploads.get_mut(&id).ok_or_else(|| s3_error!(NoSuchUpload))?;
        upload
            .parts
            .insert(i.part_number, (chunks, size, e_tag.clone()));
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        }))
    }

    /// The listed parts, in the order given, become the object's chunks (no copy). The ETag is
    /// S3's for multipart objects: MD5 of the parts' MD5s, a dash and the part count.
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let i = req.input;
        let id = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let mut upload = lock(&self.uploads)
            .remove(&id)
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        let listed = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        let (mut chunks, mut size, mut md5s) = (Vec::new(), 0i64, Md5::new());
        for part in &listed {
            let number = part.part_number.unwrap_or_default();
            let Some((part_chunks, part_size, part_tag)) = upload.parts.remove(&number) else {
                return Err(s3_error!(InvalidPart, "part {number} was not uploaded"));
            };
            let digest: Vec<u8> = (0..part_tag.len() / 2)
                .filter_map(|n| u8::from_str_radix(&part_tag[2 * n..2 * n + 2], 16).ok())
                .collect();
            md5s.update(&digest);
            size += part_size;
            chunks.extend(part_chunks);
        }
        let e_tag = format!("{}-{}", hex(&md5s.finalize()), listed.len());
        self.store(
            i.bucket.clone(),
            i.key.clone(),
            Stored {
                chunks,
                size,
                e_tag: e_tag.clone(),
                modified: now(),
                content_type: upload.content_type,
                metadata: upload.metadata,
            },
        );
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let i = req.input;
        lock(&self.uploads)
            .remove(&(i.bucket, i.key, i.upload_id))
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    /// The open uploads under `prefix`, in key order; one page of up to `max-uploads` (1,000 by
    /// default, as S3).
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
        let after = (
            input.key_marker.clone().unwrap_or_default(),
            input.upload_id_marker.clone().unwrap_or_default(),
        );
        let uploads = lock(&self.uploads);
        let mut matching = uploads.iter().filter(|((bucket, key, id), _)| {
            *bucket == input.bucket && key.starts_with(&prefix) && (key.clone(), id.clone()) > after
        });
        let page: Vec<MultipartUpload> = matching
            .by_ref()
            .take(max)
            .map(|((_, key, id), upload)| MultipartUpload {
                key: Some(key.clone()),
                upload_id: Some(id.clone()),
                initiated: Some(upload.initiated.clone()),
                ..Default::default()
            })
            .collect();
        let truncated = matching.next().is_some();
        let last = page.last().map(|u| (u.key.clone(), u.upload_id.clone()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            max_uploads: input.max_uploads,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            is_truncated: Some(truncated),
            next_key_marker: if truncated {
                last.clone().and_then(|l| l.0)
            } else {
                None
            },
            next_upload_id_marker: if truncated {
                last.and_then(|l| l.1)
            } else {
                None
            },
            uploads: Some(page),
            ..Default::default()
        }))
    }
}

struct Options {
    host: String,
    port: u16,
    keys: Option<(String, String)>,
}

fn options() -> Result<Options, String> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 0;
    let (mut access, mut secret) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => host = value()?,
            "--port" => {
                port = value()?
                    .parse()
                    .map_err(|_| "--port: not a port".to_owned())?
            }
            "--access-key" => access = Some(value()?),
            "--secret-key" => secret = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let keys = match (access, secret) {
        (Some(a), Some(s)) => Some((a, s)),
        (None, None) => None,
        _ => return Err("--access-key and --secret-key go together".into()),
    };
    Ok(Options {
        host,
        port,
        keys,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-s3: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = serve(o).await {
        eprintln!("bench-s3: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn serve(o: Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = S3ServiceBuilder::new(BenchS3::default());
    if let Some((access, secret)) = o.keys {
        builder.set_auth(SimpleAuth::from_single(access, secret));
    }
    let service = builder.build();
    let listener = TcpListener::bind((o.host.as_str(), o.port)).await?;
    let addr = listener.local_addr()?;
    println!("{{\"endpoint\":\"http://{addr}\"}}");
    let http = Arc::new(ConnBuilder::new(TokioExecutor::new()));
    // Ends when stdin closes: the bench that started this process is gone.
    let mut stdin_closed = Box::pin(async {
        let mut sink = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    eprintln!("bench-s3: accept: {e}");
                    continue;
                }
            },
            () = &mut stdin_closed => return Ok(()),
        };
        let (http, service) = (http.clone(), service.clone());
        tokio::spawn(async move {
            let _ = http.serve_connection(TokioIo::new(socket), service).await;
        });
    }
}
