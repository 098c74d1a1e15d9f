//! The document Markdown builder and the metadata schema.

mod common;

use common::Book;
use documents::{
    AttachmentMeta, Body, Comment, Container, ContainerKind, DocumentMetadata, DocumentSource,
    ItemRef, METADATA_SCHEMA_V1, Product, SCHEMA_VERSION, content_hash, document_markdown,
    normalize_timestamp,
};
use serde_json::{Value, json};

#[test]
fn document_has_title_body_then_comments_in_order_with_authors_and_dates() {
    let description = json!({"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Steps"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "It breaks."}]}
    ]});
    let first = json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5", "text": "@Old"}},
            {"type": "text", "text": " can you look?"}
        ]}
    ]});
    let doc = DocumentSource {
        title: "PROJ-1: Login fails",
        body: Body::Adf(&description),
        comments: vec![
            Comment {
                author: Some("Grace Hopper"),
                created: Some("2024-01-02T03:04:05.000+0100"),
                body: Body::Adf(&first),
            },
            Comment {
                author: Some("5b10ac8d82e05b22cc7d4ef5"),
                created: Some("not a date"),
                body: Body::Storage("<p>Fixed in <strong>1.2</strong></p>"),
            },
            Comment {
                author: None,
                created: None,
                body: Body::Text("plain\ntext"),
            },
        ],
    };
    assert_eq!(
        document_markdown(&doc, &Book),
        "# PROJ-1: Login fails\n\n\
         ## Steps\n\n\
         It breaks.\n\n\
         ## Comments\n\n\
         ### Grace Hopper · 2024-01-02T02:04:05Z\n\n\
         @Ada Lovelace can you look?\n\n\
         ### unknown user · not a date\n\n\
         Fixed in **1.2**\n\n\
         ### unknown user\n\n\
         plain\\\ntext\n"
    );
}

#[test]
fn document_without_body_or_comments_is_its_title() {
    let doc = DocumentSource {
        title: "Empty page",
        body: Body::Empty,
        comments: Vec::new(),
    };
    assert_eq!(document_markdown(&doc, &Book), "# Empty page\n");
}

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(METADATA_SCHEMA_V1).unwrap_or_else(|e| panic!("schema is JSON: {e}"));
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("schema is a valid 2020-12 schema: {e}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema compiles: {e}"))
}

fn jira_example() -> DocumentMetadata {
    let md = "# PROJ-123: Login fails\n";
    DocumentMetadata {
        schema_version: SCHEMA_VERSION,
        id: "10042".to_string(),
        key: Some("PROJ-123".to_string()),
        product: Product::Jira,
        site: "https://example.atlassian.net".to_string(),
        url: "https://example.atlassian.net/browse/PROJ-123".to_string(),
        title: "Login fails".to_string(),
        item_type: "Bug".to_string(),
        status: Some("In Progress".to_string()),
        priority: Some("High".to_string()),
        labels: vec!["auth".to_string()],
        container: Container {
            kind: ContainerKind::Project,
            id: Some("10000".to_string()),
            key: Some("PROJ".to_string()),
            name: Some("Project".to_string()),
        },
        parent: Some(ItemRef {
            id: "10040".to_string(),
            key: Some("PROJ-100".to_string()),
            title: Some("Auth epic".to_string()),
        }),
        ancestors: vec![ItemRef {
            id: "10040".to_string(),
            key: Some("PROJ-100".to_string()),
            title: Some("Auth epic".to_string()),
        }],
        created: normalize_timestamp("2024-01-02T03:04:05.000+0000"),
        updated: normalize_timestamp("2024-01-03T03:04:05.000+0000"),
        creator: Some("Grace Hopper".to_string()),
        assignee: Some("Ada Lovelace".to_string()),
        last_editor: None,
        comment_count: 2,
        attachments: vec![AttachmentMeta {
            id: "10100".to_string(),
            name: "trace.pdf".to_string(),
            mime_type: Some("application/pdf".to_string()),
            size: Some(12_345),
            key: "t/c/jira/attachments/10042/10100/trace.pdf".to_string(),
            text_key: Some("t/c/jira/documents/10042/attachments/10100.txt".to_string()),
            text_skipped: None,
        }],
        content_hash: content_hash(md),
    }
}

