//! Golden tests: storage-format samples from Confluence's documentation, each naming its page,
//! rendered to the exact Markdown we promise. "Storage format" below is
//! https://confluence.atlassian.com/doc/confluence-storage-format-790796544.html; macro samples
//! come from the macro's own page, linked from there.

mod common;

use common::Book;
use documents::{NoResolver, storage_to_markdown};

fn md(xhtml: &str) -> String {
    storage_to_markdown(xhtml, &Book)
}

#[test]
fn headings_and_paragraphs() {
    // Storage format: Headings, Text breaks (new paragraph, line break, horizontal rule).
    let got = md(
        "<h1>Heading 1</h1><h2>Heading 2</h2><p>Paragraph 1</p><p>Paragraph 2</p><p>Line 1<br />Line 2</p><hr />",
    );
    assert_eq!(
        got,
        "# Heading 1\n\n## Heading 2\n\nParagraph 1\n\nParagraph 2\n\nLine 1\\\nLine 2\n\n---\n"
    );
}

#[test]
fn text_effects() {
    // Storage format: Text effects.
    let got = md(concat!(
        "<p><strong>strong text</strong> <em>Italics Text</em> ",
        "<span style=\"text-decoration: line-through;\">strikethrough</span> <u>underline</u> ",
        "<sup>superscript</sup> <sub>subscript</sub> <code>monospaced</code> ",
        "<span style=\"color: rgb(255,0,0);\">red text</span> <small>small text</small></p>",
        "<pre>preformatted text</pre>",
        "<blockquote><p>block quote</p></blockquote>"
    ));
    assert_eq!(
        got,
        "**strong text** *Italics Text* ~~strikethrough~~ <u>underline</u> <sup>superscript</sup> \
         <sub>subscript</sub> `monospaced` red text small text\n\n```\npreformatted text\n```\n\n> block quote\n"
    );
}

#[test]
fn html_entities_are_text() {
    // Storage format: Text breaks (— and – symbols written as &mdash; and &ndash;); &nbsp; is
    // what the editor writes for a non-breaking space.
    assert_eq!(
        md("<p>a&nbsp;&mdash;&nbsp;b &ndash; c &amp; d&rsquo;s</p>"),
        "a \u{2014} b \u{2013} c & d\u{2019}s\n"
    );
}

#[test]
fn lists_nested_and_ordered() {
    // Storage format: Lists (unordered, ordered, and a nested list inside an item).
    let got = md(concat!(
        "<ul><li>round bullet list item<ul><li>nested item</li></ul></li><li>second</li></ul>",
        "<ol><li>numbered list item</li><li>another</li></ol>"
    ));
    assert_eq!(
        got,
        "- round bullet list item\n  - nested item\n- second\n\n1. numbered list item\n2. another\n"
    );
}

#[test]
fn task_lists() {
    // Storage format: Task lists.
    let got = md(concat!(
        "<ac:task-list>",
        "<ac:task><ac:task-status>incomplete</ac:task-status><ac:task-body>task list item</ac:task-body></ac:task>",
        "<ac:task><ac:task-status>complete</ac:task-status><ac:task-body>done item</ac:task-body></ac:task>",
        "</ac:task-list>"
    ));
    assert_eq!(got, "- [ ] task list item\n- [x] done item\n");
}

#[test]
fn links_to_pages_attachments_and_sites() {
    // Storage format: Links (to another page, to an attachment, to an external site, anchor).
    let got = md(concat!(
        "<p><ac:link><ri:page ri:content-title=\"Page Title\" /><ac:plain-text-link-body><![CDATA[Link to another Confluence Page]]></ac:plain-text-link-body></ac:link></p>",
        "<p><ac:link><ri:attachment ri:filename=\"atlassian_logo.gif\" /><ac:plain-text-link-body><![CDATA[Link to a Confluence Attachment]]></ac:plain-text-link-body></ac:link></p>",
        "<p><a href=\"http://www.atlassian.com\">Atlassian</a></p>",
        "<p><ac:link ac:anchor=\"anchor\"><ac:plain-text-link-body><![CDATA[Anchor Link]]></ac:plain-text-link-body></ac:link></p>",
        "<p><ac:link><ri:page ri:content-title=\"Home\" ri:space-key=\"SANDBOX\" /><ac:link-body>Some <strong>Rich</strong> Text</ac:link-body></ac:link></p>"
    ));
    assert_eq!(
        got,
        "[Link to another Confluence Page](https://example.atlassian.net/wiki/spaces/DOC/pages/123)\n\n\
         [Link to a Confluence Attachment](attachments/20001/atlassian_logo.gif)\n\n\
         [Atlassian](http://www.atlassian.com)\n\n\
         Anchor Link\n\n\
         *Some **Rich** Text*\n"
    );
}

