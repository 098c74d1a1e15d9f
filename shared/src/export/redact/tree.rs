//! Redaction of JSON trees: user objects, mention nodes, profile fields, object keys, and every
//! string (embedded JSON, wiki mentions, markup, free text). No recursion over the tree (no input
//! can exhaust the stack); JSON embedded in strings is followed [`MAX_EMBEDDED_DEPTH`] levels
//! deep and scrubbed as text below that.

use serde_json::{Map, Value};

use super::Redactions;
use super::ids::{self, ACCOUNT_PLACEHOLDER, Legacy};
use super::names::{NameBook, UNKNOWN_USER, non_empty_str, usable_name};
use super::{storage, wiki};

/// How deep JSON documents embedded in strings (in strings of embedded documents...) are parsed
/// and redacted as trees. Deeper ones are scrubbed as text with [`Legacy::All`]: their structure
/// is not looked at, so every 24-hex word in them goes.
pub(super) const MAX_EMBEDDED_DEPTH: u8 = 8;

/// Redact any JSON generically (see the module documentation for the rules).
pub fn redact_value(v: &mut Value, names: &NameBook) -> Redactions {
    redact_tree(v, names, 0)
}

/// What the parent of a node says about it.
#[derive(Clone, Copy, Default)]
struct Hint {
    /// A string here is ADF serialized as JSON.
    adf: bool,
    /// The node is the value of a key naming users (`assignee`, `from`, `watchers`...).
    user_key: bool,
}

fn redact_tree(root: &mut Value, names: &NameBook, depth: u8) -> Redactions {
    let mut r = Redactions::default();
    let mut stack: Vec<(&mut Value, Hint)> = vec![(root, Hint::default())];
    // Keys are normalised into this one buffer (a document has thousands of keys).
    let mut key = String::new();
    while let Some((v, hint)) = stack.pop() {
        match v {
            Value::Object(map) => {
                redact_object(map, names, hint.user_key, &mut key, &mut r);
                let adf_body = hint.adf
                    || map
                        .get("representation")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("atlas_doc_format"));
                for (k, child) in map.iter_mut() {
                    ids::normalize_key_into(k, &mut key);
                    let hint = Hint {
                        adf: k == "atlas_doc_format" || (adf_body && k == "value"),
                        user_key: ids::is_user_word(&key, true),
                    };
                    stack.push((child, hint));
                }
            }
            Value::Array(items) => {
                let hint = Hint {
                    adf: false,
                    user_key: hint.user_key,
                };
                stack.extend(items.iter_mut().map(|c| (c, hint)));
            }
            Value::String(s) => {
                if let Some(new) = redact_string(s, hint, names, depth, &mut r) {
                    *s = new;
                }
            }
            _ => {}
        }
    }
    r
}

/// The key holding the account id when `map` is a user object (`accountId`, `account_id`).
pub(super) fn is_user_object(map: &Map<String, Value>) -> Option<&str> {
    map.keys()
        .map(String::as_str)
        .find(|k| ids::key_is(k, "accountid"))
}

/// User objects, mention nodes, profile fields and keys of one object (its children are visited
/// afterwards by the caller). `key` is a scratch buffer for normalised keys.
fn redact_object(
    map: &mut Map<String, Value>,
    names: &NameBook,
    user_key: bool,
    key: &mut String,
    r: &mut Redactions,
) {
    if is_user_object(map).is_some() {
        reduce_user_object(map);
        r.user_objects += 1;
        return;
    }
    if mention_attrs(map).is_some() {
        if rewrite_mention(map, names) {
            r.mentions += 1;
        }
        return;
    }
    let before = map.len();
    map.retain(|k, v| !is_profile_field(k, v, key));
    r.fields += (before - map.len()) as u64;
    r.strings += scrub_keys(map, names, user_key);
}

/// Keeps the display name (`displayName`, else `publicName`, else a `name` that is not an id)
/// and the e-mail address.
fn reduce_user_object(map: &mut Map<String, Value>) {
    let name_key = if non_empty_str(map.get("displayName")).is_some() {
        "displayName"
    } else if map.contains_key("publicName") {
        "publicName"
    } else if non_empty_str(map.get("name"))
        .and_then(usable_name)
        .is_some()
    {
        "name"
    } else {
        "displayName"
    };
    map.retain(|k, _| k == name_key || k == "emailAddress" || k == "email");
}

/// `attrs` of an ADF mention node (`{"type":"mention","attrs":{...}}`).
pub(super) fn mention_attrs(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    if map.get("type").and_then(Value::as_str) != Some("mention") {
        return None;
    }
    map.get("attrs").and_then(Value::as_object)
}

/// Reduces a mention node to `{"type":"mention","attrs":{"text":"@Name"}}`; false when it
/// already had that form.
fn rewrite_mention(map: &mut Map<String, Value>, names: &NameBook) -> bool {
    let Some(attrs) = map.get("attrs").and_then(Value::as_object) else {
        return false;
    };
    let text = non_empty_str(attrs.get("text"));
    if map.len() == 2 && attrs.len() == 1 && text.is_some_and(|t| usable_name(t).is_some()) {
        return false;
    }
    let clean_text = text.filter(|t| usable_name(t).is_some());
    let text = match (clean_text, non_empty_str(attrs.get("id"))) {
        (Some(t), _) => t.to_owned(),
        (None, Some(id)) if names.name_of(id).is_some() => names.mention_of(id),
        (None, _) => format!("@{UNKNOWN_USER}"),
    };
    map.retain(|k, _| k == "type");
    let mut attrs = Map::new();
    attrs.insert("text".to_owned(), Value::String(text));
    map.insert("attrs".to_owned(), Value::Object(attrs));
    true
}

