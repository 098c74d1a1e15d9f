//! Atlassian Document Format (ADF) builders for rich text: paragraphs, mentions, lists, code.
//! Node shapes per https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
//! (`doc` version 1, `paragraph`, `text`, `mention` with `attrs.id` = account id, `bulletList`,
//! `codeBlock`); Jira REST v3 returns rich text as ADF ("Atlassian Document Format" in the v3
//! reference's intro).

use serde_json::{Value, json};

use super::rng::SeedRng;
use super::seed;
use super::users::Users;

pub(crate) fn text(s: &str) -> Value {
    json!({ "type": "text", "text": s })
}

/// A mention node: `attrs.id` is the account id, `attrs.text` the `@Display Name`.
pub(crate) fn mention(users: &Users, index: usize) -> Value {
    let u = users.get(index);
    json!({
        "type": "mention",
        "attrs": { "id": u.account_id, "text": format!("@{}", u.display_name), "accessLevel": "" },
    })
}

pub(crate) fn paragraph(content: Vec<Value>) -> Value {
    json!({ "type": "paragraph", "content": content })
}

pub(crate) fn doc(content: Vec<Value>) -> Value {
    json!({ "type": "doc", "version": 1, "content": content })
}

/// A deterministic rich-text document with 1–3 paragraphs, at least one mention, and sometimes a
/// bullet list and a code block.
pub(crate) fn document(seed: u64, users: &Users) -> Value {
    let mut rng = SeedRng::derive(seed, "adf", 0);
    let n = users.len().max(1);
    let mut content = vec![paragraph(vec![
        text("Reported by "),
        mention(users, rng.index(n)),
        text(": "),
        text(seed::sentence(&mut rng)),
    ])];
    for _ in 0..rng.below(3) {
        content.push(paragraph(vec![text(seed::sentence(&mut rng))]));
    }
    if rng.chance(0.4) {
        let items = (0..rng.range(1, 3))
            .map(|_| json!({ "type": "listItem", "content": [paragraph(vec![text(seed::sentence(&mut rng))])] }))
            .collect::<Vec<_>>();
        content.push(json!({ "type": "bulletList", "content": items }));
    }
    if rng.chance(0.3) {
        content.push(json!({
            "type": "codeBlock",
            "attrs": { "language": "rust" },
            "content": [text("let retry_after = headers.get(\"Retry-After\");")],
        }));
    }
    content.push(paragraph(vec![
        text("cc "),
        mention(users, rng.index(n)),
        text(" "),
    ]));
    doc(content)
}

/// A short comment body: a sentence, often with a mention.
pub(crate) fn comment(seed: u64, users: &Users) -> Value {
    let mut rng = SeedRng::derive(seed, "adf-comment", 0);
    let mut parts = vec![text(seed::sentence(&mut rng))];
    if rng.chance(0.6) {
        parts.push(text(" "));
        parts.push(mention(users, rng.index(users.len().max(1))));
    }
    doc(vec![paragraph(parts)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_mentions_with_account_ids() {
        let users = Users::generate(1);
        let d = document(5, &users).to_string();
        assert!(d.contains("\"type\":\"mention\""));
        assert!(users.all().iter().any(|u| d.contains(&u.account_id)));
    }
}
