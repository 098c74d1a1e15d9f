//! Confluence JSON: v1 content (respecting `expand`), search results, v1/v2 attachments, v2
//! pages, and page bodies in storage (XHTML with macros and user mentions), view and ADF.
//!
//! Shapes: v1 `Content`, `SearchResult` and `User` schemas, with `_expandable` for what was not
//! expanded and `_links` relative to `_links.base` (the site's `/wiki` URL, not the gateway), per
//! the v1 OpenAPI document and its examples; v2 `PageSingle`/`AttachmentBulk` (`downloadLink`,
//! `webuiLink`, `authorId`, `ownerId`) per the v2 document. Storage format: XHTML with `ac:`
//! macros and `<ri:user ri:account-id=…/>` mentions
//! (https://confluence.atlassian.com/doc/confluence-storage-format-790796544.html).
//! `_links.download` points at the
//! deprecated `/wiki/download/attachments/…` servlet as Cloud still does (see `api::download`).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::cql::Item;
use super::{Attachment, ConfluenceState, ContentKind, HEAVY_BODY_BYTES, Page, comments};
use crate::fake::adf;
use crate::fake::params::encode_segment;
use crate::fake::rng::SeedRng;
use crate::fake::seed::{self, SENTENCES};
use crate::fake::site::SiteContext;
use crate::fake::timefmt;

/// The v1 `expand` list, normalised (`content.` prefixes of `/rest/api/search` stripped).
#[derive(Clone, Debug, Default)]
pub(crate) struct Expand(BTreeSet<String>);

impl Expand {
    pub(crate) fn parse(values: &[String], strip_content_prefix: bool) -> Self {
        let mut set = BTreeSet::new();
        for v in values {
            let v = if strip_content_prefix {
                match v.strip_prefix("content.") {
                    Some(rest) => rest,
                    None => continue,
                }
            } else {
                v.as_str()
            };
            set.insert(v.to_owned());
        }
        Self(set)
    }

    pub(crate) fn has(&self, what: &str) -> bool {
        self.0.contains(what)
    }

    /// Any `body.*` expansion (the server then caps the page size lower).
    pub(crate) fn any_body(&self) -> bool {
        self.0.iter().any(|e| e.starts_with("body."))
    }
}

fn slug(title: &str) -> String {
    url::form_urlencoded::byte_serialize(title.as_bytes()).collect()
}

pub(crate) fn space_json(s: &ConfluenceState, ctx: &SiteContext, space: usize) -> Value {
    let sp = &s.spaces[space];
    json!({
        "id": sp.id,
        "key": sp.key,
        "name": sp.name,
        "type": "global",
        "status": "current",
        "_links": { "webui": format!("/spaces/{}", sp.key), "self": format!("{}/rest/api/space/{}", ctx.wiki_base(), sp.key) },
    })
}

pub(crate) fn page_links(s: &ConfluenceState, ctx: &SiteContext, p: &Page) -> Value {
    let kind = if p.kind == ContentKind::BlogPost {
        "blog"
    } else {
        "pages"
    };
    json!({
        "webui": format!("/spaces/{}/{kind}/{}/{}", s.spaces[p.space].key, p.id, slug(&p.title)),
        "edit": format!("/pages/resumedraft.action?draftId={}", p.id),
        "tinyui": format!("/x/{}", tiny(p.id)),
        "self": format!("{}/rest/api/content/{}", ctx.wiki_base(), p.id),
    })
}

fn tiny(id: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        id.to_le_bytes()
            .iter()
            .take_while(|b| **b != 0)
            .copied()
            .collect::<Vec<u8>>(),
    )
}

pub(crate) fn version_json(
    ctx: &SiteContext,
    number: u32,
    by: usize,
    when: time::OffsetDateTime,
    self_url: String,
) -> Value {
    json!({
        "by": ctx.users.confluence_json(by, &ctx.wiki_base()),
        "when": timefmt::confluence(when),
        "friendlyWhen": timefmt::friendly(when),
        "message": "",
        "number": number,
        "minorEdit": false,
        "_links": { "self": self_url },
    })
}

