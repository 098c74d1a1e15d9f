//! Atlassian Document Format (Jira Cloud REST v3 rich text, Confluence `atlas_doc_format`) to
//! Markdown.
//!
//! Node and mark names and attributes follow Atlassian's ADF reference,
//! https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/ and its
//! `nodes/*` and `marks/*` pages. A node this converter does not know keeps its text: its `text`,
//! else its content converted as usual, else a text-like attribute (`text`, `title`, `url`,
//! `shortName`).

use serde_json::Value;

use crate::markdown::ir::{Block, BlockBuilder, Cell, Inline, Item, List, ListKind, Row};
use crate::markdown::render::to_markdown;
use crate::resolve::{AttachmentRef, Resolver, mention};

/// Deeper nesting than this is flattened to its plain text (no recursion without bound on
/// hostile input).
const MAX_DEPTH: usize = 64;

/// Markdown for an ADF document (`{"type":"doc","content":[…]}`), or for any ADF node.
/// A JSON string (Jira's v2 plain-text fields) is rendered as plain text.
pub fn adf_to_markdown(doc: &Value, resolver: &dyn Resolver) -> String {
    to_markdown(&adf_blocks(doc, resolver))
}

pub(crate) fn adf_blocks(doc: &Value, resolver: &dyn Resolver) -> Vec<Block> {
    let conv = Conv { r: resolver };
    let mut bb = BlockBuilder::new();
    match doc {
        Value::String(s) => return crate::document::plain_text_blocks(s),
        Value::Array(nodes) => {
            for n in nodes {
                conv.node_into(n, &mut bb, 0);
            }
        }
        other => conv.node_into(other, &mut bb, 0),
    }
    bb.finish()
}

struct Conv<'r> {
    r: &'r dyn Resolver,
}

fn ty(n: &Value) -> &str {
    n.get("type").and_then(Value::as_str).unwrap_or("")
}

fn content(n: &Value) -> &[Value] {
    n.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn attr<'v>(n: &'v Value, name: &str) -> Option<&'v Value> {
    n.get("attrs").and_then(|a| a.get(name))
}

