//! [`NameBook`]: account id -> display name, and the set of account ids known to belong to users
//! of the site (the precise free-text rule replaces a known id wherever it stands).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use super::ids::{self, Legacy};
use super::tree::{is_user_object, mention_attrs};

/// The name used for a mention of a user the [`NameBook`] does not know.
pub const UNKNOWN_USER: &str = "unknown user";

/// account id -> display name, learned from user objects seen so far in a job (so mentions in
/// Confluence storage bodies, which carry only the id, can be replaced by a name), and every
/// account id seen in a user object or a mention (so the same id in free text is replaced even
/// where nothing around it says it is an account id).
///
/// `Debug` prints only the number of entries: the ids must never reach a log line.
#[derive(Default, Clone)]
pub struct NameBook {
    names: HashMap<String, String>,
    /// Lower-case ids, with or without a name.
    known: HashSet<String>,
}

impl fmt::Debug for NameBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameBook")
            .field("len", &self.names.len())
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl NameBook {
    /// Walks `doc` (before it is redacted) and records `accountId` (and legacy `userKey`) ->
    /// `displayName`/`publicName`/`name` of every user object, and `attrs.id` -> `attrs.text` of
    /// ADF mention nodes (a user object's name wins over a mention's text). Every id seen there
    /// becomes known, named or not.
    pub fn learn_from(&mut self, doc: &Value) {
        let mut stack = vec![doc];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    self.learn_object(map);
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items.iter()),
                _ => {}
            }
        }
    }

    /// Records one name (for callers that learn names elsewhere, e.g. a user lookup).
    /// Names that themselves contain an account id are ignored; the id becomes known anyway.
    pub fn insert(&mut self, account_id: impl Into<String>, display_name: impl Into<String>) {
        let account_id = account_id.into();
        let id = account_id.trim();
        if id.is_empty() {
            return;
        }
        self.remember(id);
        if let Some(name) = usable_name(&display_name.into()) {
            self.names.insert(id.to_owned(), name.to_owned());
        }
    }

    #[must_use]
    pub fn name_of(&self, account_id: &str) -> Option<&str> {
        self.names.get(account_id.trim()).map(String::as_str)
    }

    /// Is `id` an account id (or legacy user key) seen in this job? Case-insensitive.
    #[must_use]
    pub fn knows(&self, id: &str) -> bool {
        let id = id.trim();
        if id.is_empty() || self.known.is_empty() {
            return false;
        }
        // Asked for every long alphanumeric run of every string: no copy unless it has capitals.
        if id.bytes().any(|c| c.is_ascii_uppercase()) {
            self.known.contains(&id.to_ascii_lowercase())
        } else {
            self.known.contains(id)
        }
    }

    /// Number of names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn remember(&mut self, id: &str) {
        self.known.insert(id.to_ascii_lowercase());
    }

    fn learn_object(&mut self, map: &Map<String, Value>) {
        if let Some(id_key) = is_user_object(map) {
            let name = ["displayName", "publicName", "name"]
                .iter()
                .find_map(|k| non_empty_str(map.get(*k)).and_then(usable_name))
                .map(str::to_owned);
            for key in [id_key, "userKey"] {
                if let Some(id) = non_empty_str(map.get(key)) {
                    match &name {
                        Some(name) => self.insert(id, name.as_str()),
                        None => self.remember(id.trim()),
                    }
                }
            }
        }
        if let Some(attrs) = mention_attrs(map) {
            let id = non_empty_str(attrs.get("id")).map(str::trim);
            let text = non_empty_str(attrs.get("text")).map(|t| t.trim().trim_start_matches('@'));
            if let Some(id) = id {
                self.remember(id);
                if let Some(name) = text.and_then(usable_name) {
                    self.names
                        .entry(id.to_owned())
                        .or_insert_with(|| name.to_owned());
                }
            }
        }
    }

    /// `@Name` for a mention of `account_id` (unescaped), `@unknown user` when unknown.
    pub(super) fn mention_of(&self, account_id: &str) -> String {
        format!("@{}", self.name_of(account_id).unwrap_or(UNKNOWN_USER))
    }
}

/// `name` trimmed, unless it is empty or holds anything shaped like an account id.
pub(super) fn usable_name(name: &str) -> Option<&str> {
    let name = name.trim();
    (!name.is_empty() && ids::id_spans(name, None, Legacy::All).is_empty()).then_some(name)
}

pub(super) fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
