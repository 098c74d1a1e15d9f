//! Redaction of exported documents (PRIVACY.md P5): no Atlassian account id and no other
//! profile data (avatars, time zone, locale, account type, nickname, picture, user links) leaves
//! this module; display names and e-mail addresses of creators and editors may remain.
//!
//! The pass works on `serde_json::Value` trees, walks them without recursion (so no input can
//! exhaust the stack), never panics, and is idempotent. In order, for every object:
//!
//! 1. An object with an `accountId` (or `account_id`) key is a user object: it keeps only its
//!    display name (`displayName`, else `publicName`, else a `name` that is not an id) and its
//!    e-mail (`emailAddress` / `email`).
//! 2. An ADF `mention` node keeps only `type` and `attrs.text` (`@Name`).
//! 3. Profile fields are dropped: `accountType`, `avatarUrls`, `profilePicture`, `timeZone`,
//!    `locale`, `nickname`, `zoneinfo`, `picture`, `extended_profile`, `userKey`, `username`,
//!    any key containing `accountId` or ending in `ownerId` / `authorId`, `creatorId`,
//!    `lastModifierId`, user `self` links; `createdBy`, `assignedTo`, `completedBy`,
//!    `updatedBy`, `modifiedBy`, `lastModifiedBy` when they hold an id rather than a user
//!    object. Object keys holding an account id are scrubbed.
//!
//! and for every string ([`tree`]): JSON embedded in it (Confluence `atlas_doc_format`, app
//! properties...) is parsed and redacted as a tree, up to 8 levels of strings inside strings, and
//! scrubbed as text below that with every 24-hex word removed; Jira wiki mentions
//! `[~accountid:...]` ([`wiki`]) and Confluence storage `<ri:user .../>` references
//! ([`storage`], read with `quick-xml`) become `@Display Name`; markup attributes carrying
//! account ids (`data-account-id`, `/wiki/people/<id>` links, avatar `src`, Jira's user-hover
//! `rel`) are removed; finally the free-text rule below replaces what is left by
//! [`ACCOUNT_PLACEHOLDER`].
//!
//! # The free-text rule ([`ids`])
//!
//! Shapes that cannot be anything else are always replaced, raw or encoded (`%3A`, `%253A`,
//! `&#58;`, `&#x3a;`, `&colon;`, `\u003a`): `NNNNNN:uuid`, JSM customers `qm:<uuid>:<hex>`, and
//! personal-space keys made from an account id (`~<24 hex>`, `~<NNNNNN><32 hex>`).
//!
//! A legacy id is 24 hex digits, a shape shared with MongoDB object ids, abbreviated hashes and
//! other tools' ids. Replacing every 24-hex word (as this module once did) mangles that content;
//! so a 24-hex word in a document is replaced only when
//! - the job's [`NameBook`] knows it (it was seen in a user object or a mention of this item), or
//! - it stands in an account-id context: after `accountId=`, `"ownerId":"`, `ri:account-id="`,
//!   `[~accountid:`, `/people/`, `/user/`, `/aa-avatar/`, `@`, `~`, a key naming users
//!   (`assignee`, `watchers`, `creatorId`, `from`/`to` of a changelog item...), also with the
//!   separators encoded, or in a list that started in such a context (`accountIds=a,b`), or
//! - it is the value (or inside the value) of a JSON key naming users.
//!
//! A 24-hex run inside a longer hex run (a 40-hex SHA-1, a 64-hex SHA-256) is never an id.
//!
//! The trade-off: an unknown account id (a user who appears nowhere else in the item) written
//! bare in prose, with nothing around it saying what it is, stays. Such an id comes only from a
//! person typing it; Atlassian itself never writes one without a user object, a mention or one
//! of the contexts above. Everything written beside the documents (failure reasons, events,
//! logs, S3 keys, object metadata) goes through [`scrub_for_sink`] / [`safe_key_component`]
//! instead, which replace every 24-hex word and every e-mail address: no precision is needed
//! there, and no [`NameBook`] is at hand.

mod encoding;
mod ids;
mod names;
mod sink;
mod storage;
mod tree;
mod wiki;

#[cfg(test)]
mod fixtures;

use std::ops::AddAssign;

use serde::Serialize;
use serde_json::Value;

pub use ids::{ACCOUNT_PLACEHOLDER, find_account_ids, scrub_account_ids};
pub use names::{NameBook, UNKNOWN_USER};
pub use sink::{EMAIL_PLACEHOLDER, safe_key_component, scrub_for_sink, scrub_text};
pub use storage::redact_storage_body;
pub use tree::redact_value;

/// What a redaction pass removed (counts only, for progress/manifest; never the values).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Redactions {
    /// User objects reduced to name and e-mail.
    pub user_objects: u64,
    /// Mentions (ADF nodes, storage `<ri:user>`, wiki `[~accountid:]`) turned into `@Name`.
    pub mentions: u64,
    /// Keys (and markup attributes) removed.
    pub fields: u64,
    /// Strings (values or object keys) in which account ids were replaced.
    pub strings: u64,
}

impl Redactions {
    /// Sum of all counts: zero means the pass changed nothing.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.user_objects
            .saturating_add(self.mentions)
            .saturating_add(self.fields)
            .saturating_add(self.strings)
    }
}

impl AddAssign for Redactions {
    fn add_assign(&mut self, other: Self) {
        self.user_objects = self.user_objects.saturating_add(other.user_objects);
        self.mentions = self.mentions.saturating_add(other.mentions);
        self.fields = self.fields.saturating_add(other.fields);
        self.strings = self.strings.saturating_add(other.strings);
    }
}

/// Redact one Jira issue JSON (as returned by search/jql or issue/bulkfetch with fields, plus our
/// own additions like a full `comments` array) in place.
pub fn redact_jira_issue(issue: &mut Value, names: &mut NameBook) -> Redactions {
    names.learn_from(issue);
    redact_value(issue, names)
}

/// Redact one Confluence content JSON (v1 content with expand=body.storage,version,history,space,
/// ancestors; or v2 page/attachment JSON) in place, including its storage-format body.
pub fn redact_confluence_content(content: &mut Value, names: &mut NameBook) -> Redactions {
    names.learn_from(content);
    redact_value(content, names)
}

#[cfg(test)]
#[path = "documents_tests.rs"]
mod documents_tests;