fn confluence_example() -> DocumentMetadata {
    DocumentMetadata {
        schema_version: SCHEMA_VERSION,
        id: "98765".to_string(),
        key: None,
        product: Product::Confluence,
        site: "https://example.atlassian.net".to_string(),
        url: "https://example.atlassian.net/wiki/spaces/DOC/pages/98765/Runbook".to_string(),
        title: "Runbook".to_string(),
        item_type: "page".to_string(),
        status: Some("current".to_string()),
        priority: None,
        labels: Vec::new(),
        container: Container {
            kind: ContainerKind::Space,
            id: Some("65539".to_string()),
            key: Some("DOC".to_string()),
            name: Some("Documentation".to_string()),
        },
        parent: None,
        ancestors: Vec::new(),
        created: normalize_timestamp("2024-01-02T03:04:05.000Z"),
        updated: None,
        creator: Some("Ada Lovelace".to_string()),
        assignee: None,
        last_editor: Some("Grace Hopper".to_string()),
        comment_count: 0,
        attachments: vec![AttachmentMeta {
            id: "att123".to_string(),
            name: "bomb.zip".to_string(),
            mime_type: None,
            size: None,
            key: "t/c/confluence/attachments/98765/att123/bomb.zip".to_string(),
            text_key: None,
            text_skipped: Some("skipped: unsupported file type".to_string()),
        }],
        content_hash: content_hash("# Runbook\n"),
    }
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn examples_of_both_products_validate_against_the_schema() {
    let v = validator();
    for example in [jira_example(), confluence_example()] {
        let doc = serde_json::to_value(&example).unwrap_or_else(|e| panic!("serializes: {e}"));
        assert_eq!(errors(&v, &doc), Vec::<String>::new(), "{doc:#}");
        // And reads back as the same record.
        let back: DocumentMetadata =
            serde_json::from_value(doc).unwrap_or_else(|e| panic!("deserializes: {e}"));
        assert_eq!(back, example);
    }
}

#[test]
fn the_schema_and_the_type_have_the_same_fields() {
    let schema: Value = serde_json::from_str(METADATA_SCHEMA_V1).unwrap_or_else(|e| panic!("{e}"));
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("required is an array"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut properties: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("properties is an object"))
        .keys()
        .map(String::as_str)
        .collect();
    let serialized = serde_json::to_value(confluence_example()).unwrap_or_else(|e| panic!("{e}"));
    let mut fields: Vec<&str> = serialized
        .as_object()
        .unwrap_or_else(|| panic!("an object"))
        .keys()
        .map(String::as_str)
        .collect();
    required.sort_unstable();
    properties.sort_unstable();
    fields.sort_unstable();
    assert_eq!(fields, required);
    assert_eq!(fields, properties);
}

#[test]
fn the_schema_rejects_what_the_promise_forbids() {
    let v = validator();
    let good = serde_json::to_value(jira_example()).unwrap_or_else(|e| panic!("{e}"));
    type Change = Box<dyn Fn(&mut Value)>;
    let broken: Vec<(&str, Change)> = vec![
        (
            "an account id as a name",
            Box::new(|d| d["assignee"] = json!("5b10ac8d82e05b22cc7d4ef5")),
        ),
        (
            "a new-style account id as a name",
            Box::new(|d| d["creator"] = json!("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077")),
        ),
        ("an extra field", Box::new(|d| d["accountId"] = json!("x"))),
        (
            "a missing field",
            Box::new(|d| drop(d.as_object_mut().map(|o| o.remove("title")))),
        ),
        (
            "another product",
            Box::new(|d| d["product"] = json!("bitbucket")),
        ),
        (
            "another version",
            Box::new(|d| d["schemaVersion"] = json!(2)),
        ),
        (
            "a bad timestamp",
            Box::new(|d| d["created"] = json!("yesterday")),
        ),
        (
            "a bad hash",
            Box::new(|d| d["contentHash"] = json!("md5:abc")),
        ),
        (
            "an attachment without a key",
            Box::new(|d| d["attachments"][0]["key"] = json!("")),
        ),
    ];
    for (what, change) in broken {
        let mut doc = good.clone();
        change(&mut doc);
        assert!(!errors(&v, &doc).is_empty(), "the schema accepted {what}");
    }
}

#[test]
fn the_example_files_validate_and_read_as_metadata() {
    // documents/schema/examples/*.json: the examples the README shows, one per product.
    let v = validator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(errors(&v, &doc), Vec::<String>::new(), "{}", path.display());
        let meta: DocumentMetadata =
            serde_json::from_value(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen.push(meta.product);
    }
    seen.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(seen, vec![Product::Confluence, Product::Jira]);
}
