//! Real-shaped Jira and Confluence documents (and the ids in them) shared by the tests.

use serde_json::{Value, json};

use super::*;

pub(super) const ALICE: &str = "5b10ac8d82e05b22cc7d4ef5";
pub(super) const BOB: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
pub(super) const CAROL: &str = "712020:0e7a4f3c-8a52-4d1e-9a3b-2f6c1d4e5a6b";
/// Only ever mentioned, never seen as a user object.
pub(super) const DAVE: &str = "5d53f3cbc6b9320d9ea5bdc2";
pub(super) const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub(super) const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
pub(super) const LOCAL_ID: &str = "c7e5f0b4-2d0a-4e8b-9f3c-1a2b3c4d5e6f";
pub(super) const SITE: &str = "https://example.atlassian.net";

/// A JSM portal-only customer (the shape of the JSM REST reference's customer examples).
pub(super) const CUSTOMER: &str = "qm:a713c8ea-1075-4e30-9d96-891a7d181739:5ad6d3581db05e2a66fa80b";
/// Another one, whose tail is a uuid (seen in organization/user answers).
pub(super) const CUSTOMER2: &str =
    "qm:1dc3818c-9fe1-4abf-a66a-f48e41eb4b49:99b430e4-c46f-483d-b11a-c51f04485115";
/// A 24-hex word that is not an account id (a MongoDB object id of some tool, an abbreviated
/// hash): it stays wherever nothing says it is an account id.
pub(super) const OBJECT_ID: &str = "64b7f0c2a1d3e4f5a6b7c8d9";

/// Alice and Bob named.
pub(super) fn book() -> NameBook {
    let mut names = NameBook::default();
    names.insert(ALICE, "Alice Example");
    names.insert(BOB, "Bob Builder");
    names
}

// --- documents ---------------------------------------------------------------------------------

pub(super) fn jira_user(id: &str, name: &str, email: Option<&str>) -> Value {
    let avatar = |size: u32| {
        format!(
            "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{id}/8f4c7c5e-3b0d-4c8e-9d5a-2b1f0e6a7c3d/{size}"
        )
    };
    let mut user = json!({
        "self": format!("{SITE}/rest/api/3/user?accountId={id}"),
        "accountId": id,
        "avatarUrls": {
            "48x48": avatar(48), "24x24": avatar(24), "16x16": avatar(16), "32x32": avatar(32)
        },
        "displayName": name,
        "active": true,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian",
        "locale": "en_US"
    });
    if let Some(email) = email {
        user["emailAddress"] = json!(email);
    }
    user
}

