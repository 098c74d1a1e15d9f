//! Markdown (CommonMark with GitHub's tables, task lists and strikethrough) from the IR.
//!
//! Choices a reader of the output should know:
//! - Text is escaped where Markdown would read it as syntax (`*`, `` ` ``, `[`, `]`, `<`, `\`,
//!   `~`, an `_` at a word boundary, an entity-like `&…;`, and block markers at a line start),
//!   and nowhere else, so prose stays readable for a language model.
//! - A panel is a quote whose first words name its kind (`> **Warning:** …`); an expand is its
//!   bold title followed by its body, always expanded; a status lozenge is inline code.
//! - Underline, subscript and superscript are the inline HTML `<u>`, `<sub>`, `<sup>`.
//! - Tables are pipe tables whose first row is the header. Block content inside a cell is put on
//!   one line with `<br>`. A cell merged over several rows repeats its text in each of them (so
//!   every row reads on its own); one merged over several columns fills the first and leaves the
//!   others empty.

use super::ir::{Block, Cell, Inline, Item, List, ListKind, Row};

/// Renders blocks as a Markdown document (ends with one newline unless empty).
pub fn to_markdown(blocks: &[Block]) -> String {
    let mut out = render_blocks(blocks);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Renders blocks separated by blank lines, without a final newline.
pub fn render_blocks(blocks: &[Block]) -> String {
    let parts: Vec<String> = blocks.iter().filter_map(render_block).collect();
    parts.join("\n\n")
}

fn render_block(b: &Block) -> Option<String> {
    let s = match b {
        Block::Paragraph(inl) => paragraph(inl),
        Block::Heading(level, inl) => {
            let text = inline_line(inl);
            if text.is_empty() {
                return None;
            }
            let level = usize::from((*level).clamp(1, 6));
            let text = match text.strip_suffix('#') {
                Some(rest) => format!("{rest}\\#"),
                None => text,
            };
            format!("{} {text}", "#".repeat(level))
        }
        Block::List(l) => list(l),
        Block::Code { language, text } => code_block(language.as_deref(), text),
        Block::Quote(body) => quote(&render_blocks(body)),
        Block::Panel { label, title, body } => panel(label, title.as_deref(), body),
        Block::Expand { title, body } => {
            let body = render_blocks(body);
            match title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) if body.is_empty() => format!("**{}**", escape_text(t)),
                Some(t) => format!("**{}**\n\n{body}", escape_text(t)),
                None => body,
            }
        }
        Block::Table(rows) => table(rows),
        Block::Rule => "---".to_string(),
    };
    (!s.trim().is_empty()).then_some(s)
}

fn paragraph(inl: &[Inline]) -> String {
    let text = render_inlines(inl, Ctx::Paragraph);
    let lines: Vec<String> = text
        .trim()
        .split('\n')
        .map(|l| escape_line_start(l.trim_start()))
        .collect();
    lines.join("\n")
}

/// A heading or a link text: one line, breaks become spaces.
fn inline_line(inl: &[Inline]) -> String {
    render_inlines(inl, Ctx::Line).trim().to_string()
}