/// Keys dropped wherever they are, whatever their value.
const PROFILE_FIELDS: [&str; 18] = [
    "accounttype",
    "avatarurls",
    "avatarurl",
    "profilepicture",
    "timezone",
    "locale",
    "authorid",
    "ownerid",
    "lastownerid",
    "creatorid",
    "lastmodifierid",
    "userkey",
    "userkeys",
    "username",
    "nickname",
    "zoneinfo",
    "picture",
    "extendedprofile",
];

/// Keys dropped when they hold an account id rather than a user object (Confluence v2
/// attachments' `createdBy`, tasks' `assignedTo` / `completedBy`).
const USER_REFERENCE_FIELDS: [&str; 6] = [
    "createdby",
    "assignedto",
    "completedby",
    "updatedby",
    "modifiedby",
    "lastmodifiedby",
];

/// `norm` is a scratch buffer (the key lower-cased without `_` and `-` goes there).
fn is_profile_field(key: &str, value: &Value, norm: &mut String) -> bool {
    ids::lowercase_without_into(key, |c| matches!(c, '_' | '-'), norm);
    let norm = norm.as_str();
    // `accountId` itself only outside user objects (they are reduced before this runs).
    if norm.contains("accountid") || norm.ends_with("ownerid") || norm.ends_with("authorid") {
        return true;
    }
    if PROFILE_FIELDS.contains(&norm) {
        return true;
    }
    if USER_REFERENCE_FIELDS.contains(&norm) {
        return match value {
            Value::Null | Value::String(_) => true,
            Value::Array(items) => items.iter().all(|v| v.is_string() || v.is_null()),
            _ => false,
        };
    }
    key == "self" && value.as_str().is_some_and(is_user_url)
}

fn is_user_url(url: &str) -> bool {
    let b = url.as_bytes();
    [&b"accountid="[..], b"/user?", b"/rest/api/user"]
        .iter()
        .any(|needle| ids::find_ci(b, 0, needle).is_some())
}

/// Object keys that contain an account id are replaced by their scrubbed form (`#2`, `#3`...
/// appended on a collision). Returns how many keys changed.
fn scrub_keys(map: &mut Map<String, Value>, names: &NameBook, user_key: bool) -> u64 {
    let rule = Legacy::Precise { keyed: user_key };
    let bad: Vec<String> = map
        .keys()
        .filter(|k| !ids::id_spans(k, Some(names), rule).is_empty())
        .cloned()
        .collect();
    let mut changed = 0;
    for key in bad {
        if let Some(v) = map.remove(&key) {
            let base = ids::scrub_with(&key, Some(names), rule, ACCOUNT_PLACEHOLDER).0;
            let mut new_key = base.clone();
            let mut n = 2u64;
            while map.contains_key(&new_key) {
                new_key = format!("{base}#{n}");
                n += 1;
            }
            map.insert(new_key, v);
            changed += 1;
        }
    }
    changed
}

/// One string value; `None` when it stays as it is. In order: JSON embedded in it, Jira wiki
/// mentions, markup (storage format, rendered HTML), and the free-text rule.
fn redact_string(
    s: &str,
    hint: Hint,
    names: &NameBook,
    depth: u8,
    r: &mut Redactions,
) -> Option<String> {
    let mut cur: Option<String> = None;

    if hint.adf || looks_like_json(s) {
        if depth >= MAX_EMBEDDED_DEPTH {
            // Too deep to follow: whatever its structure, no id-shaped word survives.
            let (text, n) = ids::scrub_with(s, Some(names), Legacy::All, ACCOUNT_PLACEHOLDER);
            if n > 0 {
                r.strings += 1;
                return Some(text);
            }
            return None;
        }
        if let Ok(mut inner) = serde_json::from_str::<Value>(s)
            && (inner.is_object() || inner.is_array())
        {
            let sub = redact_tree(&mut inner, names, depth + 1);
            if sub.total() > 0
                && let Ok(text) = serde_json::to_string(&inner)
            {
                *r += sub;
                cur = Some(text);
            }
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    if let Some((new, n)) = wiki::replace_wiki_mentions(text, names) {
        r.mentions += n;
        cur = Some(new);
    }

    let text = cur.as_deref().unwrap_or(s);
    let rule = Legacy::Precise {
        keyed: hint.user_key,
    };
    if storage::may_name_users(text, names, rule) {
        let out = storage::redact_markup(text, names, true);
        if let Some(new) = out.text {
            r.mentions += out.mentions;
            r.fields += out.attributes;
            cur = Some(new);
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    let spans = ids::id_spans(text, Some(names), rule);
    if !spans.is_empty() {
        r.strings += 1;
        cur = Some(ids::replace_spans(text, &spans, ACCOUNT_PLACEHOLDER));
    }
    cur
}

fn looks_like_json(s: &str) -> bool {
    let t = s.trim();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
