//! `bench-s3`: the S3 server `make bench` stores exports in, so that storage is not what the
//! benchmark measures (moto serves one request at a time in Python).
//!
//! It is the s3s-fs crate's file-system S3 (objects are files under ROOT) behind s3s's HTTP
//! service with SigV4 checked, as s3s-fs's own binary serves it, plus the two listings the
//! export calls and s3s-fs does not implement:
//!
//! - `ListObjectVersions`: s3s-fs keeps one version per key, like an unversioned bucket, so
//!   every current object is listed as its only version with version id `null` (what S3 answers
//!   for objects written while versioning was off). `DeleteObjects` with that version id deletes
//!   the object.
//! - `ListMultipartUploads`: s3s-fs keeps no index of open uploads, so this process records the
//!   uploads it created and forgets them when they are completed or aborted.
//!
//! s3s-fs names each object's metadata file after base64(bucket + key) in one directory, which
//! exceeds Linux's 255-byte file names for keys of about 150 bytes (S3 allows 1,024; the
//! export's attachment keys are longer): it answers InternalError. So every key is stored under
//! a short name (its SipHash and length, `stored_key`), and this process keeps the index of real
//! keys (size, ETag, time) that ListObjectsV2 and ListObjectVersions answer from. Everything else
//! the export sends (PutObject, the multipart calls, DeleteObjects, GetObject) goes to s3s-fs
//! with the key renamed. The SSE-KMS headers are accepted and ignored: the
//! objects are plain files, so encryption is not exercised here (the integration tests, on moto,
//! cover it). Bucket settings (encryption, versioning, public access block) are not implemented.
//!
//! ```text
//! bench-s3 --root DIR [--host 127.0.0.1] [--port 0] [--access-key K --secret-key S]
//! ```
//! prints `{"endpoint":"http://HOST:PORT"}` on stdout once listening, serves until stdin closes
//! (the bench holds it open) or the process is killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Open multipart uploads: (bucket, key, upload id) → when created.
type Uploads = BTreeMap<(String, String, String), Timestamp>;

/// Stored objects: (bucket, real key) → size, ETag, last modified.
type Index = BTreeMap<(String, String), (i64, Option<ETag>, Timestamp)>;

