//! Jira REST v3 JSON for issues, comments, changelogs and attachments, rendered on request from
//! the compact seeded records. Shapes: the `IssueBean`, `Comment`, `Attachment`
//! (`AttachmentMetadata`), `Changelog` and `User` schemas of the Jira platform OpenAPI document
//! (swagger-v3.v3.json); dates in Jira's `2024-05-01T10:20:30.000+0000` form (`timefmt.rs`);
//! rich text as ADF (`adf.rs`). Only the fields of [`ALL_FIELDS`] exist; a field name the fake
//! does not know is left out, and an empty assignee or picker is `null`, as Jira answers for a
//! field an issue has no value for.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::expand::{self, Expand};
use super::{Attachment, Comment, Issue, JiraState};
use crate::fake::adf;
use crate::fake::rng::SeedRng;
use crate::fake::site::SiteContext;
use crate::fake::timefmt;

/// Every field the fake knows, in the order Jira tends to list them.
pub(crate) const ALL_FIELDS: &[&str] = &[
    "summary",
    "description",
    "issuetype",
    "project",
    "status",
    "priority",
    "labels",
    "reporter",
    "creator",
    "assignee",
    "customfield_10010",
    "created",
    "updated",
    "comment",
    "attachment",
];

/// Which fields a request asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fields {
    /// Only `{"id": …}` per issue (the enhanced search's default).
    IdsOnly,
    /// The issue object with these fields (possibly none: id, key and self only).
    Some(BTreeSet<&'static str>),
}

impl Fields {
    /// Parses Jira's `fields` list: names, `*all`, `*navigable`, `-name` exclusions, `id`, `key`.
    /// Unknown names are ignored, as Jira ignores them. An empty list gives `default`.
    pub(crate) fn parse(values: &[String], default: Fields) -> Fields {
        if values.is_empty() {
            return default;
        }
        let mut set = BTreeSet::new();
        let mut wants_object = false;
        for v in values {
            let v = v.trim();
            match v {
                "*all" | "*navigable" => {
                    set.extend(ALL_FIELDS.iter().copied());
                    wants_object = true;
                }
                "id" | "*none" => {}
                "key" => wants_object = true,
                _ => {
                    if let Some(name) = v.strip_prefix('-') {
                        set.retain(|f| *f != name);
                    } else if let Some(f) = ALL_FIELDS.iter().find(|f| **f == v) {
                        set.insert(*f);
                        wants_object = true;
                    }
                }
            }
        }
        if wants_object {
            Fields::Some(set)
        } else {
            Fields::IdsOnly
        }
    }

    /// True when no field beyond id/key is requested (the cheap page size applies).
    pub(crate) fn ids_only(&self) -> bool {
        match self {
            Fields::IdsOnly => true,
            Fields::Some(set) => set.is_empty(),
        }
    }
}

pub(super) const STATUSES: &[(&str, &str, &str, u32, &str)] = &[
    ("10000", "To Do", "new", 2, "blue-gray"),
    ("3", "In Progress", "indeterminate", 4, "yellow"),
    ("10001", "Done", "done", 3, "green"),
];
const ISSUE_TYPES: &[(&str, &str)] = &[("10001", "Task"), ("10002", "Bug"), ("10003", "Story")];
const PRIORITIES: &[(&str, &str)] = &[
    ("1", "Highest"),
    ("2", "High"),
    ("3", "Medium"),
    ("4", "Low"),
    ("5", "Lowest"),
];

