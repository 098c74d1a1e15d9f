//! Issue 17: what an export asks S3 before it writes. The first invocation of a job over an
//! empty connector root writes without asking (no HeadObject for any item, document or
//! attachment text: nothing can be there); any later run asks once per item, whose object
//! records its document's hash as well as its own, and rewrites nothing unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use integration_tests::fake::SeedSpec;
use shared::blob::BlobStore;
use shared::ids::Product;

use crate::export_harness::{Export, MIB};

/// The HeadObject requests an S3 client sent, by what they asked about.
#[derive(Debug, Clone, Default)]
struct Heads {
    items: Arc<AtomicUsize>,
    document_records: Arc<AtomicUsize>,
    other: Arc<AtomicUsize>,
}

impl Heads {
    fn take(&self) -> (usize, usize, usize) {
        (
            self.items.swap(0, Ordering::SeqCst),
            self.document_records.swap(0, Ordering::SeqCst),
            self.other.swap(0, Ordering::SeqCst),
        )
    }
}

impl Intercept for Heads {
    fn name(&self) -> &'static str {
        "test-head-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        if request.method() == "HEAD" {
            let path = request.uri().split('?').next().unwrap_or_default();
            let counter = if path.contains("/items/") {
                &self.items
            } else if path.contains("/documents/") && path.ends_with(".json") {
                &self.document_records
            } else {
                &self.other
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_run_writes_without_asking_and_a_later_run_asks_once_per_item() {
    let mut x = Export::for_product(SeedSpec::small(), Product::Jira).await;
    let heads = Heads::default();
    let s3 = aws_sdk_s3::Client::from_conf(
        x.w.aws
            .clients
            .s3
            .config()
            .to_builder()
            .interceptor(heads.clone())
            .build(),
    );
    x.exporter.blobs = BlobStore::new(s3, x.w.aws.names.bucket.clone(), x.w.aws.kms_key_id.clone())
        .with_part_size(5 * MIB as usize);
    let connector = x
        .connector("jira-heads", &format!("project = {}", x.project))
        .await;

    let (_, first) = x.run(&connector).await;
    let first = x.manifest(&first).await;
    let items = first["items"].as_array().map_or(0, Vec::len);
    assert!(items > 5, "the seed's project has issues: {first}");
    assert_eq!(
        heads.take(),
        (0, 0, 0),
        "the first invocation over an empty root asks S3 nothing before writing"
    );
    let stored = x.items(&connector).await;
    assert_eq!(stored.len(), items, "every item landed");

    // The same content again: one HeadObject per item tells that neither the item nor its
    // document changed; nothing is rewritten.
    let some_item = stored
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("no item"));
    let key = format!("{}items/{some_item}.json", x.prefix(&connector));
    let written_at = x.last_modified(&key).await;
    // S3 times have a resolution of one second: a rewrite would show.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = x.requested_full(&connector).await;
    let second = x.manifest(&second).await;
    assert_eq!(second["items"], first["items"]);
    let (item_heads, record_heads, _texts) = heads.take();
    assert_eq!(item_heads, items, "one HeadObject per item");
    assert_eq!(
        record_heads, 0,
        "the item's object holds its document's hash: the record is not asked about"
    );
    assert_eq!(
        x.last_modified(&key).await,
        written_at,
        "an unchanged item is not written again"
    );
}