/// v1 content for a page or blog post, with only the requested expansions.
pub(crate) fn page_v1(
    s: &ConfluenceState,
    ctx: &SiteContext,
    idx: usize,
    expand: &Expand,
) -> Value {
    let p = &s.pages[idx];
    let wiki = ctx.wiki_base();
    let mut out = Map::new();
    out.insert("id".into(), json!(p.id.to_string()));
    out.insert("type".into(), json!(p.kind.as_str()));
    out.insert("status".into(), json!("current"));
    out.insert("title".into(), json!(p.title));
    out.insert("macroRenderedOutput".into(), json!({}));
    out.insert("extensions".into(), json!({ "position": p.position }));
    let mut expandable = Map::new();
    let mut maybe = |name: &str, expandable_value: Value, render: &dyn Fn() -> Value| {
        if expand.has(name) {
            out.insert(name.into(), render());
        } else {
            expandable.insert(name.into(), expandable_value);
        }
    };
    maybe(
        "space",
        json!(format!("/rest/api/space/{}", s.spaces[p.space].key)),
        &|| space_json(s, ctx, p.space),
    );
    maybe(
        "container",
        json!(format!("/rest/api/space/{}", s.spaces[p.space].key)),
        &|| space_json(s, ctx, p.space),
    );
    maybe("version", json!(""), &|| {
        version_json(
            ctx,
            p.version,
            p.modifier,
            p.modified,
            format!("{wiki}/rest/api/content/{}/version/{}", p.id, p.version),
        )
    });
    maybe(
        "history",
        json!(format!("/rest/api/content/{}/history", p.id)),
        &|| {
            let mut h = json!({
                "latest": true,
                "createdBy": ctx.users.confluence_json(p.creator, &wiki),
                "ownedBy": ctx.users.confluence_json(p.creator, &wiki),
                "createdDate": timefmt::confluence(p.created),
                "_links": { "self": format!("{wiki}/rest/api/content/{}/history", p.id) },
            });
            if expand.has("history.lastUpdated")
                && let Some(obj) = h.as_object_mut()
            {
                obj.insert(
                    "lastUpdated".into(),
                    version_json(
                        ctx,
                        p.version,
                        p.modifier,
                        p.modified,
                        format!("{wiki}/rest/api/content/{}/version/{}", p.id, p.version),
                    ),
                );
            }
            h
        },
    );
    maybe("ancestors", json!(""), &|| {
        Value::Array(
            s.ancestors(idx)
                .into_iter()
                .map(|a| {
                    let q = &s.pages[a];
                    json!({
                        "id": q.id.to_string(),
                        "type": q.kind.as_str(),
                        "status": "current",
                        "title": q.title,
                        "_links": page_links(s, ctx, q),
                    })
                })
                .collect(),
        )
    });
    if expand.any_body() {
        let mut body = Map::new();
        if expand.has("body.storage") {
            body.insert("storage".into(), json!({ "value": storage(s, ctx, idx), "representation": "storage", "embeddedContent": [] }));
        }
        if expand.has("body.view") || expand.has("body.export_view") {
            body.insert(
                "view".into(),
                json!({ "value": view(s, ctx, idx), "representation": "view" }),
            );
        }
        if expand.has("body.atlas_doc_format") {
            body.insert(
                "atlas_doc_format".into(),
                json!({ "value": adf::document(p.seed, &ctx.users).to_string(), "representation": "atlas_doc_format" }),
            );
        }
        out.insert("body".into(), Value::Object(body));
    } else {
        expandable.insert("body".into(), json!(""));
    }
    for name in [
        "children",
        "descendants",
        "restrictions",
        "metadata",
        "operations",
    ] {
        expandable.insert(name.into(), json!(""));
    }
    out.insert("_expandable".into(), Value::Object(expandable));
    out.insert("_links".into(), page_links(s, ctx, p));
    Value::Object(out)
}

