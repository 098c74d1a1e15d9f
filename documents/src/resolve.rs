//! What a renderer cannot know from the rich text alone: people's names, where attachments were
//! written, the human links of issues and pages. The export supplies it.

/// An attachment as rich text refers to it: ADF `media` nodes by Media Services id (and, when
/// the editor set it, `alt` = the file name); storage format by file name, on this page or on
/// another page named by title and space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachmentRef<'a> {
    pub file_name: Option<&'a str>,
    /// ADF `media.attrs.id`.
    pub media_id: Option<&'a str>,
    /// ADF `media.attrs.collection`.
    pub collection: Option<&'a str>,
    /// Storage `<ri:page ri:content-title>` inside `<ri:attachment>`: the page that holds it.
    pub page_title: Option<&'a str>,
    pub space_key: Option<&'a str>,
}

/// Where a resolved attachment is: the text to show and the link target (our S3 key or a path
/// relative to the document, as the export decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentLink {
    pub name: String,
    pub href: String,
}

/// Answers the renderers' questions. Every method has a default that knows nothing, so an
/// implementation supplies only what it has.
///
/// Account ids never appear in rendered output: a mention whose id this resolver cannot name is
/// rendered from the name the mention node carries, or as `@unknown user`.
pub trait Resolver {
    /// The display name of an Atlassian account.
    fn display_name(&self, _account_id: &str) -> Option<String> {
        None
    }

    /// Where an attachment was exported.
    fn attachment(&self, _attachment: &AttachmentRef<'_>) -> Option<AttachmentLink> {
        None
    }

    /// The human link of a Jira issue (storage format's Jira macro).
    fn issue_url(&self, _issue_key: &str) -> Option<String> {
        None
    }

    /// The human link of a Confluence page, by title and (when not the current space) space key.
    fn page_url(&self, _title: &str, _space_key: Option<&str>) -> Option<String> {
        None
    }
}

/// Knows nothing: mentions render from their own text, attachments as their names.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResolver;

impl Resolver for NoResolver {}

/// The name shown for a person the resolver could not name.
pub const UNKNOWN_USER: &str = "unknown user";

/// `@Name` for a mention: the resolver's name for the id, else the name the rich text carried,
/// else [`UNKNOWN_USER`]. Never the id: a carried name that is itself an account id is dropped.
pub(crate) fn mention(
    resolver: &dyn Resolver,
    account_id: Option<&str>,
    carried: Option<&str>,
) -> String {
    let resolved = account_id
        .filter(|id| !id.is_empty())
        .and_then(|id| resolver.display_name(id))
        .map(|n| n.trim().trim_start_matches('@').trim().to_string())
        .filter(|n| !n.is_empty() && !looks_like_account_id(n));
    let carried = || {
        carried
            .map(|t| t.trim().trim_start_matches('@').trim().to_string())
            .filter(|n| {
                !n.is_empty() && !looks_like_account_id(n) && Some(n.as_str()) != account_id
            })
    };
    let name = resolved
        .or_else(carried)
        .unwrap_or_else(|| UNKNOWN_USER.to_string());
    format!("@{name}")
}

/// Whether a whole string has the shape of an Atlassian account id: 24 hex digits (legacy) or
/// `<digits>:<uuid>` (see shared/ATLASSIAN.md, "Where account IDs hide"). A last line of
/// defence for names taken from the rich text itself; the export's redaction pass is the first.
pub(crate) fn looks_like_account_id(s: &str) -> bool {
    let s = s.trim();
    let is_hex = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
    if s.len() == 24 && is_hex(s) {
        return true;
    }
    if let Some((prefix, rest)) = s.split_once(':') {
        let parts: Vec<&str> = rest.split('-').collect();
        let uuid_shape = parts.len() == 5
            && parts
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(p, n)| p.len() == n && is_hex(p));
        return !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) && uuid_shape;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Book;
    impl Resolver for Book {
        fn display_name(&self, id: &str) -> Option<String> {
            (id == "5b10ac8d82e05b22cc7d4ef5").then(|| "Ada Lovelace".to_string())
        }
    }

    #[test]
    fn mention_prefers_the_resolver_then_the_carried_name() {
        assert_eq!(
            mention(&Book, Some("5b10ac8d82e05b22cc7d4ef5"), Some("@Old Name")),
            "@Ada Lovelace"
        );
        assert_eq!(
            mention(&Book, Some("5b10ac8d82e05b22cc7d4ef6"), Some("@Old Name")),
            "@Old Name"
        );
    }

    #[test]
    fn mention_never_shows_an_account_id() {
        for carried in [
            Some("@5b10ac8d82e05b22cc7d4ef6"),
            Some("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"),
            Some("abc"),
            None,
        ] {
            let got = mention(&NoResolver, Some("abc"), carried);
            assert!(
                !got.contains("5b10ac") && !got.contains("557058") && got != "@abc",
                "{got}"
            );
        }
        assert_eq!(mention(&NoResolver, None, None), "@unknown user");
    }

    #[test]
    fn account_id_shapes() {
        assert!(looks_like_account_id("5b10ac8d82e05b22cc7d4ef5"));
        assert!(looks_like_account_id(
            "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
        ));
        assert!(!looks_like_account_id("Ada Lovelace"));
        assert!(!looks_like_account_id("PROJ-123"));
    }
}
