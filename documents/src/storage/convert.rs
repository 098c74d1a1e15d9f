//! Storage-format elements and macros mapped onto the shared IR.
//!
//! Element and macro names, parameters and resource identifiers follow
//! https://confluence.atlassian.com/doc/confluence-storage-format-790796544.html and the macro
//! pages it links (code block, info/note/warning/tip, expand, Jira issues, status). An element
//! or macro not handled here keeps its text: its rich-text body, else its plain-text body, else
//! the text of its children. `toc`, `children`, `pagetree`, `anchor`, `attachments` and
//! template placeholders render as nothing: they hold no text of the page.

use crate::markdown::ir::{Block, BlockBuilder, Cell, Inline, Item, List, ListKind, Row};
use crate::resolve::{AttachmentRef, Resolver, mention};

use super::tree::{Element, Node};

/// What one node turned into.
enum Out {
    Inline(Vec<Inline>),
    Blocks(Vec<Block>),
    Nothing,
}

pub(crate) struct Conv<'r> {
    pub r: &'r dyn Resolver,
}

impl Conv<'_> {
    pub fn blocks(&self, nodes: &[Node]) -> Vec<Block> {
        build_blocks(nodes.iter().map(|n| self.node(n)))
    }

    /// An element of unknown kind: inline if everything in it is, else blocks.
    fn transparent(&self, nodes: &[Node]) -> Out {
        let outs: Vec<Out> = nodes.iter().map(|n| self.node(n)).collect();
        if outs
            .iter()
            .all(|o| matches!(o, Out::Inline(_) | Out::Nothing))
        {
            Out::Inline(
                outs.into_iter()
                    .flat_map(|o| match o {
                        Out::Inline(i) => i,
                        _ => Vec::new(),
                    })
                    .collect(),
            )
        } else {
            Out::Blocks(build_blocks(outs))
        }
    }

    fn inlines(&self, nodes: &[Node]) -> Vec<Inline> {
        let mut out = Vec::new();
        for n in nodes {
            match self.node(n) {
                Out::Inline(i) => out.extend(i),
                Out::Blocks(bs) => {
                    for b in bs {
                        if !out.is_empty() {
                            out.push(Inline::Break);
                        }
                        out.extend(block_inlines(b));
                    }
                }
                Out::Nothing => {}
            }
        }
        out
    }

    fn node(&self, n: &Node) -> Out {
        match n {
            Node::Text(t) => Out::Inline(vec![Inline::Text(collapse_whitespace(t))]),
            Node::CData(t) => Out::Inline(vec![Inline::text(t.clone())]),
            Node::Element(e) => self.element(e),
        }
    }

    fn element(&self, e: &Element) -> Out {
        let inl = |f: fn(Vec<Inline>) -> Inline| Out::Inline(vec![f(self.inlines(&e.children))]);
        match e.name.as_str() {
            "p" => Out::Blocks(self.blocks(&e.children)),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = e.name[1..].parse().unwrap_or(1);
                Out::Blocks(vec![Block::Heading(level, self.inlines(&e.children))])
            }
            "ul" => Out::Blocks(vec![self.list(e, ListKind::Bullet)]),
            "ol" => {
                let start = e
                    .attr("start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1);
                Out::Blocks(vec![self.list(e, ListKind::Ordered(start))])
            }
            "ac:task-list" => Out::Blocks(vec![self.task_list(e)]),
            "ac:task" => Out::Blocks(vec![Block::List(List {
                kind: ListKind::Task,
                items: vec![self.task(e)],
            })]),
            "table" => Out::Blocks(vec![self.table(e)]),
            "pre" => Out::Blocks(vec![Block::Code {
                language: None,
                text: e.text(),
            }]),
            "blockquote" => Out::Blocks(vec![Block::Quote(self.blocks(&e.children))]),
            "hr" => Out::Blocks(vec![Block::Rule]),
            "br" => Out::Inline(vec![Inline::Break]),
            "strong" | "b" => inl(Inline::Strong),
            "em" | "i" | "cite" => inl(Inline::Em),
            "u" | "ins" => inl(Inline::Underline),
            "s" | "del" | "strike" => inl(Inline::Strike),
            "sub" => inl(Inline::Sub),
            "sup" => inl(Inline::Sup),
            "code" | "tt" | "kbd" | "samp" => Out::Inline(vec![Inline::Code(e.text())]),
            "span"
                if e.attr("style")
                    .is_some_and(|s| s.replace(' ', "").contains("line-through")) =>
            {
                inl(Inline::Strike)
            }
            "a" => {
                let content = self.inlines(&e.children);
                Out::Inline(match e.attr("href") {
                    Some(href) => vec![Inline::Link {
                        href: href.to_string(),
                        content,
                    }],
                    None => content,
                })
            }
            "ac:link" => Out::Inline(self.ac_link(e)),
            "ac:image" => Out::Inline(vec![self.image(e)]),
            "ac:structured-macro" | "ac:macro" => self.macro_(e),
            "ac:emoticon" => Out::Inline(vec![Inline::Text(emoticon(e))]),
            "time" => Out::Inline(match e.attr("datetime") {
                Some(d) => vec![Inline::text(d)],
                None => self.inlines(&e.children),
            }),
            // Template instructions, not page text.
            "ac:placeholder" => Out::Nothing,
            // Cloud bodies wrap editor-only nodes with a storage-format fallback.
            "ac:adf-extension" => match e.child("ac:adf-fallback") {
                Some(f) => self.transparent(&f.children),
                None => self.transparent(&e.children),
            },
            // Containers of blocks: each child block stands apart.
            "div" | "section" | "article" | "ac:layout" | "ac:layout-section"
            | "ac:layout-cell" => Out::Blocks(self.blocks(&e.children)),
            "ri:user" => Out::Inline(vec![Inline::Text(self.user(e, None))]),
            "ri:attachment" => Out::Inline(vec![self.attachment(e, None)]),
            "ri:page" | "ri:blog-post" => Out::Inline(vec![self.page(e, None)]),
            "ri:url" => Out::Inline(e.attr("ri:value").map(url_link).into_iter().collect()),
            "ac:parameter" | "colgroup" | "col" | "script" | "style" => Out::Nothing,
            _ if e.name.starts_with("ri:") => Out::Nothing,
            _ => self.transparent(&e.children),
        }
    }

    fn list(&self, e: &Element, kind: ListKind) -> Block {
        let mut items: Vec<Item> = Vec::new();
        for n in &e.children {
            match n {
                Node::Element(li) if li.name == "li" => items.push(Item {
                    checked: None,
                    blocks: self.blocks(&li.children),
                }),
                Node::Text(t) if t.trim().is_empty() => {}
                // A list directly inside a list (not valid XHTML, but written by some
                // editors) belongs to the item before it.
                other => {
                    let blocks = self.blocks(std::slice::from_ref(other));
                    match items.last_mut() {
                        Some(last) => last.blocks.extend(blocks),
                        None => items.push(Item {
                            checked: None,
                            blocks,
                        }),
                    }
                }
            }
        }
        Block::List(List { kind, items })
    }

    fn task_list(&self, e: &Element) -> Block {
        let mut items: Vec<Item> = Vec::new();
        for t in e.elements() {
            match t.name.as_str() {
                "ac:task" => items.push(self.task(t)),
                "ac:task-list" if !items.is_empty() => {
                    let nested = self.task_list(t);
                    if let Some(last) = items.last_mut() {
                        last.blocks.push(nested);
                    }
                }
                _ => items.push(Item {
                    checked: None,
                    blocks: self.blocks(std::slice::from_ref(&Node::Element(t.clone()))),
                }),
            }
        }
        Block::List(List {
            kind: ListKind::Task,
            items,
        })
    }

    fn task(&self, t: &Element) -> Item {
        let done = t
            .child("ac:task-status")
            .is_some_and(|s| s.text().trim().eq_ignore_ascii_case("complete"));
        let blocks = match t.child("ac:task-body") {
            Some(body) => self.blocks(&body.children),
            None => Vec::new(),
        };
        Item {
            checked: Some(done),
            blocks,
        }
    }

    fn table(&self, e: &Element) -> Block {
        let rows = table_row_order(e)
            .into_iter()
            .map(|tr| Row {
                cells: tr
                    .elements()
                    .filter(|c| c.name == "td" || c.name == "th")
                    .map(|c| Cell {
                        header: c.name == "th",
                        colspan: span(c.attr("colspan")),
                        rowspan: span(c.attr("rowspan")),
                        blocks: self.blocks(&c.children),
                    })
                    .collect(),
            })
            .collect();
        Block::Table(rows)
    }

    /// `<ac:link>`: a user mention, or a link to a page, attachment, space or URL.
    fn ac_link(&self, e: &Element) -> Vec<Inline> {
        let body: Option<Vec<Inline>> = if let Some(b) = e.child("ac:plain-text-link-body") {
            Some(vec![Inline::Text(b.text())])
        } else {
            e.child("ac:link-body").map(|b| self.inlines(&b.children))
        };
        let body = body.filter(|b| !Inline::plain(b).trim().is_empty());
        let resource = e.elements().find(|c| c.name.starts_with("ri:"));
        match resource {
            Some(r) if r.name == "ri:user" => {
                let carried = body.as_deref().map(Inline::plain);
                vec![Inline::Text(self.user(r, carried.as_deref()))]
            }
            Some(r) if r.name == "ri:attachment" => vec![self.attachment(r, body)],
            Some(r) if r.name == "ri:page" || r.name == "ri:blog-post" => vec![self.page(r, body)],
            Some(r) if r.name == "ri:url" => match r.attr("ri:value") {
                Some(url) => vec![Inline::Link {
                    href: url.to_string(),
                    content: body.unwrap_or_else(|| vec![Inline::text(url)]),
                }],
                None => body.unwrap_or_default(),
            },
            Some(r) if r.name == "ri:space" => body.unwrap_or_else(|| {
                r.attr("ri:space-key")
                    .map(Inline::text)
                    .into_iter()
                    .collect()
            }),
            _ => body.unwrap_or_default(),
        }
    }

    fn user(&self, u: &Element, carried: Option<&str>) -> String {
        let id = u
            .attr("ri:account-id")
            .or_else(|| u.attr("ri:userkey"))
            .or_else(|| u.attr("ri:username"));
        mention(self.r, id, carried)
    }

    fn attachment(&self, a: &Element, body: Option<Vec<Inline>>) -> Inline {
        let container = a.child("ri:page").or_else(|| a.child("ri:blog-post"));
        let file_name = a.attr("ri:filename");
        let r = AttachmentRef {
            file_name,
            page_title: container.and_then(|p| p.attr("ri:content-title")),
            space_key: container.and_then(|p| p.attr("ri:space-key")),
            ..AttachmentRef::default()
        };
        match self.r.attachment(&r) {
            Some(link) => Inline::Link {
                href: link.href,
                content: body.unwrap_or_else(|| vec![Inline::Text(link.name)]),
            },
            None => match body {
                Some(b) => Inline::Em(b),
                None => Inline::Text(match file_name {
                    Some(f) => format!("(attachment: {f})"),
                    None => "(attachment)".to_string(),
                }),
            },
        }
    }

    fn page(&self, p: &Element, body: Option<Vec<Inline>>) -> Inline {
        let title = p.attr("ri:content-title").unwrap_or("");
        let content = body.unwrap_or_else(|| vec![Inline::text(title)]);
        match self
            .r
            .page_url(title, p.attr("ri:space-key"))
            .filter(|_| !title.is_empty())
        {
            Some(href) => Inline::Link { href, content },
            None => Inline::Em(content),
        }
    }

    /// `<ac:image>`: a link to the attachment (or the external URL), named by its alt text.
    fn image(&self, e: &Element) -> Inline {
        let alt = e.attr("ac:alt").or_else(|| e.attr("ac:title"));
        if let Some(a) = e.child("ri:attachment") {
            let body = alt.map(|t| vec![Inline::text(t)]);
            return self.attachment(a, body);
        }
        match e.child("ri:url").and_then(|u| u.attr("ri:value")) {
            Some(url) => Inline::Link {
                href: url.to_string(),
                content: vec![Inline::text(alt.unwrap_or(url))],
            },
            None => Inline::text(
                alt.map(|a| format!("(image: {a})"))
                    .unwrap_or_else(|| "(image)".to_string()),
            ),
        }
    }

    fn macro_(&self, e: &Element) -> Out {
        let name = e.attr("ac:name").unwrap_or("").to_ascii_lowercase();
        let param = |p: &str| {
            e.elements().find(|c| {
                c.name == "ac:parameter"
                    && c.attr("ac:name").is_some_and(|n| n.eq_ignore_ascii_case(p))
            })
        };
        let param_text = |p: &str| {
            param(p)
                .map(|c| c.text().trim().to_string())
                .filter(|t| !t.is_empty())
        };
        let rich = e.child("ac:rich-text-body");
        let plain = e.child("ac:plain-text-body").map(Element::text);
        let rich_blocks = || rich.map(|b| self.blocks(&b.children)).unwrap_or_default();
        match name.as_str() {
            "code" | "noformat" => Out::Blocks(vec![Block::Code {
                language: if name == "code" {
                    param_text("language")
                } else {
                    None
                },
                text: plain.unwrap_or_default(),
            }]),
            "info" | "note" | "warning" | "tip" | "panel" => {
                let label = match name.as_str() {
                    "info" => "Info",
                    "note" => "Note",
                    "warning" => "Warning",
                    "tip" => "Tip",
                    _ => "Panel",
                };
                Out::Blocks(vec![Block::Panel {
                    label: label.to_string(),
                    title: param_text("title"),
                    body: rich_blocks(),
                }])
            }
            "expand" => Out::Blocks(vec![Block::Expand {
                title: param_text("title"),
                body: rich_blocks(),
            }]),
            "jira" => match param_text("key") {
                Some(key) => Out::Inline(vec![match self.r.issue_url(&key) {
                    Some(href) => Inline::Link {
                        href,
                        content: vec![Inline::text(key)],
                    },
                    None => Inline::text(key),
                }]),
                None => match param_text("jqlQuery") {
                    Some(jql) => {
                        Out::Inline(vec![Inline::text("Jira issues: "), Inline::Code(jql)])
                    }
                    None => Out::Nothing,
                },
            },
            "status" => match param_text("title") {
                Some(t) => Out::Inline(vec![Inline::Status(t)]),
                None => Out::Nothing,
            },
            "toc" | "children" | "pagetree" | "anchor" | "attachments" => Out::Nothing,
            "view-file" | "viewpdf" | "viewdoc" | "viewppt" | "viewxls" | "multimedia" => {
                match param("name").and_then(|p| p.child("ri:attachment")) {
                    Some(a) => Out::Inline(vec![self.attachment(a, None)]),
                    None => Out::Nothing,
                }
            }
            _ => {
                if let Some(body) = rich {
                    self.transparent(&body.children)
                } else if let Some(text) = plain.filter(|t| !t.trim().is_empty()) {
                    Out::Blocks(vec![Block::Code {
                        language: None,
                        text,
                    }])
                } else {
                    // A macro without a body: any attachment it names, else nothing to show.
                    let links: Vec<Inline> = e
                        .elements()
                        .filter(|c| c.name == "ac:parameter")
                        .filter_map(|p| p.child("ri:attachment"))
                        .map(|a| self.attachment(a, None))
                        .collect();
                    if links.is_empty() {
                        Out::Nothing
                    } else {
                        Out::Inline(links)
                    }
                }
            }
        }
    }
}