#[test]
fn images_are_links_to_the_exported_attachment() {
    // Storage format: Images (an attached image, an external image); an image attached to
    // another page (ri:page inside ri:attachment) the export did not write.
    let got = md(concat!(
        "<p><ac:image><ri:attachment ri:filename=\"atlassian_logo.gif\" /></ac:image></p>",
        "<p><ac:image ac:alt=\"Confluence logo\"><ri:url ri:value=\"http://confluence.atlassian.com/images/logo/confluence_48_trans.png\" /></ac:image></p>",
        "<p><ac:image><ri:attachment ri:filename=\"atlassian_logo.gif\"><ri:page ri:content-title=\"Other Page\" /></ri:attachment></ac:image></p>"
    ));
    assert_eq!(
        got,
        "[atlassian_logo.gif](attachments/20001/atlassian_logo.gif)\n\n\
         [Confluence logo](http://confluence.atlassian.com/images/logo/confluence_48_trans.png)\n\n\
         (attachment: atlassian_logo.gif)\n"
    );
}

#[test]
fn tables_with_merged_cells_are_flattened() {
    // Storage format: Tables (two-column table with heading cells; merged cells).
    let got = md(concat!(
        "<table><tbody>",
        "<tr><th>Table Heading Cell 1</th><th>Table Heading Cell 2</th></tr>",
        "<tr><td rowspan=\"2\">Merged Cell</td><td>Normal Cell 1</td></tr>",
        "<tr><td colspan=\"1\">Normal Cell 2</td></tr>",
        "<tr><td colspan=\"2\"><p>Wide</p><p>two paragraphs</p></td></tr>",
        "</tbody></table>"
    ));
    assert_eq!(
        got,
        "| Table Heading Cell 1 | Table Heading Cell 2 |\n| --- | --- |\n\
         | Merged Cell | Normal Cell 1 |\n| Merged Cell | Normal Cell 2 |\n| Wide<br>two paragraphs | |\n"
    );
}

#[test]
fn code_macro_keeps_language_and_cdata() {
    // Code Block Macro page (storage format example with all parameters):
    // https://confluence.atlassian.com/doc/code-block-macro-139390.html
    let got = md(concat!(
        "<ac:structured-macro ac:name=\"code\">",
        "<ac:parameter ac:name=\"title\">This is my title</ac:parameter>",
        "<ac:parameter ac:name=\"theme\">FadeToGrey</ac:parameter>",
        "<ac:parameter ac:name=\"linenumbers\">true</ac:parameter>",
        "<ac:parameter ac:name=\"language\">xml</ac:parameter>",
        "<ac:parameter ac:name=\"firstline\">0001</ac:parameter>",
        "<ac:parameter ac:name=\"collapse\">true</ac:parameter>",
        "<ac:plain-text-body><![CDATA[<b>This is my code</b>]]></ac:plain-text-body>",
        "</ac:structured-macro>"
    ));
    assert_eq!(got, "```xml\n<b>This is my code</b>\n```\n");
}

#[test]
fn info_note_warning_tip_panels() {
    // Info, Tip, Note, and Warning Macros page:
    // https://confluence.atlassian.com/doc/info-tip-note-and-warning-macros-51872369.html
    let got = md(concat!(
        "<ac:structured-macro ac:name=\"info\">",
        "<ac:parameter ac:name=\"icon\">false</ac:parameter>",
        "<ac:parameter ac:name=\"title\">This is my title</ac:parameter>",
        "<ac:rich-text-body><p>This is important information.</p></ac:rich-text-body>",
        "</ac:structured-macro>"
    ));
    assert_eq!(
        got,
        "> **Info: This is my title** This is important information.\n"
    );
    for (name, label) in [("note", "Note"), ("warning", "Warning"), ("tip", "Tip")] {
        let xhtml = format!(
            "<ac:structured-macro ac:name=\"{name}\"><ac:rich-text-body><p>Body</p><ul><li>point</li></ul></ac:rich-text-body></ac:structured-macro>"
        );
        assert_eq!(md(&xhtml), format!("> **{label}:** Body\n>\n> - point\n"));
    }
}

#[test]
fn expand_macro_shows_its_body() {
    // Expand Macro page: https://confluence.atlassian.com/doc/expand-macro-223222352.html
    let got = md(concat!(
        "<ac:structured-macro ac:name=\"expand\">",
        "<ac:parameter ac:name=\"title\">Expand me...</ac:parameter>",
        "<ac:rich-text-body><p>This text is <em>hidden</em> until you expand it.</p></ac:rich-text-body>",
        "</ac:structured-macro>"
    ));
    assert_eq!(
        got,
        "**Expand me...**\n\nThis text is *hidden* until you expand it.\n"
    );
}