pub(super) fn adf_mention(id: &str, text: Option<&str>) -> Value {
    let mut attrs = json!({
        "id": id, "accessLevel": "", "userType": "DEFAULT",
        "localId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    });
    if let Some(text) = text {
        attrs["text"] = json!(text);
    }
    json!({"type": "mention", "attrs": attrs})
}

pub(super) fn adf_paragraph(content: Vec<Value>) -> Value {
    json!({"type": "paragraph", "content": content})
}

pub(super) fn adf_text(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

pub(super) fn jira_description() -> Value {
    json!({
        "type": "doc",
        "version": 1,
        "content": [
            adf_paragraph(vec![
                adf_text("Upload of build "),
                json!({"type": "text", "text": SHA256, "marks": [{"type": "code"}]}),
                adf_text(" fails, see https://status.example.com/incidents/42"),
            ]),
            {
                "type": "table",
                "attrs": {"isNumberColumnEnabled": false, "layout": "default", "localId": LOCAL_ID},
                "content": [{
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "attrs": {}, "content": [adf_paragraph(vec![adf_text("Owner")])]},
                        {"type": "tableCell", "attrs": {}, "content": [
                            adf_paragraph(vec![adf_text("Owner: "), adf_mention(BOB, Some("@Bob Builder"))])
                        ]}
                    ]
                }]
            }
        ]
    })
}

pub(super) fn jira_comment() -> Value {
    json!({
        "self": format!("{SITE}/rest/api/3/issue/10042/comment/10200"),
        "id": "10200",
        "author": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
        "updateAuthor": jira_user(BOB, "Bob Builder", None),
        "body": {
            "type": "doc", "version": 1,
            "content": [adf_paragraph(vec![
                adf_text("Thanks "),
                adf_mention(ALICE, None),
                adf_text(" and "),
                adf_mention(DAVE, Some("")),
                adf_text(", fixed in ALPHA-2."),
            ])]
        },
        "created": "2024-05-02T11:00:00.000+0000",
        "updated": "2024-05-02T11:05:00.000+0000",
        "jsdPublic": true
    })
}

pub(super) fn jira_issue() -> Value {
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": "10042",
        "self": format!("{SITE}/rest/api/3/issue/10042"),
        "key": "ALPHA-1",
        "fields": {
            "summary": "Export fails on large attachments",
            "created": "2024-05-02T10:15:30.123+0000",
            "updated": "2024-05-03T08:00:00.000+0000",
            "status": {"self": format!("{SITE}/rest/api/3/status/3"), "id": "3", "name": "In Progress"},
            "project": {
                "self": format!("{SITE}/rest/api/3/project/10000"),
                "id": "10000", "key": "ALPHA", "name": "Alpha",
                "avatarUrls": {"48x48": format!("{SITE}/rest/api/3/universal_avatar/view/type/project/avatar/10400")}
            },
            "reporter": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
            "assignee": jira_user(BOB, "Bob Builder", None),
            "creator": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
            "customfield_10050": [
                jira_user(ALICE, "Alice Example", Some("alice@example.com")),
                jira_user(CAROL, "Carol Chen", Some("carol@example.com"))
            ],
            "customfield_10060": format!("sha256:{SHA256}"),
            "customfield_10061": SHA1,
            "attachment": [{
                "self": format!("{SITE}/rest/api/3/attachment/10100"),
                "id": "10100",
                "filename": "trace.log",
                "author": jira_user(BOB, "Bob Builder", None),
                "created": "2024-05-02T10:20:00.000+0000",
                "size": 2048,
                "mimeType": "text/plain",
                "content": format!("{SITE}/rest/api/3/attachment/content/10100")
            }],
            "description": jira_description(),
            "comment": {
                "comments": [jira_comment()],
                "self": format!("{SITE}/rest/api/3/issue/10042/comment"),
                "maxResults": 1, "total": 1, "startAt": 0
            }
        },
        "renderedFields": {
            "description": format!(
                "<p>Owner: <a href=\"{SITE}/secure/ViewProfile.jspa?accountId=557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077\" class=\"user-hover\" rel=\"{BOB}\" data-account-id=\"{BOB}\">Bob Builder</a></p>"
            )
        },
        "comments": [jira_comment()],
        "changelog": {
            "startAt": 0, "maxResults": 2, "total": 2,
            "histories": [{
                "id": "100",
                "author": jira_user(CAROL, "Carol Chen", Some("carol@example.com")),
                "created": "2024-05-02T12:00:00.000+0000",
                "items": [{
                    "field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                    "from": ALICE, "fromString": "Alice Example",
                    "to": BOB, "toString": "Bob Builder",
                    "tmpFromAccountId": ALICE, "tmpToAccountId": BOB
                }, {
                    "field": "description", "fieldtype": "jira", "fieldId": "description",
                    "from": null, "fromString": format!("Ask [~accountid:{ALICE}]"),
                    "to": null, "toString": format!("Ask [~accountid:{BOB}] please")
                }]
            }]
        }
    })
}

pub(super) fn confluence_user(id: &str, display: Option<&str>, public: &str, email: &str) -> Value {
    let mut user = json!({
        "type": "known",
        "accountId": id,
        "accountType": "atlassian",
        "email": email,
        "publicName": public,
        "profilePicture": {
            "path": format!("/wiki/aa-avatar/{id}"), "width": 48, "height": 48, "isDefault": false
        },
        "timeZone": "Europe/London",
        "isExternalCollaborator": false,
        "_expandable": {"operations": "", "personalSpace": ""},
        "_links": {"self": format!("{SITE}/wiki/rest/api/user?accountId={id}")}
    });
    if let Some(display) = display {
        user["displayName"] = json!(display);
    }
    user
}

pub(super) fn storage_body() -> String {
    format!(
        "<p>Owner: <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link>, reviewer \
         <ac:link><ri:user ri:account-id='{ALICE}'></ri:user></ac:link>, \
         cc <ri:user ri:account-id=\"{DAVE}\"/>. Home: <ac:link><ri:page ri:content-title=\"Home\" /></ac:link>. \
         Checksum <code>{SHA256}</code>.</p>"
    )
}

pub(super) fn confluence_adf_body() -> String {
    json!({
        "type": "doc", "version": 1,
        "content": [adf_paragraph(vec![adf_text("Ping "), adf_mention(CAROL, Some("@Carol Chen"))])]
    })
    .to_string()
}

