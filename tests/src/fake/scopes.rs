//! Which OAuth 2.0 scopes each fake API endpoint needs: one table, one row per endpoint, each row
//! citing the endpoint's documentation page. The rows restate the "OAuth 2.0 scopes required"
//! box of those pages, whose machine-readable form is the `x-atlassian-oauth2-scopes` entry of
//! Atlassian's OpenAPI documents (checked against the Jira platform document
//! `1001.0.0-SNAPSHOT-57a0ca5b…`, as vendored by jarekbird/jira-api-mcp-wrapper, and the
//! Confluence v1/v2 documents vendored by xvrh/atlassian_apis under `tool/apis/`).
//!
//! A requirement is a list of alternatives; an alternative is a set of scopes that must ALL be
//! held. The docs give one classic scope ("Current") and, for most endpoints, one granular set
//! ("Beta"): either satisfies the gateway. When none does, the gateway answers
//! `401 {"code":401,"message":"Unauthorized; scope does not match"}` (observed verbatim, with
//! `X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`, in kovetskiy/mark#917 and
//! pchuri/confluence-cli#76).
//!
//! Scopes do not imply one another here: `read:confluence-content.all` does NOT satisfy an
//! endpoint documented with `read:confluence-content.summary` (pchuri/confluence-cli#76/#78: a
//! token with `.all` alone got 401 until `.summary` was added).

/// The product an endpoint (or a scope) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Product {
    Jira,
    Confluence,
}

impl Product {
    pub(crate) const ALL: [Product; 2] = [Product::Jira, Product::Confluence];

    /// Whether `scope` is one of this product's. Classic and granular scope names carry the
    /// product in their name (`read:jira-work`, `read:issue:jira`, `search:confluence`,
    /// `readonly:content.attachment:confluence`); `offline_access` and platform scopes
    /// (`read:me`) belong to no product. See the scope lists at
    /// https://developer.atlassian.com/cloud/jira/platform/scopes-for-oauth-2-3LO-and-forge-apps/
    /// and https://developer.atlassian.com/cloud/confluence/scopes-for-oauth-2-3LO-and-forge-apps/
    pub(crate) fn owns(self, scope: &str) -> bool {
        match self {
            Product::Jira => scope.contains("jira"),
            Product::Confluence => scope.contains("confluence"),
        }
    }
}

/// Every endpoint the fake serves under `/ex/{product}/{cloudId}/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    JiraSearchGet,
    JiraSearchPost,
    JiraBulkFetch,
    JiraIssue,
    JiraComments,
    JiraChangelog,
    JiraAttachmentMeta,
    JiraAttachmentContent,
    JiraMyself,
    ConfluenceContentSearch,
    ConfluenceSearch,
    ConfluenceContent,
    ConfluenceChildAttachments,
    ConfluenceAttachmentDownload,
    ConfluenceDownloadServlet,
    ConfluencePageV2,
    ConfluenceBlogPostV2,
    ConfluencePageAttachmentsV2,
    ConfluenceSpacesV2,
}

