//! The `expand` values of the issue endpoints (search, bulk fetch, single issue).
//!
//! Jira documents `renderedFields`, `names`, `schema`, `transitions`, `operations`, `editmeta`,
//! `changelog` and `versionedRepresentations`
//! (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get,
//! "expand"; jira.js `Version3Models.SearchRequest.expand`). The fake implements `changelog`,
//! `renderedFields` and `transitions` (what the exporter and airbyte-source-jira 4.0.0 ask for:
//! its `issues_stream` sends `expand=renderedFields,transitions,changelog`). Any other value is
//! answered 400 naming it, so a client never silently gets less than Jira would send.
//! DELIBERATE DEVIATION: real Jira accepts every documented value; the 400 is a tripwire for
//! the fake's own gaps, not Atlassian behaviour. Our exporter asks for none of them.

use serde_json::{Map, Value, json};

use super::Issue;
use super::render::STATUSES;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::fake::site::SiteContext;

const IMPLEMENTED: &str = "changelog, renderedFields, transitions";

/// The expansions a request asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expand {
    pub changelog: bool,
    pub rendered_fields: bool,
    pub transitions: bool,
}

impl Expand {
    /// Parses the (already comma-split) `expand` values; `Err` carries the 400 message.
    pub(crate) fn parse(values: &[String]) -> Result<Expand, String> {
        let mut e = Expand::default();
        for v in values {
            match v.trim() {
                "" => {}
                "changelog" => e.changelog = true,
                "renderedFields" => e.rendered_fields = true,
                "transitions" => e.transitions = true,
                other => {
                    return Err(format!(
                        "The fake Jira does not implement expand value '{other}' (it implements {IMPLEMENTED})."
                    ));
                }
            }
        }
        Ok(e)
    }
}

/// `renderedFields`: the requested fields as Jira renders them for display: rich text as HTML,
/// dates in the user's format, everything else `null` (Jira sends `null` for fields it does not
/// render).
pub(crate) fn rendered_fields(issue: &Issue, fields: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (name, value) in fields {
        let rendered = match name.as_str() {
            "description" => json!(html(value)),
            "created" => json!(display_date(issue.created)),
            "updated" => json!(display_date(issue.updated)),
            "comment" => {
                let comments: Vec<Value> = value["comments"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|c| {
                        let mut c = c.clone();
                        c["body"] = json!(html(&c["body"]));
                        c
                    })
                    .collect();
                let mut v = value.clone();
                v["comments"] = Value::Array(comments);
                v
            }
            _ => Value::Null,
        };
        out.insert(name.clone(), rendered);
    }
    Value::Object(out)
}

/// `transitions`: the workflow's moves from the issue's status to each other status (the fake's
/// workflow lets every status reach every other), shaped like `GET issue/{id}/transitions`
/// entries (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-transitions-get).
pub(crate) fn transitions(ctx: &SiteContext, issue: &Issue) -> Value {
    let api = ctx.jira_api();
    let current = issue.status % STATUSES.len();
    let list: Vec<Value> = STATUSES
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != current)
        .map(|(i, (id, name, cat_key, cat_id, colour))| {
            json!({
                "id": format!("{}", 11 + i * 10),
                "name": format!("Move to {name}"),
                "to": {
                    "self": format!("{api}/rest/api/3/status/{id}"), "id": id, "name": name,
                    "description": "", "iconUrl": format!("{api}/"),
                    "statusCategory": {
                        "self": format!("{api}/rest/api/3/statuscategory/{cat_id}"), "id": cat_id,
                        "key": cat_key, "colorName": colour, "name": name,
                    },
                },
                "hasScreen": false, "isGlobal": true, "isInitial": false, "isAvailable": true,
                "isConditional": false, "isLooped": false,
            })
        })
        .collect();
    Value::Array(list)
}

/// Jira's display format for `renderedFields` dates, e.g. `01/May/24 10:20 AM` (the fake's users
/// all live in UTC).
fn display_date(t: OffsetDateTime) -> String {
    const DISPLAY: &[FormatItem<'static>] = format_description!(
        "[day]/[month repr:short]/[year repr:last_two] [hour repr:12 padding:none]:[minute] [period]"
    );
    t.to_offset(UtcOffset::UTC)
        .format(DISPLAY)
        .unwrap_or_default()
}

/// HTML for an ADF document (the node types the fake generates; anything else by its text).
fn html(adf: &Value) -> String {
    let mut out = String::new();
    node(adf, &mut out);
    out
}

fn node(n: &Value, out: &mut String) {
    let children = |out: &mut String| {
        for c in n["content"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            node(c, out);
        }
    };
    let wrap = |tag: &str, out: &mut String| {
        out.push_str(&format!("<{tag}>"));
        children(out);
        out.push_str(&format!("</{tag}>"));
    };
    match n["type"].as_str().unwrap_or("") {
        "text" => escape(n["text"].as_str().unwrap_or(""), out),
        "mention" => {
            out.push_str("<a class=\"user-hover\" href=\"#\">");
            escape(n["attrs"]["text"].as_str().unwrap_or(""), out);
            out.push_str("</a>");
        }
        "paragraph" => wrap("p", out),
        "bulletList" => wrap("ul", out),
        "listItem" => wrap("li", out),
        "codeBlock" => wrap("pre", out),
        _ => children(out),
    }
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn implemented_values_parse_and_others_are_refused() {
        let e = Expand::parse(&list(&["renderedFields", "transitions", "changelog"]))
            .unwrap_or_else(|m| panic!("{m}"));
        assert!(e.changelog && e.rendered_fields && e.transitions);
        assert_eq!(Expand::parse(&[]), Ok(Expand::default()));
        for refused in [
            "names",
            "operations",
            "versionedRepresentations",
            "nonsense",
        ] {
            let m = Expand::parse(&list(&["changelog", refused])).unwrap_err();
            assert!(m.contains(refused), "{m}");
        }
    }

    #[test]
    fn adf_renders_as_escaped_html() {
        let doc = json!({"type": "doc", "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "a < b & "},
                {"type": "mention", "attrs": {"id": "x", "text": "@Ann"}},
            ]},
        ]});
        assert_eq!(
            html(&doc),
            "<p>a &lt; b &amp; <a class=\"user-hover\" href=\"#\">@Ann</a></p>"
        );
    }
}