fn attr_str<'v>(n: &'v Value, name: &str) -> Option<&'v str> {
    attr(n, name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn attr_u64(n: &Value, name: &str) -> Option<u64> {
    attr(n, name).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

const INLINE_TYPES: [&str; 10] = [
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "date",
    "status",
    "inlineCard",
    "mediaInline",
    "placeholder",
    "inlineExtension",
];

const BLOCK_TYPES: [&str; 12] = [
    "paragraph",
    "heading",
    "codeBlock",
    "blockquote",
    "listItem",
    "taskItem",
    "decisionItem",
    "panel",
    "expand",
    "nestedExpand",
    "tableCell",
    "tableHeader",
];

impl Conv<'_> {
    fn blocks(&self, nodes: &[Value], depth: usize) -> Vec<Block> {
        let mut bb = BlockBuilder::new();
        for n in nodes {
            self.node_into(n, &mut bb, depth);
        }
        bb.finish()
    }

    fn node_into(&self, n: &Value, bb: &mut BlockBuilder, depth: usize) {
        if depth > MAX_DEPTH {
            bb.inline(Inline::Text(plain_text(n)));
            return;
        }
        let d = depth + 1;
        let t = ty(n);
        match t {
            "doc" => {
                for c in content(n) {
                    self.node_into(c, bb, d);
                }
            }
            "paragraph" => bb.block(Block::Paragraph(self.inlines(content(n), d))),
            "heading" => {
                let level = attr_u64(n, "level").unwrap_or(1).clamp(1, 6) as u8;
                bb.block(Block::Heading(level, self.inlines(content(n), d)));
            }
            "bulletList" => bb.block(self.list(n, ListKind::Bullet, d)),
            "orderedList" => {
                let start = attr_u64(n, "order").unwrap_or(1);
                bb.block(self.list(n, ListKind::Ordered(start), d));
            }
            "taskList" => bb.block(self.list(n, ListKind::Task, d)),
            "decisionList" => bb.block(self.list(n, ListKind::Bullet, d)),
            "listItem" | "decisionItem" => bb.block(Block::List(List {
                kind: ListKind::Bullet,
                items: vec![self.item(n, d)],
            })),
            "taskItem" => bb.block(Block::List(List {
                kind: ListKind::Task,
                items: vec![self.item(n, d)],
            })),
            "codeBlock" => bb.block(Block::Code {
                language: attr_str(n, "language").map(str::to_string),
                text: Inline::plain(&self.inlines(content(n), d)),
            }),
            "blockquote" => bb.block(Block::Quote(self.blocks(content(n), d))),
            "panel" => bb.block(Block::Panel {
                label: panel_label(attr_str(n, "panelType").unwrap_or("info")).to_string(),
                title: None,
                body: self.blocks(content(n), d),
            }),
            "expand" | "nestedExpand" => bb.block(Block::Expand {
                title: attr_str(n, "title").map(str::to_string),
                body: self.blocks(content(n), d),
            }),
            "table" => bb.block(self.table(n, d)),
            "rule" => bb.block(Block::Rule),
            "mediaSingle" | "mediaGroup" => {
                for c in content(n) {
                    match ty(c) {
                        "media" | "mediaInline" => bb.block(Block::Paragraph(vec![self.media(c)])),
                        _ => self.node_into(c, bb, d),
                    }
                }
            }
            "media" => bb.block(Block::Paragraph(vec![self.media(n)])),
            "caption" => bb.block(Block::Paragraph(self.inlines(content(n), d))),
            "blockCard" | "embedCard" => {
                if let Some(card) = card(n) {
                    bb.block(Block::Paragraph(vec![card]));
                }
            }
            _ if INLINE_TYPES.contains(&t) => bb.inlines(self.inline(n, d)),
            _ => self.unknown_into(n, bb, d),
        }
    }

    /// An unknown node keeps its text (see the module comment).
    fn unknown_into(&self, n: &Value, bb: &mut BlockBuilder, depth: usize) {
        if let Some(text) = n.get("text").and_then(Value::as_str) {
            bb.inline(Inline::text(text));
        } else if content(n).iter().all(|c| INLINE_TYPES.contains(&ty(c))) {
            bb.inlines(self.inlines(content(n), depth));
        } else if !content(n).is_empty() {
            for b in self.blocks(content(n), depth) {
                bb.block(b);
            }
        } else if let Some(text) = fallback_text(n) {
            bb.inline(Inline::text(text));
        }
    }

    fn list(&self, n: &Value, kind: ListKind, depth: usize) -> Block {
        let mut items: Vec<Item> = Vec::new();
        for c in content(n) {
            match ty(c) {
                // ADF nests a task list as a sibling after the item it belongs to.
                "taskList" | "bulletList" | "orderedList" | "decisionList" if !items.is_empty() => {
                    let nested = self.blocks(std::slice::from_ref(c), depth + 1);
                    if let Some(last) = items.last_mut() {
                        last.blocks.extend(nested);
                    }
                }
                _ => items.push(self.item(c, depth + 1)),
            }
        }
        Block::List(List { kind, items })
    }

    fn item(&self, n: &Value, depth: usize) -> Item {
        let checked = match ty(n) {
            "taskItem" => {
                Some(attr_str(n, "state").is_some_and(|s| s.eq_ignore_ascii_case("DONE")))
            }
            _ => None,
        };
        let blocks = match ty(n) {
            "listItem" | "taskItem" | "decisionItem" => self.blocks(content(n), depth),
            // Anything else directly in a list is an item of its own.
            _ => self.blocks(std::slice::from_ref(n), depth),
        };
        Item { checked, blocks }
    }

    fn table(&self, n: &Value, depth: usize) -> Block {
        let rows = content(n)
            .iter()
            .map(|row| Row {
                cells: content(row)
                    .iter()
                    .map(|cell| Cell {
                        header: ty(cell) == "tableHeader",
                        colspan: attr_u64(cell, "colspan").unwrap_or(1).max(1) as usize,
                        rowspan: attr_u64(cell, "rowspan").unwrap_or(1).max(1) as usize,
                        blocks: self.blocks(content(cell), depth + 2),
                    })
                    .collect(),
            })
            .collect();
        Block::Table(rows)
    }

    fn inlines(&self, nodes: &[Value], depth: usize) -> Vec<Inline> {
        let mut out = Vec::new();
        for n in nodes {
            if depth > MAX_DEPTH {
                out.push(Inline::Text(plain_text(n)));
            } else {
                out.extend(self.inline(n, depth + 1));
            }
        }
        out
    }

    fn inline(&self, n: &Value, depth: usize) -> Vec<Inline> {
        let one = match ty(n) {
            "text" => {
                let text = n.get("text").and_then(Value::as_str).unwrap_or("");
                let marks = n
                    .get("marks")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                apply_marks(text, marks)
            }
            "hardBreak" => Inline::Break,
            "mention" => Inline::Text(mention(self.r, attr_str(n, "id"), attr_str(n, "text"))),
            "emoji" => Inline::text(
                attr_str(n, "text")
                    .or(attr_str(n, "shortName"))
                    .unwrap_or(""),
            ),
            "date" => Inline::Text(match attr(n, "timestamp") {
                Some(ts) => format_timestamp(ts),
                None => String::new(),
            }),
            "status" => Inline::Status(attr_str(n, "text").unwrap_or("").to_string()),
            "inlineCard" => match card(n) {
                Some(c) => c,
                None => return Vec::new(),
            },
            "mediaInline" | "media" => self.media(n),
            "placeholder" => Inline::text(attr_str(n, "text").unwrap_or("")),
            // Anything else with content (an unknown wrapper, or a block misplaced in a line):
            // its inline text; a block is set apart by spaces.
            t if !content(n).is_empty() => {
                let block = !INLINE_TYPES.contains(&t) && BLOCK_TYPES.contains(&t);
                let mut inner = Vec::new();
                if block {
                    inner.push(Inline::text(" "));
                }
                inner.extend(self.inlines(content(n), depth));
                if block {
                    inner.push(Inline::text(" "));
                }
                return inner;
            }
            _ => match n
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| fallback_text(n))
            {
                Some(t) => Inline::Text(t),
                None => return Vec::new(),
            },
        };
        vec![one]
    }

    /// An attachment (or external image) as a link to where the export put it.
    fn media(&self, n: &Value) -> Inline {
        let alt = attr_str(n, "alt");
        if attr_str(n, "type") == Some("external")
            && let Some(url) = attr_str(n, "url")
        {
            return Inline::Link {
                href: url.to_string(),
                content: vec![Inline::text(alt.unwrap_or(url))],
            };
        }
        let r = AttachmentRef {
            file_name: alt,
            media_id: attr_str(n, "id"),
            collection: attr_str(n, "collection"),
            ..AttachmentRef::default()
        };
        match self.r.attachment(&r) {
            Some(link) => Inline::Link {
                href: link.href,
                content: vec![Inline::Text(link.name)],
            },
            None => Inline::Text(match alt {
                Some(name) => format!("(attachment: {name})"),
                None => "(attachment)".to_string(),
            }),
        }
    }
}