#[test]
fn jira_and_status_macros_are_inline() {
    // Jira Issues Macro page (single issue by key):
    // https://confluence.atlassian.com/doc/jira-issues-macro-139380.html
    // Status Macro page: https://confluence.atlassian.com/doc/status-macro-223222355.html
    let got = md(concat!(
        "<p>Fixed in <ac:structured-macro ac:name=\"jira\">",
        "<ac:parameter ac:name=\"columns\">key,summary,type,created,updated,due,assignee,reporter,priority,status,resolution</ac:parameter>",
        "<ac:parameter ac:name=\"server\">Your Company JIRA</ac:parameter>",
        "<ac:parameter ac:name=\"key\">CONF-1234</ac:parameter>",
        "</ac:structured-macro> which is ",
        "<ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"colour\">Green</ac:parameter>",
        "<ac:parameter ac:name=\"title\">On track</ac:parameter><ac:parameter ac:name=\"subtle\">true</ac:parameter>",
        "</ac:structured-macro></p>"
    ));
    assert_eq!(
        got,
        "Fixed in [CONF-1234](https://example.atlassian.net/browse/CONF-1234) which is `On track`\n"
    );
}

#[test]
fn toc_and_children_render_as_nothing() {
    // Table of Contents Macro and Children Display Macro pages (storage format examples).
    let got = md(concat!(
        "<ac:structured-macro ac:name=\"toc\"><ac:parameter ac:name=\"style\">square</ac:parameter>",
        "<ac:parameter ac:name=\"maxLevel\">2</ac:parameter></ac:structured-macro>",
        "<p>Body</p>",
        "<ac:structured-macro ac:name=\"children\"><ac:parameter ac:name=\"all\">true</ac:parameter></ac:structured-macro>"
    ));
    assert_eq!(got, "Body\n");
}

#[test]
fn attachment_viewer_macro_links_to_the_attachment() {
    // View File Macro page: the name parameter holds an ri:attachment.
    let got = md(concat!(
        "<ac:structured-macro ac:name=\"view-file\"><ac:parameter ac:name=\"name\">",
        "<ri:attachment ri:filename=\"design.pdf\" /></ac:parameter>",
        "<ac:parameter ac:name=\"height\">250</ac:parameter></ac:structured-macro>"
    ));
    assert_eq!(got, "[design.pdf](attachments/20002/design.pdf)\n");
}

#[test]
fn user_mention_renders_as_the_display_name_never_the_id() {
    // Storage format: Resource identifiers, User (Cloud: ri:account-id).
    let xhtml = "<p>Ping <ac:link><ri:user ri:account-id=\"557058:f58131cb-b67d-43c7-b30d-6b58d40bd077\" /></ac:link> now</p>";
    assert_eq!(md(xhtml), "Ping @Ada Lovelace now\n");
    let unknown = storage_to_markdown(xhtml, &NoResolver);
    assert_eq!(unknown, "Ping @unknown user now\n");
    assert!(!unknown.contains("557058"));
}

#[test]
fn emoticons_and_dates() {
    // Storage format: Emoticons; Cloud adds the emoji attributes. Date: <time datetime>.
    let got = md(concat!(
        "<p><ac:emoticon ac:name=\"smile\" /> ",
        "<ac:emoticon ac:name=\"blue-star\" ac:emoji-shortname=\":star:\" ac:emoji-id=\"2b50\" ac:emoji-fallback=\"\u{2b50}\" /> ",
        "<time datetime=\"2024-05-01\" /></p>"
    ));
    assert_eq!(got, ":smile: \u{2b50} 2024-05-01\n");
}

#[test]
fn page_layouts_keep_their_content() {
    // Storage format: Page layouts (ac:layout, ac:layout-section, ac:layout-cell).
    let got = md(concat!(
        "<ac:layout><ac:layout-section ac:type=\"two_equal\">",
        "<ac:layout-cell><p>Left</p></ac:layout-cell><ac:layout-cell><p>Right</p></ac:layout-cell>",
        "</ac:layout-section></ac:layout>"
    ));
    assert_eq!(got, "Left\n\nRight\n");
}

#[test]
fn unknown_elements_and_macros_keep_their_text() {
    let got = md(concat!(
        "<ac:future-element><p>inside a future element</p></ac:future-element>",
        "<p>inline <x-thing>wrapped</x-thing> text</p>",
        "<ac:structured-macro ac:name=\"future-macro\"><ac:rich-text-body><p>macro body</p></ac:rich-text-body></ac:structured-macro>",
        "<ac:structured-macro ac:name=\"plain-macro\"><ac:plain-text-body><![CDATA[plain body]]></ac:plain-text-body></ac:structured-macro>"
    ));
    assert_eq!(
        got,
        "inside a future element\n\ninline wrapped text\n\nmacro body\n\n```\nplain body\n```\n"
    );
}

#[test]
fn deeply_nested_markup_renders_without_exhausting_the_stack() {
    // Hostile nesting: 5,000 lists, quotes and panels deep; the text at the bottom survives.
    let depth = 5000;
    let lists = format!(
        "{}deep list{}",
        "<ul><li>".repeat(depth),
        "</li></ul>".repeat(depth)
    );
    assert!(md(&lists).contains("deep list"));
    let quotes = format!(
        "{}deep quote{}",
        "<blockquote><ac:structured-macro ac:name=\"info\"><ac:rich-text-body>".repeat(depth),
        "</ac:rich-text-body></ac:structured-macro></blockquote>".repeat(depth)
    );
    assert!(md(&quotes).contains("deep quote"));
}
