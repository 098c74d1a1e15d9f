//! A Confluence page or blog post (REST v1 content with
//! `expand=body.storage,version,history,space,ancestors`, plus our `comments` and `attachments`,
//! redacted) as a document: title, storage-format body, comments oldest first (the order the
//! export stores them), and the metadata record.
//! Field shapes: developer.atlassian.com, Confluence Cloud REST v1, "Get content by ID"
//! (`history.createdBy`, `history.createdDate`, `version.by`, `version.when`, `space`,
//! `ancestors` root first, `_links.webui` relative to the site's `/wiki`).

use documents::{Comment, ContainerKind, DocumentSource, ItemRef, Product};
use serde_json::Value;

use super::{Built, blank, id_at, owned_at, person_at, str_at, time_at};

pub(super) fn source<'a>(doc: &'a Value, site: &str) -> Built<'a> {
    let id = id_at(doc, "/id").unwrap_or_default();
    let mut meta = blank(Product::Confluence, id, site, ContainerKind::Space);
    meta.url = match str_at(doc, "/_links/webui") {
        Some(webui) if webui.starts_with('/') => format!("{site}/wiki{webui}"),
        _ => format!("{site}/wiki/pages/viewpage.action?pageId={}", meta.id),
    };
    meta.title = owned_at(doc, "/title").unwrap_or_default();
    meta.item_type = owned_at(doc, "/type").unwrap_or_else(|| "page".to_owned());
    meta.status = owned_at(doc, "/status");
    meta.labels = doc
        .pointer("/metadata/labels/results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| str_at(l, "/name"))
        .map(str::to_owned)
        .collect();
    meta.container.id = id_at(doc, "/space/id");
    meta.container.key = owned_at(doc, "/space/key");
    meta.container.name = owned_at(doc, "/space/name");
    meta.ancestors = doc["ancestors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(ItemRef {
                id: id_at(a, "/id")?,
                key: None,
                title: owned_at(a, "/title"),
            })
        })
        .collect();
    meta.parent = meta.ancestors.last().cloned();
    meta.created = time_at(doc, "/history/createdDate");
    meta.updated = time_at(doc, "/version/when").or_else(|| meta.created.clone());
    meta.creator = person_at(doc, "/history/createdBy/displayName");
    meta.last_editor = person_at(doc, "/version/by/displayName");
    let comments: Vec<&Value> = doc["comments"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    meta.comment_count = comments.len() as u64;
    let source = DocumentSource {
        title: str_at(doc, "/title").unwrap_or(""),
        body: storage(doc),
        comments: comments
            .into_iter()
            .map(|c| Comment {
                author: str_at(c, "/history/createdBy/displayName")
                    .or_else(|| str_at(c, "/version/by/displayName")),
                created: str_at(c, "/history/createdDate").or_else(|| str_at(c, "/version/when")),
                body: storage(c),
            })
            .collect(),
    };
    (source, meta)
}

fn storage(v: &Value) -> documents::Body<'_> {
    match v.pointer("/body/storage/value").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => documents::Body::Storage(s),
        _ => documents::Body::Empty,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_maps_to_one_document_with_its_ancestors_and_comments() {
        let doc = json!({
            "id": "98765", "type": "page", "status": "current", "title": "Runbook",
            "space": {"id": 33, "key": "DOCS", "name": "Docs"},
            "history": {"createdBy": {"displayName": "Ada Lovelace"}, "createdDate": "2024-01-02T03:04:05.000Z"},
            "version": {"by": {"displayName": "Bob Builder"}, "when": "2024-02-02T03:04:05.000Z"},
            "ancestors": [{"id": "1", "title": "Home"}, {"id": "2", "title": "Ops"}],
            "body": {"storage": {"value": "<p>Hello @Carol Chen</p>"}},
            "_links": {"webui": "/spaces/DOCS/pages/98765/Runbook"},
            "comments": [
                {"history": {"createdBy": {"displayName": "Bob Builder"}, "createdDate": "2024-03-01T00:00:00.000Z"},
                 "body": {"storage": {"value": "<p>first</p>"}}}
            ]
        });
        let (source, meta) = source(&doc, "https://x.atlassian.net");
        assert_eq!(
            meta.url,
            "https://x.atlassian.net/wiki/spaces/DOCS/pages/98765/Runbook"
        );
        assert_eq!(meta.container.id.as_deref(), Some("33"));
        assert_eq!(meta.parent.as_ref().map(|p| p.id.as_str()), Some("2"));
        assert_eq!(meta.last_editor.as_deref(), Some("Bob Builder"));
        let md = documents::document_markdown(&source, &documents::NoResolver);
        assert!(
            md.contains("Hello @Carol Chen") && md.contains("### Bob Builder"),
            "{md}"
        );
    }
}