pub(super) fn confluence_v1_page() -> Value {
    json!({
        "id": "393217",
        "type": "page",
        "status": "current",
        "title": "Release checklist",
        "space": {
            "id": 98306, "key": "ENG", "name": "Engineering", "type": "global",
            "_links": {"webui": "/spaces/ENG", "self": format!("{SITE}/wiki/rest/api/space/ENG")},
            "_expandable": {"homepage": "/rest/api/content/393200"}
        },
        "history": {
            "latest": true,
            "createdBy": confluence_user(BOB, Some("Bob Builder"), "Bob Builder", "bob@example.com"),
            "createdDate": "2024-04-01T09:00:00.000Z",
            "lastUpdated": {
                "by": confluence_user(ALICE, Some("Alice Example"), "Alice Example", "alice@example.com"),
                "when": "2024-04-02T09:00:00.000Z",
                "friendlyWhen": "yesterday at 9:00 AM",
                "message": "", "number": 3, "minorEdit": false
            },
            "contributors": {"publishers": {
                "users": [confluence_user(CAROL, None, "Carol Chen", "carol@example.com")],
                "userAccountIds": [CAROL],
                "userKeys": ["ff8080815a0b3b12015a0b3c7e2a0000"]
            }}
        },
        "version": {
            "by": confluence_user(ALICE, Some("Alice Example"), "Alice Example", "alice@example.com"),
            "when": "2024-04-02T09:00:00.000Z",
            "friendlyWhen": "yesterday at 9:00 AM",
            "message": "Fixed typo",
            "number": 3,
            "minorEdit": false,
            "confRev": "confluence$content$393217.5",
            "contentTypeModified": false
        },
        "ancestors": [{"id": "393200", "type": "page", "status": "current", "title": "Releases"}],
        "body": {
            "storage": {
                "value": storage_body(),
                "representation": "storage",
                "embeddedContent": [],
                "_expandable": {"content": "/rest/api/content/393217"}
            },
            "atlas_doc_format": {"value": confluence_adf_body(), "representation": "atlas_doc_format"},
            "view": {
                "value": format!(
                    "<p>Owner: <a class=\"confluence-userlink user-mention\" data-account-id=\"{BOB}\" \
                     href=\"{SITE}/wiki/people/{BOB}?ref=confluence\" data-linked-resource-type=\"userinfo\" \
                     data-base-url=\"{SITE}/wiki\">Bob Builder</a></p>"
                ),
                "representation": "view"
            }
        },
        "_links": {
            "webui": "/spaces/ENG/pages/393217/Release+checklist",
            "self": format!("{SITE}/wiki/rest/api/content/393217"),
            "base": format!("{SITE}/wiki"),
            "tinyui": "/x/AQAG"
        }
    })
}

pub(super) fn confluence_v2_page() -> Value {
    json!({
        "id": "393217",
        "status": "current",
        "title": "Release checklist",
        "spaceId": "98306",
        "parentId": "393200",
        "parentType": "page",
        "position": 4,
        "authorId": BOB,
        "ownerId": BOB,
        "lastOwnerId": null,
        "createdAt": "2024-04-01T09:00:00.000Z",
        "version": {
            "createdAt": "2024-04-02T09:00:00.000Z", "message": "", "number": 3,
            "minorEdit": false, "authorId": ALICE
        },
        "body": {"storage": {
            "representation": "storage",
            "value": format!("<p>Hi <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link></p>")
        }},
        "_links": {
            "editui": "/pages/resumedraft.action?draftId=393217",
            "webui": "/spaces/ENG/pages/393217/Release+checklist",
            "tinyui": "/x/AQAG"
        }
    })
}

pub(super) fn confluence_v2_attachment() -> Value {
    json!({
        "id": "att393300",
        "status": "current",
        "title": "trace.log",
        "createdAt": "2024-04-02T09:00:00.000Z",
        "pageId": "393217",
        "mediaType": "text/plain",
        "fileId": LOCAL_ID,
        "fileSize": 2048,
        "webuiLink": "/pages/viewpageattachments.action?pageId=393217",
        "downloadLink": "/download/attachments/393217/trace.log?version=1&api=v2",
        "createdBy": CAROL,
        "version": {"createdAt": "2024-04-02T09:00:00.000Z", "number": 1, "authorId": CAROL}
    })
}

pub(super) fn assert_no_account_ids(doc: &Value) {
    let text = serde_json::to_string(doc).unwrap();
    assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
}

pub(super) fn redacted_jira_issue() -> (Value, Redactions) {
    let mut doc = jira_issue();
    let mut names = NameBook::default();
    let r = redact_jira_issue(&mut doc, &mut names);
    (doc, r)
}

pub(super) fn redacted_confluence(doc: Value) -> (Value, Redactions) {
    let mut doc = doc;
    let mut names = NameBook::default();
    let r = redact_confluence_content(&mut doc, &mut names);
    (doc, r)
}

pub(super) fn text_of_mention(v: &Value) -> &str {
    assert_eq!(v["type"], "mention", "{v}");
    v["attrs"]["text"].as_str().unwrap()
}
