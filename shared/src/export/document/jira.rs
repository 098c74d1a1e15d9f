//! A Jira issue (REST v3 `issue/bulkfetch` with `fields: *all`, redacted) as a document:
//! summary, description (ADF; a string from REST v2 is plain text), comments oldest first as
//! Jira returns them (`fields.comment.comments`), and the metadata record.
//! Field shapes: developer.atlassian.com, Jira Cloud REST v3, "Get issue" (`fields.summary`,
//! `issuetype`, `status`, `priority`, `labels`, `project`, `parent`, `creator`, `assignee`,
//! `comment.comments[].author/created/body`).

use documents::{Comment, ContainerKind, DocumentSource, ItemRef, Product};
use serde_json::Value;

use super::{Built, blank, body_of, id_at, owned_at, person_at, str_at, time_at};

pub(super) fn source<'a>(doc: &'a Value, site: &str) -> Built<'a> {
    let f = &doc["fields"];
    let id = id_at(doc, "/id").unwrap_or_default();
    let mut meta = blank(Product::Jira, id, site, ContainerKind::Project);
    // The schema's key pattern (`PROJ-123`): anything else is not an issue key.
    meta.key = owned_at(doc, "/key").filter(|k| is_issue_key(k));
    meta.url = match &meta.key {
        Some(key) => format!("{site}/browse/{key}"),
        None => format!("{site}/browse/{}", meta.id),
    };
    meta.title = owned_at(f, "/summary").unwrap_or_default();
    meta.item_type = owned_at(f, "/issuetype/name").unwrap_or_else(|| "issue".to_owned());
    meta.status = owned_at(f, "/status/name");
    meta.priority = owned_at(f, "/priority/name");
    meta.labels = f["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    meta.container.id = id_at(f, "/project/id");
    meta.container.key = owned_at(f, "/project/key");
    meta.container.name = owned_at(f, "/project/name");
    if let Some(pid) = id_at(f, "/parent/id") {
        let parent = ItemRef {
            id: pid,
            key: owned_at(f, "/parent/key"),
            title: owned_at(f, "/parent/fields/summary"),
        };
        // Jira gives the parent only; it is the whole known path.
        meta.ancestors = vec![parent.clone()];
        meta.parent = Some(parent);
    }
    meta.created = time_at(f, "/created");
    meta.updated = time_at(f, "/updated");
    meta.creator =
        person_at(f, "/creator/displayName").or_else(|| person_at(f, "/reporter/displayName"));
    meta.assignee = person_at(f, "/assignee/displayName");
    // Jira records no last editor of an issue.
    meta.last_editor = None;
    let comments: Vec<&Value> = f["comment"]["comments"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    meta.comment_count = comments.len() as u64;
    let source = DocumentSource {
        title: str_at(f, "/summary").unwrap_or(""),
        body: body_of(f.get("description")),
        comments: comments
            .into_iter()
            .map(|c| Comment {
                author: str_at(c, "/author/displayName"),
                created: str_at(c, "/created"),
                body: body_of(c.get("body")),
            })
            .collect(),
    };
    (source, meta)
}

fn is_issue_key(k: &str) -> bool {
    let Some((project, number)) = k.rsplit_once('-') else {
        return false;
    };
    let mut p = project.bytes();
    p.next().is_some_and(|b| b.is_ascii_uppercase())
        && p.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_issue_maps_to_one_document_with_its_comments_in_order() {
        let doc = json!({
            "id": "10001", "key": "ALPHA-1",
            "fields": {
                "summary": "Fix the login",
                "issuetype": {"name": "Bug"}, "status": {"name": "To Do"},
                "priority": {"name": "High"}, "labels": ["auth"],
                "project": {"id": "10000", "key": "ALPHA", "name": "Alpha"},
                "parent": {"id": "10000", "key": "ALPHA-0", "fields": {"summary": "Epic"}},
                "created": "2024-01-02T03:04:05.000+0100",
                "creator": {"displayName": "Ada Lovelace"},
                "assignee": {"displayName": "5b10ac8d82e05b22cc7d4ef5"},
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Ask "},
                        {"type": "mention", "attrs": {"text": "@Bob Builder"}}
                    ]}
                ]},
                "comment": {"comments": [
                    {"author": {"displayName": "Bob Builder"}, "created": "2024-01-03T00:00:00.000+0000",
                     "body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "first"}]}]}},
                    {"author": {"displayName": "Ada Lovelace"}, "created": "2024-01-04T00:00:00.000+0000",
                     "body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "second"}]}]}}
                ]}
            }
        });
        let (source, meta) = source(&doc, "https://x.atlassian.net");
        assert_eq!(meta.url, "https://x.atlassian.net/browse/ALPHA-1");
        assert_eq!(meta.created.as_deref(), Some("2024-01-02T02:04:05Z"));
        assert_eq!(meta.assignee, None, "an id is never a name");
        assert_eq!(meta.comment_count, 2);
        assert_eq!(meta.parent.as_ref().map(|p| p.id.as_str()), Some("10000"));
        let md = documents::document_markdown(&source, &documents::NoResolver);
        assert!(md.starts_with("# Fix the login"), "{md}");
        assert!(md.contains("@Bob Builder"), "{md}");
        let (first, second) = (md.find("first"), md.find("second"));
        assert!(first.is_some() && first < second, "{md}");
    }
}
