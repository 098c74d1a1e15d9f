//! Bulk listings through CQL search: the bodies of a batch of pages (`id in (…)`), or the
//! comments / attachments of a batch (`type = … AND container in (…)`), whatever number of
//! requests that takes (`_links.next`, never assuming the page size asked for).
//!
//! v1 stays necessary here: CQL exists only on v1 (`GET /wiki/rest/api/content/search`, which
//! was not among the v1 endpoints deprecated in favour of v2, CHANGE-864 / RFC-19), and it is
//! the one documented way to read the bodies, comments and attachments of many pages in one
//! request with the classic scope `search:confluence`
//! (https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-search/ ; `container in
//! (…)`: https://developer.atlassian.com/cloud/confluence/cql-fields/).
//!
//! Heavy answers: Cloud may answer 5xx/504 (or time out) when the expanded bodies of one page of
//! results are too big; production clients halve `limit` and retry (Onyx `onyx_confluence.py`,
//! see ../shared/ATLASSIAN.md). Here the limit halves, keeping the cursor, down to 1; then the
//! set splits in two and each half is listed on its own, down to a single page, which is asked
//! with the HTTP layer's ordinary retries. A page that still fails becomes a failed member (the
//! caller records it as skipped) — unless nothing of the listing succeeded at all: then
//! Confluence is failing as a whole and the error goes to the runner, which tries the batch again
//! later. A 403 on a listing fails every member of the set; 404/410 mean the endpoint was
//! removed and fail the job naming it.

use std::collections::HashSet;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::atlassian::http::{Failure, HttpError, Idempotency, TransportKind};
use crate::export::ExportError;
use crate::export::source::Ctx;
use crate::secret::{ExposeSecret, Secret};

/// CQL search (v1; see the module documentation for why v1).
pub const SEARCH_PATH: &str = "rest/api/content/search";

/// One kind of bulk listing.
pub(super) struct Listing {
    /// Fixed label for logs and errors.
    pub endpoint: &'static str,
    /// What is listed, for reasons ("bodies", "comments", "attachments").
    pub what: &'static str,
    /// The CQL selecting what belongs to a set of page ids.
    pub cql: fn(&[String]) -> String,
    pub expand: &'static str,
    /// Results asked per request (Confluence may cap it lower).
    pub limit: usize,
    /// Each result is one member of the set (its id is the page id): a member already listed
    /// is not asked again when a set splits.
    pub one_per_member: bool,
}

/// What a listing gave.
#[derive(Debug, Default)]
pub(super) struct Listed {
    /// Every result once (by id), in arrival order.
    pub results: Vec<Value>,
    /// Members whose listing failed, with the reason.
    pub failed: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub(super) struct Results {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default, rename = "_links")]
    pub links: Links,
}

#[derive(Deserialize, Default)]
pub(super) struct Links {
    pub next: Option<String>,
}

/// GET and decode one Confluence answer.
pub(super) async fn get_json<T: DeserializeOwned + Send + 'static>(
    ctx: &Ctx<'_>,
    token: &Secret,
    endpoint: &'static str,
    url: Url,
    idempotency: Idempotency,
) -> Result<T, HttpError> {
    let req = ctx
        .http
        .request(Method::GET, url)
        .bearer_auth(token.expose_secret())
        .build()
        .map_err(|_| HttpError::Transport {
            endpoint,
            kind: TransportKind::Builder,
        })?;
    ctx.http
        .send(endpoint, ctx.cloud_id.as_str(), idempotency, req)
        .await?
        .json()
        .await
}

/// How a failed listing request is handled.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    /// 5xx or a timeout / broken answer: too heavy, or Confluence failing.
    Heavy,
    /// 403: the listing is refused.
    Refused(u16),
    /// 404 / 410 on a collection: the endpoint is gone.
    Removed(u16),
    /// Anything else (401, 429 beyond the wait, 400): the caller's business.
    Other,
}

fn classify(e: &HttpError) -> Failed {
    let broken = |k: &TransportKind| {
        matches!(
            k,
            TransportKind::Timeout | TransportKind::Broken | TransportKind::Body
        )
    };
    match e {
        HttpError::Status { status, .. } => match status.as_u16() {
            500..=599 => Failed::Heavy,
            403 => Failed::Refused(403),
            s @ (404 | 410) => Failed::Removed(s),
            _ => Failed::Other,
        },
        HttpError::Exhausted {
            last: Failure::Status(s),
            ..
        } if s.is_server_error() => Failed::Heavy,
        HttpError::Exhausted {
            last: Failure::Transport(k),
            ..
        }
        | HttpError::Transport { kind: k, .. }
            if broken(k) =>
        {
            Failed::Heavy
        }
        _ => Failed::Other,
    }
}

/// `url` with its `limit` parameter set to `limit`.
fn with_limit(url: &Url, limit: usize) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "limit")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("limit", &limit.to_string());
    out
}

fn first_url(ctx: &Ctx<'_>, listing: &Listing, set: &[String], limit: usize) -> Url {
    let mut url = ctx.urls.confluence(ctx.cloud_id, SEARCH_PATH);
    url.query_pairs_mut()
        .append_pair("cql", &(listing.cql)(set))
        .append_pair("expand", listing.expand)
        .append_pair("limit", &limit.to_string());
    url
}

/// Lists what belongs to `ids` as [`list`] does, in parts of at most `part` ids listed at
/// once: each part's pages of results follow one another (`_links.next`), the parts do not
/// wait for each other. Results come in the parts' order. As one listing, an error of any
/// part fails it (no part is refused in a way another could not be).
pub(super) async fn list_in_parts(
    ctx: &Ctx<'_>,
    token: &Secret,
    listing: &Listing,
    ids: &[String],
    part: usize,
) -> Result<Listed, ExportError> {
    let parts = ids
        .chunks(part.max(1))
        .map(|set| list(ctx, token, listing, set));
    let mut out = Listed::default();
    for listed in futures::future::try_join_all(parts).await? {
        out.results.extend(listed.results);
        out.failed.extend(listed.failed);
    }
    Ok(out)
}

