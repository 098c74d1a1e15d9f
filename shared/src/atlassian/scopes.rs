//! The OAuth 2.0 (3LO) scopes each endpoint we call documents, so that a 401 "scope does not
//! match" names the scope the grant lacks, not only the endpoint (issue 15). The table mirrors
//! the README's "Scopes per endpoint" (each row cites the page that names the scope).
//!
//! Atlassian accepts either the classic scope or the granular ones for most endpoints
//! ("Choose either classic scopes or granular scopes", developer.atlassian.com/cloud/jira/platform/scopes-for-oauth-2-3LO-and-forge-apps/).
//! We request classic scopes only, so a grant that holds granular scopes instead is reported
//! as lacking the classic one: the message is advice on a job that already failed, and both
//! readings send the operator to the developer console, where the answer is visible.

use crate::ids::Product;

/// The classic scopes the endpoint (the label used in errors) documents; empty for a label
/// this table does not know.
pub fn documented_scopes(product: Product, endpoint: &str) -> &'static [&'static str] {
    match (product, endpoint) {
        // developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/
        // (search/jql), api-group-issues/ (bulkfetch), api-group-issue-comments/,
        // api-group-issue-attachments/ (attachment content): "Classic: read:jira-work".
        (Product::Jira, "jira.search" | "jira.bulkfetch" | "jira.comments")
        | (Product::Jira, "attachment.download") => &["read:jira-work"],
        // developer.atlassian.com/cloud/confluence/rest/v1/api-group-search/ (CQL content
        // search, every listing the export makes): "Classic: search:confluence".
        (
            Product::Confluence,
            "confluence.search"
            | "confluence.content-bodies"
            | "confluence.comments"
            | "confluence.attachments",
        ) => &["search:confluence"],
        // …/rest/v1/api-group-content---attachments/ (download): production clients request
        // readonly:content.attachment:confluence for it (ATLASSIAN.md, issue 15).
        (Product::Confluence, "attachment.download") => &["readonly:content.attachment:confluence"],
        _ => &[],
    }
}

/// The documented scopes of `endpoint` that `granted` (the token response's space-separated
/// `scope`) does not hold.
pub fn missing_scopes(product: Product, endpoint: &str, granted: &str) -> Vec<&'static str> {
    documented_scopes(product, endpoint)
        .iter()
        .copied()
        .filter(|s| !granted.split_whitespace().any(|g| g == *s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_without_the_download_scope_lacks_exactly_it() {
        let granted = "search:confluence read:confluence-content.all offline_access";
        assert_eq!(
            missing_scopes(Product::Confluence, "attachment.download", granted),
            vec!["readonly:content.attachment:confluence"]
        );
        assert!(missing_scopes(Product::Confluence, "confluence.comments", granted).is_empty());
    }

    #[test]
    fn scopes_match_whole_words_only() {
        assert_eq!(
            missing_scopes(Product::Jira, "jira.search", "read:jira-work-extra"),
            vec!["read:jira-work"]
        );
        assert!(missing_scopes(Product::Jira, "jira.search", "read:jira-work").is_empty());
        assert!(missing_scopes(Product::Jira, "unknown.endpoint", "").is_empty());
    }
}