struct BenchS3 {
    fs: FileSystem,
    uploads: Mutex<Uploads>,
    index: Mutex<Index>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The short name s3s-fs stores `key` under (see the module docs): two 64-bit hashes (std's
/// `DefaultHasher`, fixed keys, so stable within a run) of the key and of its reverse, and the
/// length; distinct for the few thousand keys of a bench run.
fn stored_key(key: &str) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut a = DefaultHasher::new();
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    key.chars().rev().collect::<String>().hash(&mut b);
    format!("o/{:016x}{:016x}-{}", a.finish(), b.finish(), key.len())
}

impl BenchS3 {
    fn uploads(&self) -> MutexGuard<'_, Uploads> {
        lock(&self.uploads)
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    /// Record `key` as stored now, with its size and ETag read back from s3s-fs.
    async fn record(&self, bucket: &str, key: &str, credentials: Option<s3s::auth::Credentials>) {
        let mut head = S3Request {
            input: HeadObjectInput {
                bucket: bucket.to_owned(),
                key: stored_key(key),
                ..Default::default()
            },
            method: http::Method::HEAD,
            uri: http::Uri::from_static("/"),
            headers: http::HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        head.credentials = credentials;
        if let Ok(out) = self.fs.head_object(head).await {
            let o = out.output;
            self.index().insert(
                (bucket.to_owned(), key.to_owned()),
                (
                    o.content_length.unwrap_or(0),
                    o.e_tag,
                    o.last_modified
                        .unwrap_or_else(|| Timestamp::from(std::time::SystemTime::now())),
                ),
            );
        }
    }

    /// One page of the index under `prefix`, after `after`: (key, size, ETag, time) and whether
    /// more follow.
    fn page(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        max: i32,
    ) -> (Vec<(String, i64, Option<ETag>, Timestamp)>, bool) {
        let max = usize::try_from(max.clamp(1, 1000)).unwrap_or(1000);
        let index = self.index();
        let mut it = index
            .range((bucket.to_owned(), after.to_owned())..)
            .take_while(|((b, _), _)| b == bucket)
            .filter(|((_, k), _)| k.as_str() > after && k.starts_with(prefix));
        let page = it
            .by_ref()
            .take(max)
            .map(|((_, k), (size, etag, t))| (k.clone(), *size, etag.clone(), t.clone()))
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
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let credentials = req.credentials.clone();
        req.input.key = stored_key(&key);
        let out = self.fs.put_object(req).await?;
        self.record(&bucket, &key, credentials).await;
        Ok(out)
    }

    async fn get_object(
        &self,
        mut req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        req.input.key = stored_key(&req.input.key);
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        mut req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        req.input.key = stored_key(&req.input.key);
        self.fs.head_object(req).await
    }

    async fn delete_object(
        &self,
        mut req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let id = (req.input.bucket.clone(), req.input.key.clone());
        req.input.key = stored_key(&req.input.key);
        let out = self.fs.delete_object(req).await?;
        self.index().remove(&id);
        Ok(out)
    }

    async fn delete_objects(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let mut names = BTreeMap::new();
        for o in &mut req.input.delete.objects {
            let stored = stored_key(&o.key);
            names.insert(stored.clone(), std::mem::replace(&mut o.key, stored));
        }
        let mut out = self.fs.delete_objects(req).await?;
        let mut index = self.index();
        for d in out.output.deleted.iter_mut().flatten() {
            if let Some(real) = d.key.as_ref().and_then(|k| names.get(k)) {
                index.remove(&(bucket.clone(), real.clone()));
                d.key = Some(real.clone());
            }
        }
        Ok(out)
    }

    /// From the index: keys under `prefix` after `start-after` / the continuation token (the
    /// last key of the previous page); no delimiter (the export sends none).
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        if i.delimiter.is_some() {
            return Err(s3s::s3_error!(
                NotImplemented,
                "bench-s3 lists without a delimiter"
            ));
        }
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
            .map(|(key, size, e_tag, t)| Object {
                key: Some(key),
                size: Some(size),
                e_tag,
                last_modified: Some(t),
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

    async fn create_multipart_upload(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        req.input.key = stored_key(&key);
        let mut out = self.fs.create_multipart_upload(req).await?;
        out.output.key = Some(key.clone());
        if let Some(id) = out.output.upload_id.clone() {
            self.uploads().insert(
                (bucket, key, id),
                Timestamp::from(std::time::SystemTime::now()),
            );
        }
        Ok(out)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        req.input.key = stored_key(&req.input.key);
        self.fs.upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = upload_of(&req.input.bucket, &req.input.key, &req.input.upload_id);
        let credentials = req.credentials.clone();
        req.input.key = stored_key(&id.1);
        let mut out = self.fs.complete_multipart_upload(req).await?;
        out.output.key = Some(id.1.clone());
        self.record(&id.0, &id.1, credentials).await;
        self.uploads().remove(&id);
        Ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        mut req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = upload_of(&req.input.bucket, &req.input.key, &req.input.upload_id);
        req.input.key = stored_key(&id.1);
        let out = self.fs.abort_multipart_upload(req).await?;
        self.uploads().remove(&id);
        Ok(out)
    }

    /// The uploads this process created and has not seen completed or aborted, under `prefix`,
    /// in key order; one page of up to `max-uploads` (1,000 by default, as S3).
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
        let uploads = self.uploads();
        let mut matching = uploads.iter().filter(|((bucket, key, id), _)| {
            *bucket == input.bucket && key.starts_with(&prefix) && (key.clone(), id.clone()) > after
        });
        let page: Vec<MultipartUpload> = matching
            .by_ref()
            .take(max)
            .map(|((_, key, id), initiated)| MultipartUpload {
                key: Some(key.clone()),
                upload_id: Some(id.clone()),
                initiated: Some(initiated.clone()),
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

    /// Every current object under `prefix` as its only version (`null`), from the index,
    /// continuing after `key-marker`.
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let after = i.key_marker.clone().unwrap_or_default();
        let (page, truncated) = self.page(&i.bucket, &prefix, &after, i.max_keys.unwrap_or(1000));
        let last = page.last().map(|p| p.0.clone());
        let versions: Vec<ObjectVersion> = page
            .into_iter()
            .map(|(key, size, e_tag, t)| ObjectVersion {
                key: Some(key),
                e_tag,
                size: Some(size),
                last_modified: Some(t),
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
}

fn upload_of(bucket: &str, key: &str, id: &str) -> (String, String, String) {
    (bucket.to_owned(), key.to_owned(), id.to_owned())
}

struct Options {
    root: PathBuf,
    host: String,
    port: u16,
    keys: Option<(String, String)>,
}

fn options() -> Result<Options, String> {
    let mut root = None;
    let mut host = "127.0.0.1".to_owned();
    let mut port = 0;
    let (mut access, mut secret) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(value()?)),
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
        root: root.ok_or("--root DIR is required")?,
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
    std::fs::create_dir_all(&o.root)?;
    let fs = FileSystem::new(&o.root).map_err(|e| format!("{}: {e:?}", o.root.display()))?;
    let mut builder = S3ServiceBuilder::new(BenchS3 {
        fs,
        uploads: Mutex::new(BTreeMap::new()),
        index: Mutex::new(BTreeMap::new()),
    });
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
