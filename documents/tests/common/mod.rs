//! What the export would know: one person, a few exported attachments, the site's links.
#![allow(dead_code)]

use documents::{AttachmentLink, AttachmentRef, Resolver};

pub struct Book;

impl Resolver for Book {
    fn display_name(&self, account_id: &str) -> Option<String> {
        match account_id {
            "5b10ac8d82e05b22cc7d4ef5" | "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077" => {
                Some("Ada Lovelace".to_string())
            }
            _ => None,
        }
    }

    fn attachment(&self, a: &AttachmentRef<'_>) -> Option<AttachmentLink> {
        let link = |id: &str, name: &str| AttachmentLink {
            name: name.to_string(),
            href: format!("attachments/{id}/{name}"),
        };
        match (a.media_id, a.file_name) {
            (Some("4478e39c-cf9b-41d1-ba92-68589487cd75"), _) => Some(link("10001", "moon.jpeg")),
            (Some("6e7c7f2c-dd7a-499c-bceb-6f32bfbf30b5"), _) => Some(link("10002", "report.pdf")),
            (None, Some("atlassian_logo.gif")) if a.page_title.is_none() => {
                Some(link("20001", "atlassian_logo.gif"))
            }
            (None, Some("design.pdf")) => Some(link("20002", "design.pdf")),
            _ => None,
        }
    }

    fn issue_url(&self, key: &str) -> Option<String> {
        Some(format!("https://example.atlassian.net/browse/{key}"))
    }

    fn page_url(&self, title: &str, space_key: Option<&str>) -> Option<String> {
        (title == "Page Title" && space_key.is_none())
            .then(|| "https://example.atlassian.net/wiki/spaces/DOC/pages/123".to_string())
    }
}