/// Lists what belongs to `ids` (see the module documentation).
pub(super) async fn list(
    ctx: &Ctx<'_>,
    token: &Secret,
    listing: &Listing,
    ids: &[String],
) -> Result<Listed, ExportError> {
    let mut out = Listed::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut succeeded = false;
    let mut deferred: Vec<(String, HttpError)> = Vec::new();
    let mut sets: Vec<Vec<String>> = vec![ids.to_vec()];
    while let Some(mut set) = sets.pop() {
        if listing.one_per_member {
            set.retain(|id| !seen.contains(id));
        }
        if set.is_empty() {
            continue;
        }
        let mut limit = if listing.one_per_member {
            listing.limit.min(set.len())
        } else {
            listing.limit
        }
        .max(1);
        let mut url = first_url(ctx, listing, &set, limit);
        loop {
            // While the limit can still halve, a 5xx comes back at once instead of being retried.
            let idempotency = if limit > 1 {
                Idempotency::Once
            } else {
                Idempotency::Safe
            };
            let err =
                match get_json::<Results>(ctx, token, listing.endpoint, url.clone(), idempotency)
                    .await
                {
                    Ok(page) => {
                        succeeded = true;
                        for r in page.results {
                            if let Some(id) = r["id"].as_str()
                                && seen.insert(id.to_owned())
                            {
                                out.results.push(r);
                            }
                        }
                        match page.links.next {
                            Some(next) => {
                                url = with_limit(&ctx.urls.confluence(ctx.cloud_id, &next), limit);
                                continue;
                            }
                            None => break,
                        }
                    }
                    Err(e) => e,
                };
            match classify(&err) {
                Failed::Heavy if limit > 1 => {
                    limit /= 2;
                    url = with_limit(&url, limit);
                    tracing::info!(endpoint = listing.endpoint, limit, error = %err, "heavy listing; halving its limit");
                }
                Failed::Heavy if set.len() > 1 => {
                    let (a, b) = set.split_at(set.len() / 2);
                    sets.push(b.to_vec());
                    sets.push(a.to_vec());
                    break;
                }
                Failed::Heavy => {
                    deferred.push((set[0].clone(), err));
                    break;
                }
                Failed::Refused(status) => {
                    out.failed.extend(set.iter().map(|id| {
                        (
                            id.clone(),
                            format!(
                                "Confluence answered {status} when its {} were listed",
                                listing.what
                            ),
                        )
                    }));
                    break;
                }
                Failed::Removed(status) => {
                    return Err(ExportError::Terminal(format!(
                        "Confluence answered {status} for GET /wiki/{SEARCH_PATH} ({}): the endpoint appears to have been removed",
                        listing.endpoint
                    )));
                }
                Failed::Other => return Err(err.into()),
            }
        }
    }
    let mut deferred = deferred.into_iter();
    if !succeeded && let Some((_, e)) = deferred.next() {
        // Not one request of the listing went through: Confluence is failing, not one page.
        return Err(e.into());
    }
    out.failed.extend(deferred.map(|(id, e)| {
        (
            id,
            format!("its {} could not be fetched, even alone: {e}", listing.what),
        )
    }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;
    use crate::atlassian::http::ErrorBody;

    fn status(code: u16) -> HttpError {
        HttpError::Status {
            endpoint: "x",
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
            body: ErrorBody::default(),
            redirected: false,
        }
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify(&status(504)), Failed::Heavy);
        assert_eq!(classify(&status(500)), Failed::Heavy);
        assert_eq!(classify(&status(403)), Failed::Refused(403));
        assert_eq!(classify(&status(404)), Failed::Removed(404));
        assert_eq!(classify(&status(410)), Failed::Removed(410));
        assert_eq!(classify(&status(401)), Failed::Other);
        assert_eq!(classify(&status(400)), Failed::Other);
        let exhausted = |last| HttpError::Exhausted {
            endpoint: "x",
            attempts: 6,
            last,
            retry_after: None,
            throttle: None,
        };
        assert_eq!(
            classify(&exhausted(Failure::Status(StatusCode::GATEWAY_TIMEOUT))),
            Failed::Heavy
        );
        assert_eq!(
            classify(&exhausted(Failure::Status(StatusCode::TOO_MANY_REQUESTS))),
            Failed::Other,
            "a long Retry-After is the runner's to wait out"
        );
        assert_eq!(
            classify(&exhausted(Failure::Transport(TransportKind::Connect))),
            Failed::Other
        );
        assert_eq!(
            classify(&HttpError::Transport {
                endpoint: "x",
                kind: TransportKind::Timeout
            }),
            Failed::Heavy
        );
    }

    #[test]
    fn the_limit_is_replaced_and_the_cursor_kept() {
        let url = Url::parse("https://h/wiki/rest/api/content/search?next=true&cursor=abc&limit=50&cql=id+in+%281%29")
            .unwrap_or_else(|e| panic!("{e}"));
        let halved = with_limit(&url, 25);
        let pairs: Vec<(String, String)> = halved
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert!(pairs.contains(&("cursor".into(), "abc".into())));
        assert!(pairs.contains(&("cql".into(), "id in (1)".into())));
        assert_eq!(
            pairs
                .iter()
                .filter(|(k, _)| k == "limit")
                .collect::<Vec<_>>(),
            vec![&("limit".to_owned(), "25".to_owned())]
        );
    }
}
