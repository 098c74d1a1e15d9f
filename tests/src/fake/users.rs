//! The seeded people (and one app), with account ids in both Atlassian formats, unicode display
//! names, hidden e-mail addresses for some, and their JSON shapes in Jira and Confluence.

use serde_json::{Value, json};

use super::rng::SeedRng;

/// One seeded account, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// `5b10ac8d82e05b22cc7d4ef5` (legacy, 24 hex) or `557058:f58131cb-…` style.
    pub account_id: String,
    pub display_name: String,
    /// `None` when the user's privacy settings hide it.
    pub email: Option<String>,
    /// `atlassian` or `app`.
    pub account_type: String,
    pub active: bool,
    pub time_zone: String,
    pub locale: String,
}

/// (display name, e-mail local part or "" when hidden, account type, active, time zone, locale)
const PEOPLE: &[(&str, &str, &str, bool, &str, &str)] = &[
    (
        "Zoë Ångström",
        "zoe.angstrom",
        "atlassian",
        true,
        "Europe/Stockholm",
        "sv_SE",
    ),
    (
        "José Núñez",
        "",
        "atlassian",
        true,
        "America/Mexico_City",
        "es_MX",
    ),
    (
        "田中 太郎",
        "taro.tanaka",
        "atlassian",
        true,
        "Asia/Tokyo",
        "ja_JP",
    ),
    (
        "Ольга Петрова",
        "",
        "atlassian",
        true,
        "Europe/Moscow",
        "ru_RU",
    ),
    (
        "Søren O'Brien",
        "soren.obrien",
        "atlassian",
        true,
        "Europe/Copenhagen",
        "da_DK",
    ),
    ("محمد علي", "m.ali", "atlassian", true, "Asia/Riyadh", "ar"),
    (
        "Priya Patel",
        "priya.patel",
        "atlassian",
        true,
        "Europe/London",
        "en_GB",
    ),
    (
        "Łukasz Wójcik",
        "",
        "atlassian",
        true,
        "Europe/Warsaw",
        "pl_PL",
    ),
    (
        "Nguyễn Thị Hoa",
        "hoa.nguyen",
        "atlassian",
        true,
        "Asia/Ho_Chi_Minh",
        "vi_VN",
    ),
    (
        "Chris \"CJ\" <Jones>",
        "cj",
        "atlassian",
        true,
        "America/New_York",
        "en_US",
    ),
    ("Former Employee", "", "atlassian", false, "UTC", "en_US"),
    ("Automation for Jira", "", "app", true, "UTC", "en_US"),
];

const AVATAR_HOST: &str = "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net";

#[derive(Clone, Debug)]
pub(crate) struct Users {
    list: Vec<UserInfo>,
}

impl Users {
    pub(crate) fn generate(seed: u64) -> Self {
        let mut rng = SeedRng::derive(seed, "users", 0);
        let list = PEOPLE
            .iter()
            .enumerate()
            .map(|(i, (name, email, kind, active, tz, locale))| {
                // Formats: legacy 24 hex (the docs' example `5b10ac8d82e05b22cc7d4ef5`, Jira
                // `User.accountId`) and `NNNNNN:uuid` (ATLASSIAN.md, "Where account IDs hide").
                let account_id = match i % 3 {
                    // Legacy format: 24 lower-case hex characters.
                    0 => format!("{:012x}{:012x}", rng.next_u64() >> 16, rng.next_u64() >> 16),
                    1 => format!("557058:{}", rng.uuid()),
                    _ => format!("712020:{}", rng.uuid()),
                };
                UserInfo {
                    account_id,
                    display_name: (*name).to_owned(),
                    email: (!email.is_empty()).then(|| format!("{email}@example.com")),
                    account_type: (*kind).to_owned(),
                    active: *active,
                    time_zone: (*tz).to_owned(),
                    locale: (*locale).to_owned(),
                }
            })
            .collect();
        Self { list }
    }

    pub(crate) fn all(&self) -> &[UserInfo] {
        &self.list
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn get(&self, index: usize) -> &UserInfo {
        &self.list[index % self.list.len().max(1)]
    }

    /// A Jira user object; `api_base` is `{base}/ex/jira/{cloudId}`. Fields: the `User` schema of
    /// the Jira platform OpenAPI document (`self`, `accountId`, `avatarUrls`, `displayName`,
    /// `active`, `timeZone`, `locale`, `accountType`, `emailAddress`). A hidden e-mail "may be
    /// returned as null" per that schema; the fake leaves the key out instead. ASSUMPTION: both
    /// occur for privacy-restricted users; our export copies the user object as a JSON tree
    /// (`shared/src/export/redact`), so either passes through.
    pub(crate) fn jira_json(&self, index: usize, api_base: &str) -> Value {
        let u = self.get(index);
        let avatar = |size: u32| format!("{AVATAR_HOST}/{}/{size}", u.account_id);
        let mut v = json!({
            "self": format!("{api_base}/rest/api/3/user?accountId={}", u.account_id),
            "accountId": u.account_id,
            "avatarUrls": {
                "48x48": avatar(48),
                "24x24": avatar(24),
                "16x16": avatar(16),
                "32x32": avatar(32),
            },
            "displayName": u.display_name,
            "active": u.active,
            "timeZone": u.time_zone,
            "locale": u.locale,
            "accountType": u.account_type,
        });
        if let (Some(email), Some(obj)) = (&u.email, v.as_object_mut()) {
            obj.insert("emailAddress".into(), json!(email));
        }
        v
    }

    /// A Confluence v1 user object (`by`, `createdBy`); `wiki_base` is the site's `/wiki` URL.
    /// Fields: the v1 `User` schema (developer.atlassian.com/cloud/confluence/rest/v1/, "email
    /// ... Depending on the user's privacy setting, this may return an empty string", hence `""`
    /// for a hidden one; "publicName ... Will always contain a value").
    pub(crate) fn confluence_json(&self, index: usize, wiki_base: &str) -> Value {
        let u = self.get(index);
        let mut v = json!({
            "type": "known",
            "accountId": u.account_id,
            "accountType": u.account_type,
            "publicName": u.display_name,
            "timeZone": u.time_zone,
            "profilePicture": {
                "path": format!("/wiki/aa-avatar/{}", u.account_id),
                "width": 48,
                "height": 48,
                "isDefault": false,
            },
            "displayName": u.display_name,
            "isExternalCollaborator": false,
            "_links": { "self": format!("{wiki_base}/rest/api/user?accountId={}", u.account_id) },
        });
        if let Some(obj) = v.as_object_mut() {
            obj.insert("email".into(), json!(u.email.clone().unwrap_or_default()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_account_id_formats_are_seeded() {
        let users = Users::generate(1);
        assert!(
            users
                .all()
                .iter()
                .any(|u| u.account_id.len() == 24 && !u.account_id.contains(':'))
        );
        assert!(
            users
                .all()
                .iter()
                .any(|u| u.account_id.starts_with("557058:") && u.account_id.len() == 43)
        );
        assert!(users.all().iter().any(|u| u.email.is_none()));
    }

    #[test]
    fn hidden_email_is_absent_from_jira_json() {
        let users = Users::generate(1);
        let v = users.jira_json(1, "http://x/ex/jira/c");
        assert!(v.get("emailAddress").is_none());
        assert!(
            v["self"]
                .as_str()
                .unwrap_or_default()
                .contains(&users.get(1).account_id)
        );
    }
}