fn quote(body: &str) -> String {
    body.lines()
        .map(|l| {
            if l.is_empty() {
                ">".to_string()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn panel(label: &str, title: Option<&str>, body: &[Block]) -> String {
    let head = match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => format!("**{}: {}**", escape_text(label), escape_text(t)),
        None => format!("**{}:**", escape_text(label)),
    };
    let text = render_blocks(body);
    let starts_with_paragraph = matches!(body.first(), Some(Block::Paragraph(_)));
    let inner = if text.is_empty() {
        head
    } else if starts_with_paragraph {
        format!("{head} {text}")
    } else {
        format!("{head}\n\n{text}")
    };
    quote(&inner)
}

fn code_block(language: Option<&str>, text: &str) -> String {
    let fence = "`".repeat((longest_run(text, '`') + 1).max(3));
    let lang: String = language
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| *c != '`')
        .collect();
    let body = text.trim_end_matches(['\n', '\r']);
    format!("{fence}{lang}\n{body}\n{fence}")
}

fn list(l: &List) -> String {
    let mut out = Vec::with_capacity(l.items.len());
    for (i, item) in l.items.iter().enumerate() {
        let marker = match l.kind {
            ListKind::Bullet => "- ".to_string(),
            ListKind::Ordered(start) => {
                let n = start.saturating_add(i as u64).min(999_999_999);
                format!("{n}. ")
            }
            ListKind::Task => match item.checked {
                Some(true) => "- [x] ".to_string(),
                _ => "- [ ] ".to_string(),
            },
        };
        let indent = match l.kind {
            ListKind::Ordered(_) => marker.len(),
            _ => 2,
        };
        out.push(list_item(&marker, indent, item));
    }
    out.join("\n")
}

fn list_item(marker: &str, indent: usize, item: &Item) -> String {
    let mut body = String::new();
    let mut prev = false;
    for b in &item.blocks {
        let Some(s) = render_block(b) else { continue };
        if prev {
            body.push_str(if matches!(b, Block::List(_)) {
                "\n"
            } else {
                "\n\n"
            });
        }
        body.push_str(&s);
        prev = true;
    }
    if body.is_empty() {
        return marker.trim_end().to_string();
    }
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (n, line) in body.split('\n').enumerate() {
        if n == 0 {
            out.push_str(marker);
            out.push_str(line);
        } else {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
    }
    out
}

fn table(rows: &[Row]) -> String {
    let grid = flatten_table(rows);
    let width = grid.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for c in 0..width {
            let text = cells.get(c).map(String::as_str).unwrap_or("");
            s.push(' ');
            s.push_str(text);
            if !text.is_empty() {
                s.push(' ');
            }
            s.push('|');
        }
        s
    };
    let mut out = Vec::with_capacity(grid.len() + 1);
    for (n, row) in grid.iter().enumerate() {
        out.push(line(row));
        if n == 0 {
            out.push(format!("|{}", " --- |".repeat(width)));
        }
    }
    out.join("\n")
}

/// The table as a grid of one-line cell texts, merged cells spread over the positions they
/// cover (see the module comment).
fn flatten_table(rows: &[Row]) -> Vec<Vec<String>> {
    // Per column: (rows still covered below, the text that covers them).
    let mut carry: Vec<(usize, String)> = Vec::new();
    let mut grid = Vec::with_capacity(rows.len());
    for row in rows {
        let mut out: Vec<String> = Vec::new();
        let mut cells = row.cells.iter();
        let mut col = 0;
        loop {
            if let Some((left, text)) = carry.get_mut(col).filter(|(left, _)| *left > 0) {
                *left -= 1;
                out.push(text.clone());
                col += 1;
                continue;
            }
            let Some(cell) = cells.next() else {
                if col < carry.len() {
                    out.push(String::new());
                    col += 1;
                    continue;
                }
                break;
            };
            let text = cell_text(cell);
            let colspan = cell.colspan.clamp(1, 1000);
            let below = cell.rowspan.clamp(1, 10_000) - 1;
            for k in 0..colspan {
                let shown = if k == 0 { text.clone() } else { String::new() };
                if carry.len() <= col {
                    carry.resize(col + 1, (0, String::new()));
                }
                carry[col] = (below, shown.clone());
                out.push(shown);
                col += 1;
            }
        }
        while out.last().is_some_and(String::is_empty) && out.len() > row_width(row) {
            out.pop();
        }
        grid.push(out);
    }
    grid
}

fn row_width(row: &Row) -> usize {
    row.cells.iter().map(|c| c.colspan.max(1)).sum()
}

fn cell_text(cell: &Cell) -> String {
    let parts: Vec<String> = cell
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Paragraph(inl) | Block::Heading(_, inl) => {
                let t = render_inlines(inl, Ctx::Cell).trim().to_string();
                (!t.is_empty()).then_some(t)
            }
            Block::Code { text, .. } => Some(code_span(text)),
            other => render_block(other).map(|s| s.replace('\n', "<br>")),
        })
        .collect();
    parts.join("<br>").replace('|', "\\|")
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// A paragraph: a break is a Markdown hard break.
    Paragraph,
    /// A heading or link text: a break is a space.
    Line,
    /// A table cell: a break is `<br>`.
    Cell,
}

fn render_inlines(inl: &[Inline], ctx: Ctx) -> String {
    let mut out = String::new();
    for i in merge_adjacent(inl) {
        render_inline(&i, ctx, &mut out);
    }
    out
}