/// Marks in a fixed nesting (code innermost, link outermost) so that neighbouring text nodes
/// merge into one span in the renderer.
fn apply_marks(text: &str, marks: &[Value]) -> Inline {
    let has = |name: &str| marks.iter().find(|m| ty(m) == name);
    let mut out = if has("code").is_some() {
        Inline::Code(text.to_string())
    } else {
        Inline::text(text)
    };
    if let Some(m) = has("subsup") {
        out = match attr_str(m, "type") {
            Some("sup") => Inline::Sup(vec![out]),
            _ => Inline::Sub(vec![out]),
        };
    }
    if has("underline").is_some() {
        out = Inline::Underline(vec![out]);
    }
    if has("strike").is_some() {
        out = Inline::Strike(vec![out]);
    }
    if has("em").is_some() {
        out = Inline::Em(vec![out]);
    }
    if has("strong").is_some() {
        out = Inline::Strong(vec![out]);
    }
    if let Some(href) = has("link").and_then(|m| attr_str(m, "href")) {
        out = Inline::Link {
            href: href.to_string(),
            content: vec![out],
        };
    }
    out
}

/// An inline/block/embed card: its URL as a link (named when the card carries JSON-LD `data`).
fn card(n: &Value) -> Option<Inline> {
    let data = attr(n, "data");
    let url =
        attr_str(n, "url").or_else(|| data.and_then(|d| d.get("url")).and_then(Value::as_str))?;
    let name = data
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(url);
    Some(Inline::Link {
        href: url.to_string(),
        content: vec![Inline::text(name)],
    })
}