fn build_blocks(outs: impl IntoIterator<Item = Out>) -> Vec<Block> {
    let mut bb = BlockBuilder::new();
    for o in outs {
        match o {
            Out::Inline(i) => bb.inlines(i),
            Out::Blocks(bs) => bs.into_iter().for_each(|b| bb.block(b)),
            Out::Nothing => {}
        }
    }
    bb.finish()
}

/// The rows of a table in document order, across thead/tbody/tfoot.
fn table_row_order(e: &Element) -> Vec<&Element> {
    let mut out = Vec::new();
    for c in e.elements() {
        match c.name.as_str() {
            "tr" => out.push(c),
            "thead" | "tbody" | "tfoot" => out.extend(c.elements().filter(|r| r.name == "tr")),
            _ => {}
        }
    }
    out
}

fn span(v: Option<&str>) -> usize {
    v.and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

fn url_link(url: &str) -> Inline {
    Inline::Link {
        href: url.to_string(),
        content: vec![Inline::text(url)],
    }
}

/// `<ac:emoticon>`: the emoji itself when Cloud recorded it, else its short name.
fn emoticon(e: &Element) -> String {
    if let Some(f) = e.attr("ac:emoji-fallback").filter(|f| !f.starts_with(':')) {
        return f.to_string();
    }
    if let Some(s) = e.attr("ac:emoji-shortname") {
        return s.to_string();
    }
    match e.attr("ac:name") {
        Some(n) => format!(":{n}:"),
        None => String::new(),
    }
}

/// HTML whitespace: runs of spaces, tabs and line ends read as one space; `&nbsp;` as a space.
fn collapse_whitespace(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut in_space = false;
    for c in t.chars() {
        if c.is_ascii_whitespace() || c == '\u{a0}' {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// A block's text as inlines, for a block in an inline position (e.g. a heading with a macro).
fn block_inlines(b: Block) -> Vec<Inline> {
    match b {
        Block::Paragraph(i) | Block::Heading(_, i) => i,
        Block::Code { text, .. } => vec![Inline::Code(text)],
        other => {
            let mut text = String::new();
            block_plain(&other, &mut text);
            vec![Inline::Text(text.trim().to_string())]
        }
    }
}

fn block_plain(b: &Block, out: &mut String) {
    let mut push = |s: &str| {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(s);
    };
    match b {
        Block::Paragraph(i) | Block::Heading(_, i) => push(&Inline::plain(i)),
        Block::Code { text, .. } => push(text),
        Block::Rule => {}
        Block::Panel { title, body, .. } | Block::Expand { title, body } => {
            if let Some(t) = title {
                push(t);
            }
            body.iter().for_each(|b| block_plain(b, out));
        }
        Block::Quote(body) => body.iter().for_each(|b| block_plain(b, out)),
        Block::List(l) => l
            .items
            .iter()
            .flat_map(|i| &i.blocks)
            .for_each(|b| block_plain(b, out)),
        Block::Table(rows) => rows
            .iter()
            .flat_map(|r| &r.cells)
            .flat_map(|c| &c.blocks)
            .for_each(|b| block_plain(b, out)),
    }
}