/// The site-relative (to `/wiki`) download link of an attachment.
pub(crate) fn download_link(s: &ConfluenceState, a: &Attachment) -> String {
    let page = &s.pages[a.page];
    format!(
        "/download/attachments/{}/{}?version=1&modificationDate={}&cacheVersion=1&api=v2",
        page.id,
        encode_segment(&a.title),
        a.created.unix_timestamp() * 1000
    )
}

fn media_type_description(mime: &str) -> &'static str {
    match mime {
        "image/png" => "PNG Image",
        "application/pdf" => "PDF Document",
        "text/plain" => "Text File",
        "application/zip" => "Zip Archive",
        _ => "File",
    }
}

fn webui_attachment(s: &ConfluenceState, a: &Attachment) -> String {
    let page = &s.pages[a.page];
    format!(
        "/pages/viewpageattachments.action?pageId={}&preview=%2F{}%2F{}%2F{}",
        page.id,
        page.id,
        a.id,
        encode_segment(&a.title)
    )
}

/// v1 content for an attachment (child attachment lists and CQL hits).
pub(crate) fn attachment_v1(
    s: &ConfluenceState,
    ctx: &SiteContext,
    idx: usize,
    expand: &Expand,
) -> Value {
    let a = &s.attachments[idx];
    let wiki = ctx.wiki_base();
    let page = &s.pages[a.page];
    let mut v = json!({
        "id": a.public_id(),
        "type": "attachment",
        "status": "current",
        "title": a.title,
        "metadata": { "mediaType": a.mime, "comment": "" },
        "extensions": {
            "mediaType": a.mime,
            "fileSize": a.size,
            "comment": "",
            "mediaTypeDescription": media_type_description(a.mime),
            "fileId": a.file_id,
        },
        "version": version_json(ctx, 1, a.author, a.created, format!("{wiki}/rest/api/content/{}/version/1", a.public_id())),
        "_links": {
            "webui": webui_attachment(s, a),
            "download": download_link(s, a),
            "self": format!("{wiki}/rest/api/content/{}", a.public_id()),
        },
        "_expandable": { "space": format!("/rest/api/space/{}", s.spaces[page.space].key) },
    });
    if let Some(obj) = v.as_object_mut() {
        if expand.has("container") {
            obj.insert(
                "container".into(),
                json!({ "id": page.id.to_string(), "type": page.kind.as_str(), "title": page.title, "_links": page_links(s, ctx, page) }),
            );
        }
        if expand.has("space") {
            obj.insert("space".into(), space_json(s, ctx, page.space));
        }
    }
    v
}

/// A `/rest/api/search` result wrapping its content.
pub(crate) fn search_result(
    s: &ConfluenceState,
    ctx: &SiteContext,
    item: Item,
    expand: &Expand,
) -> Value {
    let (content, title, url, space, modified) = match item {
        Item::Page(i) => {
            let p = &s.pages[i];
            let url = page_links(s, ctx, p)["webui"].clone();
            (
                page_v1(s, ctx, i, expand),
                p.title.clone(),
                url,
                p.space,
                p.modified,
            )
        }
        Item::Attachment(a) => {
            let at = &s.attachments[a];
            (
                attachment_v1(s, ctx, a, expand),
                at.title.clone(),
                json!(webui_attachment(s, at)),
                s.pages[at.page].space,
                at.created,
            )
        }
        Item::Comment(c) => {
            let content = comments::comment_v1(s, ctx, c, expand);
            let url = content["_links"]["webui"].clone();
            let title = content["title"].as_str().unwrap_or_default().to_owned();
            let cm = &s.comments[c];
            (content, title, url, s.pages[cm.page].space, cm.created)
        }
    };
    let sp = &s.spaces[space];
    let kind = content["type"].as_str().unwrap_or("page").to_owned();
    json!({
        "content": content,
        "title": title,
        "excerpt": SENTENCES[(modified.unix_timestamp().unsigned_abs() % SENTENCES.len() as u64) as usize],
        "url": url,
        "resultGlobalContainer": { "title": sp.name, "displayUrl": format!("/spaces/{}", sp.key) },
        "breadcrumbs": [],
        "entityType": "content",
        "iconCssClass": format!("aui-icon content-type-{kind}"),
        "lastModified": timefmt::confluence(modified),
        "friendlyLastModified": timefmt::friendly(modified),
        "score": 0.0,
    })
}

