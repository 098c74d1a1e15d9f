//! Comments of the fake Confluence: footer comments with replies and inline comments (anchored
//! to a passage of the page body by an `<ac:inline-comment-marker>`) with replies, on pages and
//! blog posts; each mentions a user by account id (a reply whom it answers, a top-level comment
//! the page's owner). Rendered as v1 content (CQL search hits).
//!
//! Shapes follow the v1 content model for comments
//! (https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content---children-and-descendants/#api-wiki-rest-api-content-id-child-comment-get):
//! `extensions.location` is `footer` or `inline`; `extensions.inlineProperties` (`markerRef`,
//! `originalSelection`: the annotated text) and `extensions.resolution` come only when expanded
//! (atlassian-python-api `get_page_by_id` docs: "extensions.inlineProperties (for getting inline
//! comment-specific properties) or extensions.resolution"); `ancestors` of a reply are its parent
//! comments, root first, and `container` is the page (pchuri/confluence-cli's comment tests send
//! and read exactly these fields).

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::render::{self, Expand};
use super::{ConfluenceState, ContentKind};
use crate::fake::rng::SeedRng;
use crate::fake::seed;
use crate::fake::site::SiteContext;
use crate::fake::timefmt;

/// Comment ids start here (content ids share one number space in Confluence).
const FIRST_COMMENT_ID: u64 = 5_000_001;

#[derive(Debug)]
pub(crate) struct Comment {
    pub id: u64,
    pub page: usize,
    /// The comment this one replies to (an index into the comments).
    pub parent: Option<usize>,
    pub inline: bool,
    /// An inline comment's (marker ref, annotated passage); replies share their root's.
    pub marker: Option<(String, String)>,
    pub author: usize,
    pub mentioned: usize,
    pub created: OffsetDateTime,
    pub text: &'static str,
}

/// The seeded comments on one page in `every` (the first included): footer A, footer B, a
/// reply to A, inline C on a passage of the body, a reply to C.
pub(super) fn generate(state: &mut ConfluenceState, every: usize, seed: u64, users: usize) {
    if every == 0 {
        return;
    }
    // (parent within the page's comments, inline)
    const PLAN: [(Option<usize>, bool); 5] = [
        (None, false),
        (None, false),
        (Some(0), false),
        (None, true),
        (Some(3), true),
    ];
    for page in (0..state.pages.len()).step_by(every) {
        let mut rng = SeedRng::derive(seed, "confluence-comments", page as u64);
        let first = state.comments.len();
        let created = state.pages[page].created;
        for (k, (parent, inline)) in PLAN.iter().enumerate() {
            let idx = state.comments.len();
            let parent = parent.map(|p| first + p);
            let marker = match (inline, parent) {
                (true, None) => Some((rng.uuid(), seed::sentence(&mut rng).to_owned())),
                (true, Some(p)) => state.comments[p].marker.clone(),
                (false, _) => None,
            };
            state.comments.push(Comment {
                id: FIRST_COMMENT_ID + idx as u64,
                page,
                parent,
                inline: *inline,
                marker,
                author: rng.index(users),
                // Replies mention whom they answer, top-level comments the page's owner.
                mentioned: parent.map_or(state.pages[page].creator, |p| state.comments[p].author),
                created: created + Duration::minutes(7 * (k as i64 + 1) + rng.range(0, 5) as i64),
                text: seed::sentence(&mut rng),
            });
            state.pages[page].comments.push(idx);
        }
    }
}

/// Parent comments of `idx`, root first.
pub(crate) fn thread(s: &ConfluenceState, idx: usize) -> Vec<usize> {
    let mut chain = Vec::new();
    let mut at = s.comments[idx].parent;
    while let Some(p) = at {
        if chain.contains(&p) {
            break;
        }
        chain.push(p);
        at = s.comments[p].parent;
    }
    chain.reverse();
    chain
}