/// One issue as search and bulk fetch return it.
pub(crate) fn issue(
    state: &JiraState,
    ctx: &SiteContext,
    idx: usize,
    fields: &Fields,
    expand: Expand,
) -> Value {
    let issue = &state.issues[idx];
    let Fields::Some(set) = fields else {
        return json!({ "id": issue.id.to_string() });
    };
    let api = ctx.jira_api();
    let mut out = Map::new();
    out.insert(
        "expand".into(),
        json!("renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"),
    );
    out.insert("id".into(), json!(issue.id.to_string()));
    out.insert(
        "self".into(),
        json!(format!("{api}/rest/api/3/issue/{}", issue.id)),
    );
    out.insert("key".into(), json!(state.key(issue)));
    let mut f = Map::new();
    for name in set {
        f.insert((*name).to_owned(), field(state, ctx, issue, name));
    }
    if expand.rendered_fields {
        out.insert("renderedFields".into(), expand::rendered_fields(issue, &f));
    }
    out.insert("fields".into(), Value::Object(f));
    if expand.transitions {
        out.insert("transitions".into(), expand::transitions(ctx, issue));
    }
    if expand.changelog {
        // `expand=changelog` "returns a maximum of 40 changelogs. If you require more, please
        // refer to Bulk fetch changelogs" (the bulkfetch `expand` of the Jira v3 OpenAPI
        // document; faros-ai/airbyte-connectors#2003 "Handle changelog being limited to 40 items
        // in new API"). Which 40 (the docs say "sorted by date, starting from the most recent")
        // is an ASSUMPTION here: the first 40; our exporter never reads the embedded changelog.
        let total = issue.changelog;
        let histories: Vec<Value> = (0..total.min(40)).map(|k| history(ctx, issue, k)).collect();
        out.insert(
            "changelog".into(),
            json!({ "startAt": 0, "maxResults": histories.len(), "total": total, "histories": histories }),
        );
    }
    Value::Object(out)
}

fn field(state: &JiraState, ctx: &SiteContext, issue: &Issue, name: &str) -> Value {
    let api = ctx.jira_api();
    let user = |i: usize| ctx.users.jira_json(i, &api);
    match name {
        "summary" => json!(issue.summary),
        "description" => adf::document(issue.seed, &ctx.users),
        "issuetype" => {
            let (id, name) = ISSUE_TYPES[issue.issuetype % ISSUE_TYPES.len()];
            json!({
                "self": format!("{api}/rest/api/3/issuetype/{id}"), "id": id, "name": name,
                "description": format!("A {name}."), "subtask": false, "hierarchyLevel": 0, "avatarId": 10318,
                "iconUrl": format!("{api}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10318?size=medium"),
            })
        }
        "project" => {
            let p = &state.projects[issue.project];
            json!({
                "self": format!("{api}/rest/api/3/project/{}", p.id), "id": p.id.to_string(), "key": p.key,
                "name": p.name, "projectTypeKey": "software", "simplified": false,
                "avatarUrls": { "48x48": format!("{api}/rest/api/3/universal_avatar/view/type/project/avatar/10400") },
            })
        }
        "status" => {
            let (id, name, cat_key, cat_id, colour) = STATUSES[issue.status % STATUSES.len()];
            json!({
                "self": format!("{api}/rest/api/3/status/{id}"), "id": id, "name": name, "description": "",
                "iconUrl": format!("{api}/"),
                "statusCategory": {
                    "self": format!("{api}/rest/api/3/statuscategory/{cat_id}"), "id": cat_id, "key": cat_key,
                    "colorName": colour, "name": name,
                },
            })
        }
        "priority" => {
            let (id, name) = PRIORITIES[issue.priority % PRIORITIES.len()];
            json!({ "self": format!("{api}/rest/api/3/priority/{id}"), "id": id, "name": name })
        }
        "labels" => json!(issue.labels),
        "reporter" => user(issue.reporter),
        "creator" => user(issue.creator),
        "assignee" => issue.assignee.map(user).unwrap_or(Value::Null),
        "customfield_10010" => issue.picker.map(user).unwrap_or(Value::Null),
        "created" => json!(timefmt::jira(issue.created)),
        "updated" => json!(timefmt::jira(issue.updated)),
        // ASSUMPTION (undocumented; ATLASSIAN.md: UNKNOWN): the `comment` field embeds the first
        // 20 comments with the true `total`. Safe: the exporter pages
        // `GET issue/{id}/comment` whenever `total` exceeds what was embedded.
        "comment" => {
            let comments: Vec<Value> = issue
                .comments
                .iter()
                .take(20)
                .map(|c| comment(ctx, issue, c))
                .collect();
            json!({
                "comments": comments,
                "self": format!("{api}/rest/api/3/issue/{}/comment", issue.id),
                "maxResults": 20,
                "total": issue.comments.len(),
                "startAt": 0,
            })
        }
        "attachment" => Value::Array(
            issue
                .attachments
                .iter()
                .map(|a| attachment(ctx, &state.attachments[*a]))
                .collect(),
        ),
        _ => Value::Null,
    }
}