/// v2 page (or blog post) with the requested body format.
pub(crate) fn page_v2(
    s: &ConfluenceState,
    ctx: &SiteContext,
    idx: usize,
    body_format: Option<&str>,
) -> Value {
    let p = &s.pages[idx];
    let users = &ctx.users;
    let mut body = Map::new();
    match body_format {
        Some("storage") => {
            body.insert(
                "storage".into(),
                json!({ "representation": "storage", "value": storage(s, ctx, idx) }),
            );
        }
        Some("atlas_doc_format") => {
            body.insert(
                "atlas_doc_format".into(),
                json!({ "representation": "atlas_doc_format", "value": adf::document(p.seed, users).to_string() }),
            );
        }
        Some("view") | Some("export_view") | Some("anonymous_export_view") => {
            body.insert(
                "view".into(),
                json!({ "representation": "view", "value": view(s, ctx, idx) }),
            );
        }
        _ => {}
    }
    let links = page_links(s, ctx, p);
    let mut v = json!({
        "id": p.id.to_string(),
        "status": "current",
        "title": p.title,
        "spaceId": s.spaces[p.space].id.to_string(),
        "authorId": users.get(p.creator).account_id,
        "ownerId": users.get(p.creator).account_id,
        "lastOwnerId": null,
        "createdAt": timefmt::confluence(p.created),
        "version": {
            "number": p.version,
            "message": "",
            "minorEdit": false,
            "authorId": users.get(p.modifier).account_id,
            "createdAt": timefmt::confluence(p.modified),
        },
        "body": body,
        "_links": { "webui": links["webui"], "editui": links["edit"], "tinyui": links["tinyui"], "base": ctx.wiki_base() },
    });
    if p.kind == ContentKind::Page
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            "parentId".into(),
            json!(p.parent.map(|q| s.pages[q].id.to_string())),
        );
        obj.insert("parentType".into(), json!(p.parent.map(|_| "page")));
        obj.insert("position".into(), json!(p.position));
    }
    v
}