/// The comment body in storage format: a sentence and a user mention.
pub(crate) fn storage(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> String {
    let c = &s.comments[idx];
    format!(
        "<p>{} <ac:link><ri:user ri:account-id=\"{}\" /></ac:link></p>",
        render::xml(c.text),
        render::xml(&ctx.users.get(c.mentioned).account_id)
    )
}

fn summary(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> Value {
    let c = &s.comments[idx];
    json!({
        "id": c.id.to_string(),
        "type": ContentKind::Comment.as_str(),
        "status": "current",
        "title": title(s, idx),
        "_links": links(s, ctx, idx),
    })
}

fn title(s: &ConfluenceState, idx: usize) -> String {
    format!("Re: {}", s.pages[s.comments[idx].page].title)
}

fn links(s: &ConfluenceState, ctx: &SiteContext, idx: usize) -> Value {
    let c = &s.comments[idx];
    let page = render::page_links(s, ctx, &s.pages[c.page]);
    let webui = page["webui"].as_str().unwrap_or_default();
    json!({
        "webui": format!("{webui}?focusedCommentId={id}#comment-{id}", id = c.id),
        "self": format!("{}/rest/api/content/{}", ctx.wiki_base(), c.id),
    })
}

/// v1 content for a comment, with only the requested expansions.
pub(crate) fn comment_v1(
    s: &ConfluenceState,
    ctx: &SiteContext,
    idx: usize,
    expand: &Expand,
) -> Value {
    let c = &s.comments[idx];
    let page = &s.pages[c.page];
    let wiki = ctx.wiki_base();
    let mut extensions = Map::new();
    extensions.insert(
        "location".into(),
        json!(if c.inline { "inline" } else { "footer" }),
    );
    if c.inline
        && expand.has("extensions.inlineProperties")
        && let Some((marker, selection)) = &c.marker
    {
        extensions.insert(
            "inlineProperties".into(),
            json!({ "markerRef": marker, "originalSelection": selection }),
        );
    }
    if c.inline && expand.has("extensions.resolution") {
        extensions.insert(
            "resolution".into(),
            json!({
                "status": "open",
                "lastModifier": ctx.users.confluence_json(c.author, &wiki),
                "lastModifiedDate": timefmt::confluence(c.created),
            }),
        );
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(c.id.to_string()));
    out.insert("type".into(), json!(ContentKind::Comment.as_str()));
    out.insert("status".into(), json!("current"));
    out.insert("title".into(), json!(title(s, idx)));
    out.insert("extensions".into(), Value::Object(extensions));
    let mut expandable = Map::new();
    let mut maybe = |name: &str, render: &dyn Fn() -> Value| {
        if expand.has(name) {
            out.insert(name.into(), render());
        } else {
            expandable.insert(name.into(), json!(""));
        }
    };
    maybe("container", &|| {
        json!({
            "id": page.id.to_string(),
            "type": page.kind.as_str(),
            "status": "current",
            "title": page.title,
            "_links": render::page_links(s, ctx, page),
        })
    });
    maybe("space", &|| render::space_json(s, ctx, page.space));
    maybe("ancestors", &|| {
        Value::Array(
            thread(s, idx)
                .into_iter()
                .map(|p| summary(s, ctx, p))
                .collect(),
        )
    });
    maybe("version", &|| {
        render::version_json(
            ctx,
            1,
            c.author,
            c.created,
            format!("{wiki}/rest/api/content/{}/version/1", c.id),
        )
    });
    maybe("history", &|| {
        json!({
            "latest": true,
            "createdBy": ctx.users.confluence_json(c.author, &wiki),
            "createdDate": timefmt::confluence(c.created),
            "_links": { "self": format!("{wiki}/rest/api/content/{}/history", c.id) },
        })
    });
    if expand.has("body.storage") {
        out.insert(
            "body".into(),
            json!({ "storage": { "value": storage(s, ctx, idx), "representation": "storage", "embeddedContent": [] } }),
        );
    } else {
        expandable.insert("body".into(), json!(""));
    }
    out.insert("_expandable".into(), Value::Object(expandable));
    out.insert("_links".into(), links(s, ctx, idx));
    Value::Object(out)
}
