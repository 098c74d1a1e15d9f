//! The shape both rich-text formats are converted into before they become Markdown.
//!
//! ADF (Jira) and storage format (Confluence) describe the same things in two syntaxes; each
//! converter maps its syntax onto these few types, and one renderer (`render.rs`) decides how
//! each looks in Markdown. So a panel, a mention or a merged table cell renders the same way
//! whichever product it came from.

/// A block: something that stands on its own lines.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    /// Level 1 to 6.
    Heading(u8, Vec<Inline>),
    List(List),
    Code {
        language: Option<String>,
        text: String,
    },
    Quote(Vec<Block>),
    /// An info/note/warning/tip/success/error panel: a quote whose first line names its kind.
    Panel {
        label: String,
        title: Option<String>,
        body: Vec<Block>,
    },
    /// A collapsible section: its title in bold, then its body, always expanded.
    Expand {
        title: Option<String>,
        body: Vec<Block>,
    },
    Table(Vec<Row>),
    Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Bullet,
    /// Numbered from this number.
    Ordered(u64),
    /// Items carry `checked`.
    Task,
}

#[derive(Debug, Clone, PartialEq)]
pub struct List {
    pub kind: ListKind,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// `Some` for a task item: done or not.
    pub checked: Option<bool>,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub header: bool,
    pub colspan: usize,
    pub rowspan: usize,
    pub blocks: Vec<Block>,
}

/// Inline content: text with its formatting.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(Vec<Inline>),
    Em(Vec<Inline>),
    Strike(Vec<Inline>),
    Underline(Vec<Inline>),
    Sub(Vec<Inline>),
    Sup(Vec<Inline>),
    Link {
        href: String,
        content: Vec<Inline>,
    },
    /// A status lozenge (ADF `status`, the storage `status` macro).
    Status(String),
    /// A hard line break.
    Break,
}

impl Inline {
    pub fn text(s: impl Into<String>) -> Self {
        Inline::Text(s.into())
    }

    /// The text a reader would see, without formatting.
    pub fn plain(inlines: &[Inline]) -> String {
        let mut out = String::new();
        for i in inlines {
            i.push_plain(&mut out);
        }
        out
    }

    fn push_plain(&self, out: &mut String) {
        match self {
            Inline::Text(t) | Inline::Code(t) | Inline::Status(t) => out.push_str(t),
            Inline::Break => out.push('\n'),
            Inline::Strong(c)
            | Inline::Em(c)
            | Inline::Strike(c)
            | Inline::Underline(c)
            | Inline::Sub(c)
            | Inline::Sup(c)
            | Inline::Link { content: c, .. } => {
                for i in c {
                    i.push_plain(out);
                }
            }
        }
    }
}

/// Groups a mixed run of blocks and inlines (as both formats allow inside list items, table
/// cells and unknown wrappers) into blocks: each run of inlines becomes one paragraph.
#[derive(Default)]
pub struct BlockBuilder {
    blocks: Vec<Block>,
    pending: Vec<Inline>,
}

impl BlockBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inline(&mut self, i: Inline) {
        self.pending.push(i);
    }

    pub fn inlines(&mut self, is: impl IntoIterator<Item = Inline>) {
        self.pending.extend(is);
    }

    pub fn block(&mut self, b: Block) {
        self.flush();
        self.blocks.push(b);
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let run = std::mem::take(&mut self.pending);
        let blank = run.iter().all(|i| match i {
            Inline::Text(t) => t.trim().is_empty(),
            Inline::Break => true,
            _ => false,
        });
        if !blank {
            self.blocks.push(Block::Paragraph(run));
        }
    }

    pub fn finish(mut self) -> Vec<Block> {
        self.flush();
        self.blocks
    }
}