/// v2 attachment.
pub(crate) fn attachment_v2(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> Value {
    let a = &s.attachments[idx];
    let page = &s.pages[a.page];
    json!({
        "id": a.public_id(),
        "status": "current",
        "title": a.title,
        "createdAt": timefmt::confluence(a.created),
        "pageId": page.id.to_string(),
        "blogPostId": null,
        "customContentId": null,
        "mediaType": a.mime,
        "mediaTypeDescription": media_type_description(a.mime),
        "comment": "",
        "fileId": a.file_id,
        "fileSize": a.size,
        "webuiLink": webui_attachment(s, a),
        "downloadLink": download_link(s, a),
        "version": {
            "number": 1,
            "message": "",
            "minorEdit": false,
            "authorId": ctx.users.get(a.author).account_id,
            "createdAt": timefmt::confluence(a.created),
        },
        "_links": { "webui": webui_attachment(s, a), "download": download_link(s, a) },
    })
}

/// Escapes text for XML content and attributes; control characters become numeric references
/// (NUL, invalid in XML, becomes U+FFFD).
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\0' => out.push('\u{FFFD}'),
            c if c.is_control() => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The page body in storage format: headings, paragraphs, an info macro, a code macro, a table,
/// links to the parent page and the page's attachments, and user mentions.
pub(crate) fn storage(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> String {
    let p = &s.pages[idx];
    let mut rng = SeedRng::derive(p.seed, "storage", 0);
    let n = ctx.users.len().max(1);
    let mention = |i: usize| {
        format!(
            "<ac:link><ri:user ri:account-id=\"{}\" /></ac:link>",
            xml(&ctx.users.get(i).account_id)
        )
    };
    let mut out = format!("<h1>{}</h1>", xml(&p.title));
    out.push_str(&format!(
        "<p>Owner: {} — {}</p>",
        mention(p.creator),
        xml(seed::sentence(&mut rng))
    ));
    out.push_str(&format!(
        "<ac:structured-macro ac:name=\"info\" ac:schema-version=\"1\" ac:macro-id=\"{}\"><ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
        rng.uuid(),
        xml(seed::sentence(&mut rng))
    ));
    if let Some(parent) = p.parent {
        out.push_str(&format!(
            "<p>Part of <ac:link><ri:page ri:content-title=\"{}\" /></ac:link>.</p>",
            xml(&s.pages[parent].title)
        ));
    }
    out.push_str("<table><tbody><tr><th>Field</th><th>Value</th></tr>");
    for _ in 0..rng.range(1, 3) {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            xml(seed::sentence(&mut rng)),
            mention(rng.index(n))
        ));
    }
    out.push_str("</tbody></table>");
    out.push_str(
        "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:parameter ac:name=\"language\">rust</ac:parameter>\
         <ac:plain-text-body><![CDATA[if status == 429 { sleep(retry_after) }]]></ac:plain-text-body></ac:structured-macro>",
    );
    for a in &p.attachments {
        out.push_str(&format!(
            "<p><ac:link><ri:attachment ri:filename=\"{}\" /></ac:link></p>",
            xml(&s.attachments[*a].title)
        ));
    }
    // The passages inline comments annotate, wrapped in their markers as the editor stores them
    // (https://confluence.atlassian.com/doc/confluence-storage-format-790796544.html).
    for c in &p.comments {
        let c = &s.comments[*c];
        if let (Some((marker, text)), None) = (&c.marker, c.parent) {
            out.push_str(&format!(
                "<p><ac:inline-comment-marker ac:ref=\"{}\">{}</ac:inline-comment-marker></p>",
                xml(marker),
                xml(text)
            ));
        }
    }
    if p.heavy > 0 {
        // A long code block: what makes real pages heavy to expand (pasted logs, big tables).
        out.push_str("<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:plain-text-body><![CDATA[");
        let line = "2024-01-01T00:00:00Z INFO heavy page padding line for the fake Confluence\n";
        while out.len() < HEAVY_BODY_BYTES * usize::from(p.heavy) {
            out.push_str(line);
        }
        out.push_str("]]></ac:plain-text-body></ac:structured-macro>");
    }
    out.push_str(&format!(
        "<p>Thanks {}! <ac:emoticon ac:name=\"smile\" /></p>",
        mention(rng.index(n))
    ));
    out
}

/// The body as rendered HTML (`view`): mentions become profile links carrying the account id.
pub(crate) fn view(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> String {
    let p = &s.pages[idx];
    let u = ctx.users.get(p.creator);
    format!(
        "<h1>{}</h1><p>Owner: <a href=\"/wiki/people/{id}\" data-account-id=\"{id}\" class=\"confluence-userlink user-mention\">{}</a></p>",
        xml(&p.title),
        xml(&u.display_name),
        id = xml(&u.account_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_handles_markup_and_controls() {
        assert_eq!(
            xml("a<b>&\"'\0\n"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}&#10;"
        );
    }

    #[test]
    fn expand_strips_content_prefix_for_search() {
        let e = Expand::parse(&["content.body.storage".into(), "space".into()], true);
        assert!(e.any_body() && e.has("body.storage") && !e.has("space"));
    }
}
