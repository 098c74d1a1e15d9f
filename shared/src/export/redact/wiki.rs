//! Jira wiki markup (API v2 bodies, changelog `fromString`/`toString`): `[~accountid:<id>]`
//! mentions become `@Display Name`. The legacy `[~username]` form names no account id and stays.

use super::ids;
use super::names::NameBook;

/// The mention's opening, matched case-insensitively (`[~accountId:` is seen too).
const WIKI_MENTION: &[u8] = b"[~accountid:";
/// The longest id looked at between `[~accountid:` and `]`.
const WIKI_MENTION_MAX_ID: usize = 128;

/// `[~accountid:<id>]` -> `@Name` (`@unknown user` when the id has no name). `None` when `text`
/// has no such mention.
pub(super) fn replace_wiki_mentions(text: &str, names: &NameBook) -> Option<(String, u64)> {
    let b = text.as_bytes();
    let mut from = ids::find_ci(b, 0, WIKI_MENTION)?;
    let mut out = String::new();
    let mut copied = 0;
    let mut count = 0;
    while let Some(p) = ids::find_ci(b, from, WIKI_MENTION) {
        let id_start = p + WIKI_MENTION.len();
        let window_end = b.len().min(id_start + WIKI_MENTION_MAX_ID);
        let close = b
            .get(id_start..window_end)
            .and_then(|w| w.iter().position(|&c| c == b']'))
            .map(|rel| id_start + rel);
        let id = close.and_then(|c| text.get(id_start..c)).map(str::trim);
        match (close, id) {
            (Some(close), Some(id)) if ids::is_account_id(id) => {
                out.push_str(text.get(copied..p).unwrap_or_default());
                out.push_str(&names.mention_of(id));
                copied = close + 1;
                from = close + 1;
                count += 1;
            }
            _ => from = p + 1,
        }
    }
    if count == 0 {
        return None;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Some((out, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5b10ac8d82e05b22cc7d4ef5";
    const BOB: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
    const CUSTOMER: &str = "qm:a713c8ea-1075-4e30-9d96-891a7d181739:5ad6d3581db05e2a66fa80b";

    fn book() -> NameBook {
        let mut names = NameBook::default();
        names.insert(ALICE, "Alice Example");
        names.insert(BOB, "Bob Builder");
        names
    }

    #[test]
    fn every_id_shape_in_a_wiki_mention_becomes_a_name() {
        let text = format!(
            "Ask [~accountid:{BOB}], [~accountId:{ALICE}] and [~ACCOUNTID: {CUSTOMER} ] or [~jsmith]"
        );
        let (out, n) = replace_wiki_mentions(&text, &book()).unwrap();
        assert_eq!(
            out,
            "Ask @Bob Builder, @Alice Example and @unknown user or [~jsmith]"
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn a_mention_that_is_not_an_account_id_stays() {
        for text in [
            "[~accountid:nobody]",
            "[~accountid:5b10ac8d82e05b22cc7d4ef]",
            "[~accountid:5b10ac8d82e05b22cc7d4ef5",
            "no mention",
        ] {
            assert_eq!(replace_wiki_mentions(text, &book()), None, "{text}");
        }
    }

    #[test]
    fn many_openings_take_linear_time() {
        let text = "[~accountid:".repeat(50_000);
        assert_eq!(replace_wiki_mentions(&text, &book()), None);
    }
}