type Requirement = &'static [&'static [&'static str]];

impl Endpoint {
    /// The scope table.
    pub(crate) fn requirement(self) -> Requirement {
        use Endpoint::*;
        match self {
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get
            JiraSearchGet => &[
                &["read:jira-work"],
                &[
                    "read:issue-details:jira",
                    "read:audit-log:jira",
                    "read:avatar:jira",
                    "read:field-configuration:jira",
                    "read:issue-meta:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-post
            JiraSearchPost => &[
                &["read:jira-work"],
                &[
                    "read:issue-details:jira",
                    "read:field.default-value:jira",
                    "read:field.option:jira",
                    "read:field:jira",
                    "read:group:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulkfetch-post
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get
            JiraBulkFetch | JiraIssue => &[&["read:jira-work"], JIRA_ISSUE_GRANULAR],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/#api-rest-api-3-issue-issueidorkey-comment-get
            JiraComments => &[
                &["read:jira-work"],
                &[
                    "read:comment:jira",
                    "read:comment.property:jira",
                    "read:group:jira",
                    "read:project:jira",
                    "read:project-role:jira",
                    "read:user:jira",
                    "read:avatar:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
            JiraChangelog => &[
                &["read:jira-work"],
                &[
                    "read:issue-meta:jira",
                    "read:avatar:jira",
                    "read:issue.changelog:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-attachments/#api-rest-api-3-attachment-id-get
            JiraAttachmentMeta => &[
                &["read:jira-work"],
                &[
                    "read:attachment:jira",
                    "read:user:jira",
                    "read:application-role:jira",
                    "read:avatar:jira",
                    "read:group:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-attachments/#api-rest-api-3-attachment-content-id-get
            JiraAttachmentContent => &[&["read:jira-work"], &["read:attachment:jira"]],
            // https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get
            JiraMyself => &[
                &["read:jira-user"],
                &[
                    "read:application-role:jira",
                    "read:group:jira",
                    "read:user:jira",
                    "read:avatar:jira",
                ],
            ],
            // https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/#api-wiki-rest-api-content-search-get
            // https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-search/#api-wiki-rest-api-search-get
            ConfluenceContentSearch | ConfluenceSearch => {
                &[&["search:confluence"], &["read:content-details:confluence"]]
            }
            // https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/#api-wiki-rest-api-content-id-get
            // https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content---attachments/#api-wiki-rest-api-content-id-child-attachment-get
            ConfluenceContent | ConfluenceChildAttachments => &[
                &["read:confluence-content.summary"],
                &["read:content-details:confluence"],
            ],
            // https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content---attachments/#api-wiki-rest-api-content-id-child-attachment-attachmentid-download-get
            ConfluenceAttachmentDownload => &[
                &["readonly:content.attachment:confluence"],
                &["read:attachment:confluence"],
            ],
            // `/wiki/download/attachments/…` is a servlet, not a REST operation: no page documents
            // its scopes. ASSUMPTION: the gateway treats it like the documented download above
            // (production clients that use `_links.download` request
            // `readonly:content.attachment:confluence`, e.g. Onyx's Confluence OAuth scopes).
            ConfluenceDownloadServlet => &[
                &["readonly:content.attachment:confluence"],
                &["read:attachment:confluence"],
            ],
            // v2 documents granular scopes only.
            // https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-page/#api-pages-id-get
            // https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-blog-post/#api-blogposts-id-get
            ConfluencePageV2 | ConfluenceBlogPostV2 => &[&["read:page:confluence"]],
            // https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-attachment/#api-pages-id-attachments-get
            ConfluencePageAttachmentsV2 => &[&["read:attachment:confluence"]],
            // https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-space/#api-spaces-get
            ConfluenceSpacesV2 => &[&["read:space:confluence"]],
        }
    }

    /// Whether a token holding `scopes` may call this endpoint.
    pub(crate) fn allows(self, scopes: &[String]) -> bool {
        self.requirement()
            .iter()
            .any(|all| all.iter().all(|need| scopes.iter().any(|s| s == need)))
    }
}

/// The granular set the docs list for reading issues (get issue, bulk fetch).
const JIRA_ISSUE_GRANULAR: &[&str] = &[
    "read:issue-meta:jira",
    "read:issue-security-level:jira",
    "read:issue.vote:jira",
    "read:issue.changelog:jira",
    "read:avatar:jira",
    "read:issue:jira",
    "read:status:jira",
    "read:user:jira",
    "read:field-configuration:jira",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn classic_or_a_complete_granular_set() {
        assert!(Endpoint::JiraIssue.allows(&owned(&["read:jira-work"])));
        assert!(Endpoint::JiraIssue.allows(&owned(JIRA_ISSUE_GRANULAR)));
        assert!(!Endpoint::JiraIssue.allows(&owned(&JIRA_ISSUE_GRANULAR[1..])));
        assert!(!Endpoint::JiraMyself.allows(&owned(&["read:jira-work"])));
    }

    #[test]
    fn content_all_does_not_imply_summary_or_attachment_download() {
        let all = owned(&["read:confluence-content.all", "search:confluence"]);
        assert!(Endpoint::ConfluenceContentSearch.allows(&all));
        assert!(!Endpoint::ConfluenceContent.allows(&all));
        assert!(!Endpoint::ConfluenceChildAttachments.allows(&all));
        assert!(!Endpoint::ConfluenceAttachmentDownload.allows(&all));
        assert!(!Endpoint::ConfluencePageV2.allows(&all));
    }

    #[test]
    fn products_own_their_scopes() {
        assert!(Product::Jira.owns("read:jira-work"));
        assert!(Product::Jira.owns("read:issue:jira"));
        assert!(!Product::Jira.owns("offline_access"));
        assert!(Product::Confluence.owns("readonly:content.attachment:confluence"));
        assert!(!Product::Confluence.owns("read:jira-user"));
        for (e, product) in [
            (Endpoint::JiraMyself, Product::Jira),
            (Endpoint::JiraSearchPost, Product::Jira),
            (Endpoint::ConfluenceAttachmentDownload, Product::Confluence),
            (Endpoint::ConfluenceSpacesV2, Product::Confluence),
        ] {
            assert!(
                e.requirement()
                    .iter()
                    .all(|alt| alt.iter().all(|s| product.owns(s)))
            );
        }
    }
}
