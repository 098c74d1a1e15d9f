//! Confluence storage format parsed into a small element tree with `quick-xml`.
//!
//! Storage format is "XHTML-based" XML with `ac:` and `ri:` prefixed elements whose namespaces
//! are never declared, HTML entities such as `&nbsp;`, and CDATA bodies
//! (https://confluence.atlassian.com/doc/confluence-storage-format-790796544.html). A page body is
//! a fragment with many top-level elements. The parser keeps prefixed names as written, resolves
//! HTML5 entities, and is lenient: an end tag closes the nearest open element of its name,
//! a stray end tag is ignored, elements left open at the end are closed, and after a syntax
//! error it carries on with the rest. Nesting deeper than [`MAX_DEPTH`] keeps its text in the
//! deepest element kept, so the converter never recurses without bound.

use quick_xml::events::Event;

use crate::xml::{attributes_of, entity_text, lenient_reader, name_of};

pub(crate) const MAX_DEPTH: usize = 64;

/// Syntax errors tolerated before the rest of the input is given up.
const MAX_ERRORS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
    /// A CDATA section (code and plain-text macro bodies): text kept exactly.
    CData(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Element {
    /// Lower-cased, with its prefix: `p`, `ac:structured-macro`, `ri:attachment`.
    pub name: String,
    /// Lower-cased names, unescaped values.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// All text below, CDATA included, as written.
    pub fn text(&self) -> String {
        let mut out = String::new();
        push_text(&self.children, &mut out);
        out
    }
}

fn push_text(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) | Node::CData(t) => out.push_str(t),
            Node::Element(e) => push_text(&e.children, out),
        }
    }
}

pub(crate) fn parse(xhtml: &str) -> Vec<Node> {
    let mut reader = lenient_reader(xhtml);
    let mut root: Vec<Node> = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    // Start tags beyond MAX_DEPTH that were not kept as elements.
    let mut dropped = 0usize;
    let mut errors = 0usize;

    fn push(root: &mut Vec<Node>, stack: &mut [Element], node: Node) {
        match stack.last_mut() {
            Some(top) => top.children.push(node),
            None => root.push(node),
        }
    }
    fn close_to(root: &mut Vec<Node>, stack: &mut Vec<Element>, len: usize) {
        while stack.len() > len {
            if let Some(e) = stack.pop() {
                push(root, stack, Node::Element(e));
            }
        }
    }

    loop {
        let before = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if stack.len() >= MAX_DEPTH {
                    dropped += 1;
                    continue;
                }
                stack.push(Element {
                    name: name_of(&e),
                    attrs: attributes_of(&e),
                    children: Vec::new(),
                });
            }
            Ok(Event::Empty(e)) => {
                let el = Element {
                    name: name_of(&e),
                    attrs: attributes_of(&e),
                    children: Vec::new(),
                };
                push(&mut root, &mut stack, Node::Element(el));
            }
            Ok(Event::End(e)) => {
                if dropped > 0 {
                    dropped -= 1;
                    continue;
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
                if let Some(at) = stack.iter().rposition(|el| el.name == name) {
                    close_to(&mut root, &mut stack, at);
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                push_text_node(&mut root, &mut stack, text);
            }
            Ok(Event::GeneralRef(r)) => push_text_node(&mut root, &mut stack, entity_text(&r)),
            Ok(Event::CData(c)) => {
                let text = c.decode().map(|c| c.into_owned()).unwrap_or_default();
                push(&mut root, &mut stack, Node::CData(text));
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => {
                errors += 1;
                if errors > MAX_ERRORS || reader.buffer_position() == before {
                    break;
                }
            }
        }
    }
    close_to(&mut root, &mut stack, 0);
    root
}

/// Appends text, joining it to a text node just before (entities arrive as their own events).
fn push_text_node(root: &mut Vec<Node>, stack: &mut [Element], text: String) {
    if text.is_empty() {
        return;
    }
    let nodes = match stack.last_mut() {
        Some(top) => &mut top.children,
        None => root,
    };
    match nodes.last_mut() {
        Some(Node::Text(prev)) => prev.push_str(&text),
        _ => nodes.push(Node::Text(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(nodes: &[Node], n: usize) -> &Element {
        match &nodes[n] {
            Node::Element(e) => e,
            other => panic!("not an element: {other:?}"),
        }
    }

    #[test]
    fn prefixed_elements_entities_and_cdata_are_kept() {
        let nodes = parse(
            r#"<p>a&nbsp;b&rsquo;s &amp; &#65;</p><ac:structured-macro ac:name="code"><ac:plain-text-body><![CDATA[x < y]]></ac:plain-text-body></ac:structured-macro>"#,
        );
        assert_eq!(el(&nodes, 0).text(), "a\u{a0}b\u{2019}s & A");
        let m = el(&nodes, 1);
        assert_eq!(m.name, "ac:structured-macro");
        assert_eq!(m.attr("ac:name"), Some("code"));
        assert_eq!(
            m.child("ac:plain-text-body").map(Element::text).as_deref(),
            Some("x < y")
        );
    }

    #[test]
    fn mismatched_and_unclosed_tags_keep_their_text() {
        let nodes = parse("<p>one <strong>two</p><p>three</em> four<p>five");
        let text: String = nodes
            .iter()
            .map(|n| match n {
                Node::Element(e) => e.text(),
                Node::Text(t) | Node::CData(t) => t.clone(),
            })
            .collect();
        assert_eq!(text, "one twothree fourfive");
    }

    #[test]
    fn deep_nesting_is_capped_and_keeps_text() {
        let depth = MAX_DEPTH * 4;
        let xml = format!("{}deep{}", "<div>".repeat(depth), "</div>".repeat(depth));
        let nodes = parse(&xml);
        assert_eq!(el(&nodes, 0).text(), "deep");
    }
}
