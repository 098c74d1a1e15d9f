//! The harness itself: resources come up with the shapes the system relies on.

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use integration_tests::emulator::TestAws;
use shared::store::schema;

#[tokio::test(flavor = "multi_thread")]
async fn table_has_ttl_and_the_refresh_due_and_jobs_due_indexes() {
    let aws = TestAws::new().await;
    let table = aws
        .clients
        .dynamodb
        .describe_table()
        .table_name(&aws.names.table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let t = table
        .table()
        .unwrap_or_else(|| panic!("no table description"));
    let gsis: Vec<&str> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    assert_eq!(gsis, vec![schema::REFRESH_DUE_INDEX, schema::JOB_DUE_INDEX]);

    let ttl = aws
        .clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&aws.names.table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let ttl = ttl
        .time_to_live_description()
        .unwrap_or_else(|| panic!("no TTL description"));
    assert_eq!(ttl.attribute_name(), Some(schema::TTL));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_encrypts_with_the_kms_key_by_default() {
    let aws = TestAws::new().await;
    aws.clients
        .s3
        .put_object()
        .bucket(&aws.names.bucket)
        .key("acme/jira/x.json")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let head = aws
        .clients
        .s3
        .head_object()
        .bucket(&aws.names.bucket)
        .key("acme/jira/x.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
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

#[tokio::test(flavor = "multi_thread")]
async fn tests_get_isolated_resources() {
    let (a, b) = tokio::join!(TestAws::new(), TestAws::new());
    assert_ne!(a.names.table, b.names.table);
    a.clients
        .dynamodb
        .put_item()
        .table_name(&a.names.table)
        .item(schema::PK, AttributeValue::S("x".into()))
        .item(schema::SK, AttributeValue::S("y".into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(a.scan_table().await.len(), 1);
    assert!(b.scan_table().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_refuses_a_mismatched_encryption_context() {
    // The vault's tamper-evidence rests on this emulator behaviour; prove it holds.
    let aws = TestAws::new().await;
    let dk = aws
        .clients
        .kms
        .generate_data_key()
        .key_id(&aws.kms_key_id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("connection", "c1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let blob = dk
        .ciphertext_blob()
        .cloned()
        .unwrap_or_else(|| panic!("no blob"));
    let ok = aws
        .clients
        .kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("connection", "c1")
        .send()
        .await;
    assert!(ok.is_ok());
    let wrong = aws
        .clients
        .kms
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("connection", "c2")
        .send()
        .await;
    assert!(wrong.is_err(), "decrypt with another context must fail");
}