fn render_inline(i: &Inline, ctx: Ctx, out: &mut String) {
    match i {
        Inline::Text(t) => out.push_str(&escape_text(t)),
        Inline::Code(t) => out.push_str(&code_span(t)),
        Inline::Status(t) => {
            let t = t.trim();
            if !t.is_empty() {
                out.push_str(&code_span(t));
            }
        }
        Inline::Break => out.push_str(match ctx {
            Ctx::Paragraph => "\\\n",
            Ctx::Line => " ",
            Ctx::Cell => "<br>",
        }),
        Inline::Strong(c) => wrap(out, "**", "**", &render_inlines(c, ctx)),
        Inline::Em(c) => wrap(out, "*", "*", &render_inlines(c, ctx)),
        Inline::Strike(c) => wrap(out, "~~", "~~", &render_inlines(c, ctx)),
        Inline::Underline(c) => wrap(out, "<u>", "</u>", &render_inlines(c, ctx)),
        Inline::Sub(c) => wrap(out, "<sub>", "</sub>", &render_inlines(c, ctx)),
        Inline::Sup(c) => wrap(out, "<sup>", "</sup>", &render_inlines(c, ctx)),
        Inline::Link { href, content } => {
            let text = render_inlines(content, Ctx::Line);
            let text = text.trim();
            let dest = link_destination(href);
            if dest.is_empty() {
                out.push_str(text);
            } else if text.is_empty() {
                out.push_str(&format!("[{}]({dest})", escape_text(href)));
            } else {
                out.push_str(&format!("[{text}]({dest})"));
            }
        }
    }
}

/// Puts delimiters around rendered content, keeping its outer whitespace outside them (CommonMark
/// does not see `** x**` as emphasis).
fn wrap(out: &mut String, open: &str, close: &str, inner: &str) {
    let core = inner.trim();
    if core.is_empty() {
        out.push_str(inner);
        return;
    }
    let lead = &inner[..inner.len() - inner.trim_start().len()];
    let trail = &inner[inner.trim_end().len()..];
    out.push_str(lead);
    out.push_str(open);
    out.push_str(core);
    out.push_str(close);
    out.push_str(trail);
}

/// Joins neighbouring text and neighbouring wrappers of the same kind (ADF marks each text node
/// separately, so `**a****b**` would otherwise appear), and moves breaks out of wrappers.
fn merge_adjacent(inl: &[Inline]) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::with_capacity(inl.len());
    for i in inl {
        let mut i = i.clone();
        // A break at the edge of a wrapper would end up between the delimiters.
        let mut after_break = false;
        if let Some(children) = wrapper_children_mut(&mut i) {
            while matches!(children.last(), Some(Inline::Break)) {
                children.pop();
                after_break = true;
            }
            if children.is_empty() {
                if after_break {
                    out.push(Inline::Break);
                }
                continue;
            }
        }
        let merge = out.last().is_some_and(|last| {
            matches!((last, &i), (Inline::Text(_), Inline::Text(_))) || same_wrapper(last, &i)
        });
        match (out.last_mut(), i) {
            (Some(Inline::Text(a)), Inline::Text(b)) if merge => a.push_str(&b),
            (Some(last), mut i) if merge => {
                if let (Some(a), Some(b)) =
                    (wrapper_children_mut(last), wrapper_children_mut(&mut i))
                {
                    a.append(b);
                }
            }
            (_, i) => out.push(i),
        }
        if after_break {
            out.push(Inline::Break);
        }
    }
    out
}

fn same_wrapper(a: &Inline, b: &Inline) -> bool {
    match (a, b) {
        (Inline::Strong(_), Inline::Strong(_))
        | (Inline::Em(_), Inline::Em(_))
        | (Inline::Strike(_), Inline::Strike(_))
        | (Inline::Underline(_), Inline::Underline(_))
        | (Inline::Sub(_), Inline::Sub(_))
        | (Inline::Sup(_), Inline::Sup(_)) => true,
        (Inline::Link { href: x, .. }, Inline::Link { href: y, .. }) => x == y,
        _ => false,
    }
}

fn wrapper_children_mut(i: &mut Inline) -> Option<&mut Vec<Inline>> {
    match i {
        Inline::Strong(c)
        | Inline::Em(c)
        | Inline::Strike(c)
        | Inline::Underline(c)
        | Inline::Sub(c)
        | Inline::Sup(c)
        | Inline::Link { content: c, .. } => Some(c),
        _ => None,
    }
}

