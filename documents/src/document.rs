//! One Markdown document per issue or page: its title, its description or body, then its
//! comments in order, each headed by its author's display name and date.
//!
//! The title is the only level-1 heading: headings inside the body move one level down, those
//! inside comments three (a comment is a level-3 section), so a chunker that splits on headings
//! keeps each comment apart and under its item.

use serde_json::Value;

use crate::adf::adf_blocks;
use crate::markdown::ir::{Block, Inline};
use crate::markdown::render::{escape_text, render_blocks};
use crate::metadata::normalize_timestamp;
use crate::resolve::{Resolver, UNKNOWN_USER, looks_like_account_id};
use crate::storage::storage_blocks;

/// A rich-text field in one of the formats the products return.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// ADF: Jira REST v3 `description` and comment `body`, Confluence `atlas_doc_format`.
    Adf(&'a Value),
    /// Confluence storage format (`body.storage.value`).
    Storage(&'a str),
    /// Plain text (Jira REST v2 text fields).
    Text(&'a str),
    Empty,
}

#[derive(Debug, Clone, Copy)]
pub struct Comment<'a> {
    /// The author's display name (never an account id).
    pub author: Option<&'a str>,
    /// As the API returned it; ISO 8601 forms are shown as RFC 3339 UTC.
    pub created: Option<&'a str>,
    pub body: Body<'a>,
}

#[derive(Debug, Clone)]
pub struct DocumentSource<'a> {
    pub title: &'a str,
    pub body: Body<'a>,
    /// In the order to show them (oldest first, as both APIs return them by default).
    pub comments: Vec<Comment<'a>>,
}

/// The Markdown document for one issue or page.
pub fn document_markdown(doc: &DocumentSource<'_>, resolver: &dyn Resolver) -> String {
    let mut parts: Vec<String> = Vec::new();
    let title = doc.title.trim();
    parts.push(format!(
        "# {}",
        if title.is_empty() {
            "(untitled)".to_string()
        } else {
            escape_text(title)
        }
    ));
    let body = render_blocks(&demote(body_blocks(doc.body, resolver), 1));
    if !body.is_empty() {
        parts.push(body);
    }
    if !doc.comments.is_empty() {
        parts.push("## Comments".to_string());
        for c in &doc.comments {
            let author = c
                .author
                .map(str::trim)
                .filter(|a| !a.is_empty() && !looks_like_account_id(a))
                .unwrap_or(UNKNOWN_USER);
            let mut head = format!("### {}", escape_text(author));
            if let Some(when) = c.created.map(str::trim).filter(|w| !w.is_empty()) {
                let when = normalize_timestamp(when).unwrap_or_else(|| when.to_string());
                head.push_str(&format!(" · {}", escape_text(&when)));
            }
            parts.push(head);
            let body = render_blocks(&demote(body_blocks(c.body, resolver), 3));
            if !body.is_empty() {
                parts.push(body);
            }
        }
    }
    let mut out = parts.join("\n\n");
    out.push('\n');
    out
}

fn body_blocks(body: Body<'_>, resolver: &dyn Resolver) -> Vec<Block> {
    match body {
        Body::Adf(v) => adf_blocks(v, resolver),
        Body::Storage(s) => storage_blocks(s, resolver),
        Body::Text(t) => plain_text_blocks(t),
        Body::Empty => Vec::new(),
    }
}

/// Plain text as paragraphs (split on blank lines) with its line breaks kept.
pub(crate) fn plain_text_blocks(text: &str) -> Vec<Block> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut inl = Vec::new();
            for (n, line) in p.trim_matches('\n').split('\n').enumerate() {
                if n > 0 {
                    inl.push(Inline::Break);
                }
                inl.push(Inline::text(line));
            }
            Block::Paragraph(inl)
        })
        .collect()
}

fn demote(blocks: Vec<Block>, by: u8) -> Vec<Block> {
    blocks.into_iter().map(|b| demote_block(b, by)).collect()
}

fn demote_block(b: Block, by: u8) -> Block {
    match b {
        Block::Heading(level, inl) => Block::Heading(level.saturating_add(by).min(6), inl),
        Block::Quote(body) => Block::Quote(demote(body, by)),
        Block::Panel { label, title, body } => Block::Panel {
            label,
            title,
            body: demote(body, by),
        },
        Block::Expand { title, body } => Block::Expand {
            title,
            body: demote(body, by),
        },
        Block::List(mut l) => {
            for item in &mut l.items {
                item.blocks = demote(std::mem::take(&mut item.blocks), by);
            }
            Block::List(l)
        }
        other => other,
    }
}