pub(crate) fn comment(ctx: &SiteContext, issue: &Issue, c: &Comment) -> Value {
    let api = ctx.jira_api();
    json!({
        "self": format!("{api}/rest/api/3/issue/{}/comment/{}", issue.id, c.id),
        "id": c.id.to_string(),
        "author": ctx.users.jira_json(c.author, &api),
        "body": adf::comment(c.seed, &ctx.users),
        "updateAuthor": ctx.users.jira_json(c.update_author, &api),
        "created": timefmt::jira(c.created),
        "updated": timefmt::jira(c.updated),
        "jsdPublic": true,
    })
}

pub(crate) fn attachment(ctx: &SiteContext, a: &Attachment) -> Value {
    let api = ctx.jira_api();
    json!({
        "self": format!("{api}/rest/api/3/attachment/{}", a.id),
        "id": a.id.to_string(),
        "filename": a.filename,
        "author": ctx.users.jira_json(a.author, &api),
        "created": timefmt::jira(a.created),
        "size": a.size,
        "mimeType": a.mime,
        "content": format!("{api}/rest/api/3/attachment/content/{}", a.id),
    })
}

/// Changelog entry `k` of an issue: status and assignee changes (the latter carry account ids in
/// `from`/`to`, as Jira's do).
pub(crate) fn history(ctx: &SiteContext, issue: &Issue, k: usize) -> Value {
    let api = ctx.jira_api();
    let mut rng = SeedRng::derive(issue.seed, "changelog", k as u64);
    let span = (issue.updated - issue.created).whole_milliseconds().max(0);
    let at = issue.created
        + time::Duration::milliseconds(
            (span * (k as i128 + 1) / (issue.changelog as i128 + 1)) as i64,
        );
    let n = ctx.users.len().max(1);
    let item = if rng.chance(0.5) {
        let (from, to) = (rng.index(STATUSES.len()), rng.index(STATUSES.len()));
        json!({
            "field": "status", "fieldtype": "jira", "fieldId": "status",
            "from": STATUSES[from].0, "fromString": STATUSES[from].1,
            "to": STATUSES[to].0, "toString": STATUSES[to].1,
        })
    } else {
        let (from, to) = (ctx.users.get(rng.index(n)), ctx.users.get(rng.index(n)));
        json!({
            "field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
            "from": from.account_id, "fromString": from.display_name,
            "to": to.account_id, "toString": to.display_name,
            "tmpFromAccountId": from.account_id, "tmpToAccountId": to.account_id,
        })
    };
    json!({
        "id": (issue.id * 100 + k as u64).to_string(),
        "author": ctx.users.jira_json(rng.index(n), &api),
        "created": timefmt::jira(at),
        "items": [item],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Fields {
        Fields::parse(
            &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Fields::IdsOnly,
        )
    }

    #[test]
    fn fields_parsing_follows_jira() {
        assert_eq!(parse(&[]), Fields::IdsOnly);
        assert_eq!(parse(&["id"]), Fields::IdsOnly);
        assert!(parse(&["key"]).ids_only());
        assert_eq!(
            parse(&["summary", "nonsense"]),
            Fields::Some(["summary"].into_iter().collect())
        );
        let Fields::Some(all) = parse(&["*all", "-comment"]) else {
            panic!()
        };
        assert!(!all.contains("comment") && all.contains("attachment"));
    }
}
