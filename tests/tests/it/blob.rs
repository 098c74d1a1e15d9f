//! `shared::blob` against a real (moto) S3 over sockets: single and multipart writes, SSE-KMS on
//! every write, aborts on every failure path, erase over every version, metadata that keeps any
//! file name.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use bytes::Bytes;
use futures::{Stream, StreamExt, stream};
use integration_tests::emulator::TestAws;
use sha2::{Digest, Sha256};
use shared::blob::{BlobError, BlobStore, Stored, decode_metadata_value, metadata_value};

use crate::support::LogCapture;

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;
const OCTETS: &str = "application/octet-stream";

fn store(aws: &TestAws) -> BlobStore {
    BlobStore::new(aws.clients.s3.clone(), &aws.names.bucket, &aws.kms_key_id).with_part_size(PART)
}

/// Deterministic pseudo-random bytes (xorshift64*), so a mix-up of parts cannot go unnoticed.
fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Chunk sizes that line up with nothing: tiny, odd, bigger than a part.
const ODD_SIZES: &[usize] = &[
    1,
    4093,
    65_537,
    1_048_583,
    7,
    777_777,
    2_345_678,
    6 * MIB + 11,
];

/// `data` as a stream of zero-copy slices of odd sizes (empty chunks thrown in too).
fn odd_chunks(data: Bytes) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let mut chunks = Vec::new();
    let mut at = 0;
    for (i, size) in ODD_SIZES.iter().cycle().enumerate() {
        if at >= data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        chunks.push(Ok(data.slice(at..end)));
        if i % 3 == 0 {
            chunks.push(Ok(Bytes::new()));
        }
        at = end;
    }
    stream::iter(chunks)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn head(aws: &TestAws, key: &str) -> HeadObjectOutput {
    aws.clients
        .s3
        .head_object()
        .bucket(&aws.names.bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head: {e:?}"))
}

fn assert_encrypted_with_our_key(aws: &TestAws, head: &HeadObjectOutput) {
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert!(
        head.ssekms_key_id()
            .is_some_and(|k| k.contains(&aws.kms_key_id)),
        "{:?}",
        head.ssekms_key_id()
    );
}

/// Multipart uploads in progress under `prefix`.
async fn uploads_under(aws: &TestAws, prefix: &str) -> Vec<String> {
    let out = aws
        .clients
        .s3
        .list_multipart_uploads()
        .bucket(&aws.names.bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list uploads: {e:?}"));
    out.uploads()
        .iter()
        .filter_map(|u| u.key().map(str::to_owned))
        .collect()
}

/// Every version and delete marker under `prefix`, as (key, is_marker).
async fn versions_under(aws: &TestAws, prefix: &str) -> Vec<(String, bool)> {
    let mut all = Vec::new();
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let out = aws
            .clients
            .s3
            .list_object_versions()
            .bucket(&aws.names.bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list versions: {e:?}"));
        for v in out.versions() {
            all.push((v.key().unwrap_or_default().to_owned(), false));
        }
        for m in out.delete_markers() {
            all.push((m.key().unwrap_or_default().to_owned(), true));
        }
        if out.is_truncated() != Some(true) {
            return all;
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        version_marker = out.next_version_id_marker().map(str::to_owned);
    }
}

/// `len` pseudo-random bytes, then the stream fails with `message`.
fn failing_after(
    len: usize,
    message: &'static str,
) -> impl Stream<Item = Result<Bytes, String>> + Send {
    odd_chunks(pseudo_random(len, 7))
        .map(|c| c.map_err(|never| match never {}))
        .chain(stream::once(async move { Err(message.to_owned()) }))
}

#[tokio::test(flavor = "multi_thread")]
async fn small_stream_becomes_a_single_encrypted_object() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let data = pseudo_random(300_000, 1);
    let key = "acme/jira/c1/k1/attachments/small.bin";

    let stored = blobs
        .put_stream(key, odd_chunks(data.clone()), "image/png", &[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        stored,
        Stored {
            key: key.to_owned(),
            bytes: data.len() as u64,
            sha256_hex: sha256_hex(&data),
        }
    );
    let head = head(&aws, key).await;
    assert_encrypted_with_our_key(&aws, &head);
    assert_eq!(head.content_type(), Some("image/png"));
    let etag = head.e_tag().unwrap_or_default();
    assert!(
        !etag.contains('-'),
        "a multipart ETag ({etag}) means it was not a single PutObject"
    );
    assert_eq!(blobs.get_bytes(key).await.ok().flatten(), Some(data));
    assert!(uploads_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn large_stream_uploads_in_parts_and_round_trips_byte_identical() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let data = pseudo_random(23 * MIB, 2);
    let key = "acme/jira/c1/k1/attachments/large.bin";

    let started = Instant::now();
    let stored = blobs
        .put_stream(
            key,
            odd_chunks(data.clone()),
            OCTETS,
            &[],
            Some(data.len() as u64),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uploaded = started.elapsed();
    let back = blobs
        .get_bytes(key)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("object missing"));
    eprintln!(
        "23 MiB in 5 MiB parts: upload {uploaded:?}, round trip {:?}",
        started.elapsed()
    );

    assert_eq!(stored.bytes, data.len() as u64);
    assert_eq!(stored.sha256_hex, sha256_hex(&data));
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the object differs from what was streamed");
    let head = head(&aws, key).await;
    assert_encrypted_with_our_key(&aws, &head);
    assert!(
        head.e_tag()
            .is_some_and(|t| t.trim_matches('"').ends_with("-5")),
        "23 MiB in 5 MiB parts is 5 parts: {:?}",
        head.e_tag()
    );
    assert!(uploads_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn object_of_exactly_one_part_is_a_single_put() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let data = pseudo_random(PART, 3);
    let key = "acme/jira/c1/k1/attachments/one-part.bin";

    let stored = blobs
        .put_stream(key, odd_chunks(data.clone()), OCTETS, &[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(stored.sha256_hex, sha256_hex(&data));
    let head = head(&aws, key).await;
    assert!(!head.e_tag().unwrap_or_default().contains('-'));
    assert_eq!(head.content_length(), Some(PART as i64));
}

/// How many parts S3 holds for an upload in progress. (Plain HTTP: moto answers ListParts with a
/// root element the SDK refuses, `ListPartsResponse`.)
async fn parts_in_s3(endpoint: &url::Url, bucket: &str, key: &str, upload_id: &str) -> usize {
    let mut url = endpoint.clone();
    url.set_path(&format!("{bucket}/{key}"));
    url.query_pairs_mut().append_pair("uploadId", upload_id);
    let body = reqwest::get(url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("list parts: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("list parts: {e}"));
    assert!(body.contains("<ListParts"), "{body}");
    body.matches("<Part>").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_is_read_at_most_about_two_parts_ahead_of_s3() {
    // Memory bound, observed from outside: whenever the writer asks for more input, S3 must
    // already hold all but the last two parts of what it has read.
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let key = "acme/jira/c1/k1/attachments/bounded.bin";
    let total = 32 * MIB;
    let data = pseudo_random(total, 4);
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();

    let s3 = aws.clients.s3.clone();
    let bucket = aws.names.bucket.clone();
    let endpoint = aws.endpoint.clone();
    let log = seen.clone();
    let chunk = 1_000_003;
    let input = stream::unfold(0usize, move |offset| {
        let (s3, bucket, log, data) = (s3.clone(), bucket.clone(), log.clone(), data.clone());
        let endpoint = endpoint.clone();
        async move {
            if offset >= data.len() {
                return None;
            }
            if offset >= 3 * PART {
                let uploads = s3
                    .list_multipart_uploads()
                    .bucket(&bucket)
                    .prefix(key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"));
                let id = uploads
                    .uploads()
                    .first()
                    .and_then(|u| u.upload_id())
                    .unwrap_or_else(|| panic!("no multipart upload after {offset} bytes"))
                    .to_owned();
                let parts = parts_in_s3(&endpoint, &bucket, key, &id).await;
                if let Ok(mut log) = log.lock() {
                    log.push((offset, parts));
                }
            }
            let end = (offset + chunk).min(data.len());
            Some((Ok::<_, Infallible>(data.slice(offset..end)), end))
        }
    });

    blobs
        .put_stream(key, input, OCTETS, &[], Some(total as u64))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(seen.len() > 10, "{seen:?}");
    for (offset, parts) in seen {
        assert!(
            parts + 2 >= offset / PART,
            "after reading {offset} bytes only {parts} parts of {PART} were in S3"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_stream_aborts_the_multipart_upload() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let key = "acme/jira/c1/k1/attachments/broken.bin";

    let err = blobs
        .put_stream(
            key,
            failing_after(12 * MIB, "disk on fire"),
            OCTETS,
            &[],
            None,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("a failing stream must fail the upload"));

    assert!(
        matches!(&err, BlobError::Source(m) if m == "disk on fire"),
        "{err:?}"
    );
    assert!(err.to_string().contains("input stream"), "{err}");
    assert!(uploads_under(&aws, "acme/").await.is_empty());
    assert!(versions_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_small_stream_stores_nothing() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);

    let err = blobs
        .put_stream("acme/x.bin", failing_after(1000, "gone"), OCTETS, &[], None)
        .await
        .err();

    assert!(matches!(err, Some(BlobError::Source(_))), "{err:?}");
    assert!(versions_under(&aws, "acme/").await.is_empty());
    assert!(uploads_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn length_mismatch_is_an_error_and_leaves_nothing() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let data = pseudo_random(13 * MIB, 5);

    // Longer than announced: stopped as soon as it runs over, after parts went up.
    let long = blobs
        .put_stream(
            "acme/long.bin",
            odd_chunks(data.clone()),
            OCTETS,
            &[],
            Some(11 * MIB as u64),
        )
        .await
        .err();
    assert!(
        matches!(long, Some(BlobError::LengthMismatch { expected, got }) if expected == 11 * MIB as u64 && got > expected),
        "{long:?}"
    );
    // Shorter than announced, multipart and single.
    let short = blobs
        .put_stream(
            "acme/short.bin",
            odd_chunks(data.clone()),
            OCTETS,
            &[],
            Some(14 * MIB as u64),
        )
        .await
        .err();
    assert!(
        matches!(short, Some(BlobError::LengthMismatch { expected, got }) if expected == 14 * MIB as u64 && got == 13 * MIB as u64),
        "{short:?}"
    );
    let small = blobs
        .put_stream(
            "acme/small.bin",
            odd_chunks(data.slice(..100)),
            OCTETS,
            &[],
            Some(101),
        )
        .await
        .err();
    assert!(
        matches!(
            small,
            Some(BlobError::LengthMismatch {
                expected: 101,
                got: 100
            })
        ),
        "{small:?}"
    );

    assert!(uploads_under(&aws, "acme/").await.is_empty());
    assert!(versions_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_byte_stream_stores_an_empty_object() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let key = "acme/jira/c1/k1/attachments/empty.txt";
    let chunks = stream::iter(vec![Ok::<_, Infallible>(Bytes::new()), Ok(Bytes::new())]);

    let stored = blobs
        .put_stream(key, chunks, "text/plain", &[], Some(0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(stored.bytes, 0);
    assert_eq!(stored.sha256_hex, sha256_hex(b""));
    let head = head(&aws, key).await;
    assert_eq!(head.content_length(), Some(0));
    assert_encrypted_with_our_key(&aws, &head);
    assert_eq!(
        blobs.get_bytes(key).await.ok().flatten(),
        Some(Bytes::new())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_failure_midway_names_the_step_and_leaves_no_upload() {
    // Someone aborts the upload under our feet (as `abort_uploads_under` of a concurrent
    // clean-up would): the next part upload fails, and the error says which step it was.
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let key = "acme/jira/c1/k1/attachments/sabotaged.bin";
    let data = pseudo_random(24 * MIB, 6);
    let saboteur = store(&aws);
    let input = stream::unfold(0usize, move |offset| {
        let (data, saboteur) = (data.clone(), saboteur.clone());
        async move {
            if offset >= data.len() {
                return None;
            }
            if offset == 12 * MIB {
                let aborted = saboteur.abort_uploads_under("acme/").await;
                assert_eq!(aborted.ok(), Some(1));
            }
            let end = (offset + MIB).min(data.len());
            Some((Ok::<_, Infallible>(data.slice(offset..end)), end))
        }
    });

    let err = blobs
        .put_stream(key, input, OCTETS, &[], None)
        .await
        .err()
        .unwrap_or_else(|| panic!("the upload was aborted midway, it cannot succeed"));

    let BlobError::Aws(aws_err) = &err else {
        panic!("{err:?}");
    };
    assert!(
        ["UploadPart", "CompleteMultipartUpload"].contains(&aws_err.operation),
        "{err}"
    );
    assert!(err.to_string().starts_with(aws_err.operation), "{err}");
    assert!(uploads_under(&aws, "acme/").await.is_empty());
    assert!(versions_under(&aws, "acme/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_an_upload_midway_aborts_it() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let data = pseudo_random(11 * MIB, 8);
    // 11 MiB, then the source hangs once the multipart upload exists; the caller gives up (a
    // Lambda deadline, say) and drops the future.
    let s3 = aws.clients.s3.clone();
    let bucket = aws.names.bucket.clone();
    let (started, upload_exists) = tokio::sync::oneshot::channel::<()>();
    let hang = stream::once(async move {
        loop {
            let out = s3
                .list_multipart_uploads()
                .bucket(&bucket)
                .prefix("acme/")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            if !out.uploads().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = started.send(());
        futures::future::pending::<Result<Bytes, Infallible>>().await
    });
    let input = odd_chunks(data).chain(hang);

    tokio::select! {
        outcome = blobs.put_stream("acme/hung.bin", input, OCTETS, &[], None) => {
            panic!("the source never ends, yet: {outcome:?}");
        }
        signal = upload_exists => assert!(signal.is_ok()),
    }
    // The upload existed when the future was dropped (the source saw it); dropping it schedules
    // the abort at once, so it may already be gone here: only its eventual absence is asserted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !uploads_under(&aws, "acme/").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the dropped upload was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_uploads_under_removes_orphans() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    for key in [
        "acme/jira/a.bin",
        "acme/confluence/b.bin",
        "other/jira/c.bin",
    ] {
        aws.clients
            .s3
            .create_multipart_upload()
            .bucket(&aws.names.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    let aborted = blobs
        .abort_uploads_under("acme/")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(aborted, 2);
    assert!(uploads_under(&aws, "acme/").await.is_empty());
    assert_eq!(
        uploads_under(&aws, "other/").await,
        vec!["other/jira/c.bin"]
    );
    assert_eq!(blobs.abort_uploads_under("acme/").await.ok(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_prefix_removes_every_version_and_leaves_other_prefixes() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let put = |key: &'static str, body: &'static str| {
        let blobs = blobs.clone();
        async move {
            blobs
                .put_bytes(key, Bytes::from_static(body.as_bytes()), "text/plain", &[])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    put("A/jira/c1/k1/items/1.json", "v1").await;
    put("A/jira/c1/k1/items/1.json", "v2").await;
    aws.clients
        .s3
        .delete_object()
        .bucket(&aws.names.bucket)
        .key("A/jira/c1/k1/items/1.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    put("A/confluence/c2/k2/items/2.json", "x").await;
    put("B/jira/c1/k1/items/1.json", "b").await;
    put("AB/jira/c1/k1/items/1.json", "ab").await;
    let before_b = versions_under(&aws, "B/").await;
    assert_eq!(versions_under(&aws, "A/").await.len(), 4);

    let deleted = blobs
        .delete_prefix("A/")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(deleted, 4, "two versions, one delete marker, one object");
    assert!(versions_under(&aws, "A/").await.is_empty());
    assert_eq!(versions_under(&aws, "B/").await, before_b);
    assert_eq!(versions_under(&aws, "AB/").await.len(), 1);
    assert!(
        aws.list_object_versions()
            .await
            .iter()
            .all(|k| !k.starts_with("A/"))
    );
    assert_eq!(blobs.delete_prefix("A/").await.ok(), Some(0), "idempotent");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_prefix_refuses_an_unscoped_prefix() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    blobs
        .put_bytes(
            "A/x.json",
            Bytes::from_static(b"{}"),
            "application/json",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    for prefix in ["", "/", "A"] {
        let err = blobs.delete_prefix(prefix).await.err();
        assert!(matches!(err, Some(BlobError::InvalidPrefix(_))), "{err:?}");
    }
    assert_eq!(versions_under(&aws, "A").await.len(), 1);
}

/// `n` small objects under `prefix`, a few at a time.
async fn put_many(blobs: &BlobStore, prefix: &str, n: usize) {
    stream::iter(0..n)
        .map(|i| {
            let key = format!("{prefix}items/{i:05}.json");
            async move {
                blobs
                    .put_bytes(
                        &key,
                        Bytes::from(format!("{{\"i\":{i}}}")),
                        "application/json",
                        &[],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_prefix_pages_through_more_than_a_thousand_versions() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let started = Instant::now();
    put_many(&blobs, "A/jira/c1/k1/", 1_030).await;
    put_many(&blobs, "B/jira/c1/k1/", 3).await;
    let written = started.elapsed();

    let deleted = blobs
        .delete_prefix("A/")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "1,030 puts {written:?}, delete_prefix {:?}",
        started.elapsed() - written
    );

    assert_eq!(deleted, 1_030);
    assert!(versions_under(&aws, "A/").await.is_empty());
    assert_eq!(versions_under(&aws, "B/").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_keys_pages_through_every_current_key() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    put_many(&blobs, "A/jira/c1/k1/", 1_010).await;
    put_many(&blobs, "B/jira/c1/k1/", 2).await;

    let keys = blobs
        .list_keys("A/")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(keys.len(), 1_010);
    assert!(keys.iter().all(|k| k.starts_with("A/jira/c1/k1/items/")));
    assert_eq!(
        keys.iter().collect::<std::collections::BTreeSet<_>>().len(),
        1_010
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_bytes_of_a_missing_key_is_none() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    assert_eq!(blobs.get_bytes("acme/nothing.json").await.ok(), Some(None));
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_keeps_the_original_unicode_name() {
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let name = "résumé 履歴書.pdf";
    let meta = metadata_value(name);
    let small = "acme/jira/c1/k1/attachments/10001/small";
    let large = "acme/jira/c1/k1/attachments/10001/large";

    blobs
        .put_bytes(
            small,
            Bytes::from_static(b"%PDF-1.7"),
            "application/pdf",
            &[("original-name", &meta)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    blobs
        .put_stream(
            large,
            odd_chunks(pseudo_random(11 * MIB, 9)),
            "application/pdf",
            &[("original-name", &meta)],
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    for key in [small, large] {
        let head = head(&aws, key).await;
        let stored = head
            .metadata()
            .and_then(|m| m.get("original-name"))
            .unwrap_or_else(|| panic!("no original-name on {key}: {:?}", head.metadata()));
        assert_eq!(decode_metadata_value(stored).as_deref(), Some(name));
        assert_eq!(head.content_type(), Some("application/pdf"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_ask_for_sse_kms_even_without_a_bucket_default() {
    // Take the bucket's default encryption away: what remains is what we asked for.
    let aws = TestAws::new().await;
    aws.clients
        .s3
        .delete_bucket_encryption()
        .bucket(&aws.names.bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let blobs = store(&aws);

    blobs
        .put_bytes(
            "acme/a.json",
            Bytes::from_static(b"{}"),
            "application/json",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    blobs
        .put_stream(
            "acme/b.bin",
            odd_chunks(pseudo_random(6 * MIB, 10)),
            OCTETS,
            &[],
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    for key in ["acme/a.json", "acme/b.bin"] {
        assert_encrypted_with_our_key(&aws, &head(&aws, key).await);
    }
    // moto keeps the bucket-key flag of single puts only; the request headers of both kinds
    // are checked in `every_write_request_asks_for_sse_kms_with_our_key_and_a_bucket_key`.
    assert_eq!(
        head(&aws, "acme/a.json").await.bucket_key_enabled(),
        Some(true)
    );
}

/// A request as sent: method, URI, headers (names lower-case).
type SeenRequest = (String, String, Vec<(String, String)>);

/// Every request a client sends.
#[derive(Debug, Clone, Default)]
struct SeenRequests(Arc<Mutex<Vec<SeenRequest>>>);

impl Intercept for SeenRequests {
    fn name(&self) -> &'static str {
        "SeenRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        if let Ok(mut seen) = self.0.lock() {
            seen.push((
                request.method().to_owned(),
                request.uri().to_owned(),
                headers,
            ));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_request_asks_for_sse_kms_with_our_key_and_a_bucket_key() {
    let aws = TestAws::new().await;
    let seen = SeenRequests::default();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws.clients
            .s3
            .config()
            .to_builder()
            .interceptor(seen.clone())
            .build(),
    );
    let blobs = BlobStore::new(s3, &aws.names.bucket, &aws.kms_key_id).with_part_size(PART);

    blobs
        .put_bytes(
            "acme/a.json",
            Bytes::from_static(b"{}"),
            "application/json",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (key, len) in [("acme/b.bin", 1000), ("acme/c.bin", 12 * MIB)] {
        blobs
            .put_stream(key, odd_chunks(pseudo_random(len, 12)), OCTETS, &[], None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    let seen = seen.0.lock().map(|s| s.clone()).unwrap_or_default();
    let writes: Vec<_> = seen
        .iter()
        .filter(|(method, uri, _)| {
            let put_object = method == "PUT" && !uri.contains("partNumber=");
            let create_upload = method == "POST" && uri.contains("?uploads");
            put_object || create_upload
        })
        .collect();
    assert_eq!(writes.len(), 3, "two PutObject, one CreateMultipartUpload");
    for (method, uri, headers) in writes {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("x-amz-server-side-encryption"),
            Some("aws:kms"),
            "{method} {uri}"
        );
        assert_eq!(
            header("x-amz-server-side-encryption-aws-kms-key-id"),
            Some(aws.kms_key_id.as_str()),
            "{method} {uri}"
        );
        assert_eq!(
            header("x-amz-server-side-encryption-bucket-key-enabled"),
            Some("true"),
            "{method} {uri}"
        );
    }
    let parts = seen
        .iter()
        .filter(|(m, uri, _)| m == "PUT" && uri.contains("partNumber="))
        .count();
    assert_eq!(parts, 3, "12 MiB in 5 MiB parts");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_errors_carry_no_keys_or_file_names() {
    let logs = LogCapture::global();
    let aws = TestAws::new().await;
    let blobs = store(&aws);
    let secret_name = "zq-secret-filename-7c1e";
    let key = format!("acme/jira/c1/k1/attachments/{secret_name}.bin");

    blobs
        .put_stream(
            &key,
            odd_chunks(pseudo_random(11 * MIB, 11)),
            OCTETS,
            &[("original-name", &metadata_value(secret_name))],
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = blobs
        .put_stream(&key, failing_after(6 * MIB, "boom"), OCTETS, &[], None)
        .await
        .err()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();
    assert_eq!(blobs.delete_prefix("acme/").await.ok(), Some(1));
    let wrong = BlobStore::new(aws.clients.s3.clone(), "no-such-bucket-zq", &aws.kms_key_id);
    let missing = wrong
        .put_bytes(&key, Bytes::from_static(b"x"), OCTETS, &[])
        .await
        .err()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();

    assert!(!err.is_empty() && !missing.is_empty());
    assert!(missing.contains("PutObject"), "{missing}");
    for text in [&err, &missing] {
        assert!(!text.contains(secret_name), "{text}");
    }
    logs.assert_free_of(&[secret_name]);
}