fn code_span(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if text.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && !text.trim().is_empty());
    if pad {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A link destination that needs no angle brackets: characters that would end or confuse it are
/// percent-encoded.
fn link_destination(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    for c in href.trim().chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes the characters that Markdown would read as inline syntax.
pub(crate) fn escape_text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (n, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '_' => {
                let inside_word = n > 0
                    && chars[n - 1].is_alphanumeric()
                    && chars.get(n + 1).is_some_and(|c| c.is_alphanumeric());
                if !inside_word {
                    out.push('\\');
                }
                out.push('_');
            }
            '&' if looks_like_entity(&chars[n + 1..]) => out.push_str("\\&"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn looks_like_entity(rest: &[char]) -> bool {
    let name: Vec<&char> = rest
        .iter()
        .take(33)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '#')
        .collect();
    !name.is_empty() && rest.get(name.len()) == Some(&';')
}

/// Escapes a line start that Markdown would read as a block marker (heading, quote, list item,
/// thematic break, setext underline).
fn escape_line_start(line: &str) -> String {
    let b = line.as_bytes();
    let Some(&first) = b.first() else {
        return String::new();
    };
    let followed_by_space_or_end = |k: usize| b.get(k).is_none_or(|c| *c == b' ' || *c == b'\t');
    match first {
        b'#' | b'>' | b'=' | b'|' => format!("\\{line}"),
        b'-' | b'+'
            if followed_by_space_or_end(1) || b.iter().all(|c| *c == first || *c == b' ') =>
        {
            format!("\\{line}")
        }
        b'0'..=b'9' => {
            let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
            match b.get(digits) {
                Some(b'.' | b')') if digits <= 9 && followed_by_space_or_end(digits + 1) => {
                    format!("{}\\{}", &line[..digits], &line[digits..])
                }
                _ => line.to_string(),
            }
        }
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(inl: Vec<Inline>) -> String {
        to_markdown(&[Block::Paragraph(inl)])
    }

    #[test]
    fn text_that_looks_like_markdown_is_escaped() {
        assert_eq!(
            p(vec![Inline::text(
                "a *b* [c] `d` snake_case _x_ &amp; AT&T"
            )]),
            "a \\*b\\* \\[c\\] \\`d\\` snake_case \\_x\\_ \\&amp; AT&T\n"
        );
    }

    #[test]
    fn block_markers_at_a_line_start_are_escaped() {
        for (text, want) in [
            ("# not a heading", "\\# not a heading"),
            ("> not a quote", "\\> not a quote"),
            ("- not an item", "\\- not an item"),
            ("1. not an item", "1\\. not an item"),
            ("2024. a year", "2024\\. a year"),
            ("---", "\\---"),
            ("-5 degrees", "-5 degrees"),
            ("12 monkeys", "12 monkeys"),
        ] {
            assert_eq!(p(vec![Inline::text(text)]), format!("{want}\n"), "{text}");
        }
    }

    #[test]
    fn adjacent_marks_merge_and_whitespace_stays_outside_delimiters() {
        let got = p(vec![
            Inline::Strong(vec![Inline::text("bold ")]),
            Inline::Strong(vec![Inline::Em(vec![Inline::text("both")])]),
            Inline::text(" plain"),
        ]);
        assert_eq!(got, "**bold *both*** plain\n");
    }

    #[test]
    fn code_span_fence_is_longer_than_any_backtick_run_inside() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
    }

    #[test]
    fn merged_cells_spread_over_the_grid() {
        let cell = |t: &str, colspan, rowspan| Cell {
            header: false,
            colspan,
            rowspan,
            blocks: vec![Block::Paragraph(vec![Inline::text(t)])],
        };
        let rows = vec![
            Row {
                cells: vec![cell("H1", 2, 1), cell("H3", 1, 1)],
            },
            Row {
                cells: vec![cell("tall", 1, 2), cell("b", 1, 1), cell("c", 1, 1)],
            },
            Row {
                cells: vec![cell("e", 1, 1), cell("f", 1, 1)],
            },
        ];
        assert_eq!(
            to_markdown(&[Block::Table(rows)]),
            "| H1 | | H3 |\n| --- | --- | --- |\n| tall | b | c |\n| tall | e | f |\n"
        );
    }

    #[test]
    fn pipes_in_cells_are_escaped() {
        let rows = vec![Row {
            cells: vec![Cell {
                header: true,
                colspan: 1,
                rowspan: 1,
                blocks: vec![Block::Paragraph(vec![
                    Inline::text("a|b"),
                    Inline::Break,
                    Inline::text("c"),
                ])],
            }],
        }];
        assert_eq!(
            to_markdown(&[Block::Table(rows)]),
            "| a\\|b<br>c |\n| --- |\n"
        );
    }
}