fn panel_label(panel_type: &str) -> &'static str {
    match panel_type {
        "note" => "Note",
        "warning" => "Warning",
        "success" => "Success",
        "error" => "Error",
        "tip" => "Tip",
        "custom" => "Panel",
        _ => "Info",
    }
}

fn fallback_text(n: &Value) -> Option<String> {
    ["text", "title", "url", "shortName"]
        .iter()
        .find_map(|k| attr_str(n, k))
        .map(str::to_string)
}

/// ADF `date.attrs.timestamp`: a string of milliseconds since the epoch, as the editors write
/// it; the documented example (nodes/date) is `"1582152559"`, in seconds. A value below 10^11
/// (which as milliseconds would be before March 1973) is read as seconds. Shown as the UTC
/// calendar date, as Jira shows it.
fn format_timestamp(ts: &Value) -> String {
    let n = ts
        .as_i64()
        .or_else(|| ts.as_str().and_then(|s| s.trim().parse::<i64>().ok()));
    let nanos = n.map(|n| {
        let ms = if n.abs() < 100_000_000_000 {
            i128::from(n) * 1000
        } else {
            i128::from(n)
        };
        ms * 1_000_000
    });
    let date = nanos.and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok());
    match (date, ts) {
        (Some(d), _) => {
            let d = d.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        (None, Value::String(s)) => s.clone(),
        (None, other) => other.to_string(),
    }
}

/// All text under a node, without recursion: for nesting deeper than [`MAX_DEPTH`].
fn plain_text(root: &Value) -> String {
    let mut out = String::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let Some(t) = n.get("text").and_then(Value::as_str) {
            out.push_str(t);
        } else if let Some(t) = fallback_text(n) {
            out.push_str(&t);
        }
        let kids = content(n);
        if !kids.is_empty() && !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
        stack.extend(kids.iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::NoResolver;
    use serde_json::json;

    #[test]
    fn deep_nesting_is_flattened_not_lost() {
        let mut node = json!({"type": "text", "text": "deep"});
        for _ in 0..500 {
            node = json!({"type": "blockquote", "content": [node]});
        }
        let md = adf_to_markdown(&json!({"type": "doc", "content": [node]}), &NoResolver);
        assert!(md.contains("deep"), "{md}");
    }

    #[test]
    fn date_timestamp_renders_as_utc_date() {
        assert_eq!(format_timestamp(&json!("1582152559000")), "2020-02-19");
        assert_eq!(format_timestamp(&json!("1582152559")), "2020-02-19");
        assert_eq!(format_timestamp(&json!(0)), "1970-01-01");
        assert_eq!(format_timestamp(&json!("soon")), "soon");
    }
}
