//! Issue 14: the Jira export at realistic Atlassian latencies, one per endpoint (search 400 ms,
//! bulkfetch 1.5 s, comment pages 300 ms, attachment downloads 300 ms + 20 MiB/s), injected
//! with the fake's per-prefix latency and bandwidth rules (tests/src/fake/faults.rs:
//! `Fault::latency` rules add up, `Fault::bandwidth` paces the body, tests/src/fake/throttle.rs).
//! The row prints the wall time beside its own latency bound and the Atlassian requests per
//! exported issue.
//!
//! The bound is the largest of: the chain any client has (every search page back to back, then
//! the last page's bulk fetch, then one download), every request's injected latency spread
//! over the per-site limit (each holds one of the site's slots), and all the injected time
//! (latencies and every attachment's transfer) spread over the job's concurrency.

use serde_json::json;

use super::{Expected, JIRA, Run, TARGET_RATIO, TENANT, Workload, one_run};
use crate::helper::S3Server;
use crate::report::{Row, Verdict, median, num};
use crate::world::{Deployment, say};
use integration_tests::fake::{FakeAtlassian, Fault, Origin};

const MIB: f64 = 1024.0 * 1024.0;
const SEARCH_MS: u64 = 400;
const BULKFETCH_MS: u64 = 1500;
const COMMENTS_MS: u64 = 300;
const ATTACHMENT_MS: u64 = 300;
const ATTACHMENT_MIB_PER_SEC: f64 = 20.0;

/// The Jira REST paths the latencies apply to, under `/ex/jira/{cloudId}/rest/api/3/`.
fn api(cloud: &str, path: &str) -> String {
    format!("/ex/jira/{cloud}/rest/api/3/{path}")
}

/// The per-endpoint latencies. Rules match by path prefix and latencies add up, so comment
/// pages (`issue/{id}/comment`) get the 300 ms of `issue/`, and bulkfetch (`issue/bulkfetch`,
/// also under `issue/`) the remaining 1.2 s on top. Attachment downloads: 300 ms on the
/// product's endpoint (its 303), then the bytes from the media host at 20 MiB/s.
fn inject(fake: &FakeAtlassian, cloud: &str) {
    fake.clear_faults();
    fake.inject(Fault::latency(&api(cloud, "search/jql"), SEARCH_MS));
    fake.inject(Fault::latency(&api(cloud, "issue/"), COMMENTS_MS));
    fake.inject(Fault::latency(
        &api(cloud, "issue/bulkfetch"),
        BULKFETCH_MS - COMMENTS_MS,
    ));
    fake.inject(Fault::latency(
        &api(cloud, "attachment/content/"),
        ATTACHMENT_MS,
    ));
    fake.inject(Fault::bandwidth(
        "/file/",
        (ATTACHMENT_MIB_PER_SEC * MIB) as u64,
    ));
}

/// One run's Atlassian requests by endpoint.
#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    search: usize,
    bulkfetch: usize,
    comments: usize,
    attachments: usize,
    other_api: usize,
    media: usize,
}

impl Calls {
    fn of(fake: &FakeAtlassian, mark: usize, cloud: &str) -> Calls {
        let mut c = Calls::default();
        let (search, bulk, issue, attachment) = (
            api(cloud, "search/jql"),
            api(cloud, "issue/bulkfetch"),
            api(cloud, "issue/"),
            api(cloud, "attachment/content/"),
        );
        for r in fake.requests().into_iter().skip(mark) {
            if r.origin == Origin::Media {
                c.media += 1;
            } else if r.path.starts_with(&search) {
                c.search += 1;
            } else if r.path.starts_with(&bulk) {
                c.bulkfetch += 1;
            } else if r.path.starts_with(&issue) && r.path.ends_with("/comment") {
                c.comments += 1;
            } else if r.path.starts_with(&attachment) {
                c.attachments += 1;
            } else if r.path.starts_with("/ex/") {
                c.other_api += 1;
            }
        }
        c
    }

    fn atlassian(&self) -> usize {
        self.search
            + self.bulkfetch
            + self.comments
            + self.attachments
            + self.other_api
            + self.media
    }

    /// Seconds of the chain: search pages back to back, then the last page's bulk fetch, then
    /// one attachment's download.
    fn chain_secs(&self) -> f64 {
        (self.search as u64 * SEARCH_MS + BULKFETCH_MS + ATTACHMENT_MS) as f64 / 1000.0
    }

    /// Seconds of injected latency on the site's requests (each holds a site slot meanwhile).
    fn latency_secs(&self) -> f64 {
        let latency = self.search as u64 * SEARCH_MS
            + self.bulkfetch as u64 * BULKFETCH_MS
            + self.comments as u64 * COMMENTS_MS
            + self.attachments as u64 * ATTACHMENT_MS;
        latency as f64 / 1000.0
    }

    /// Every injected second: each request's latency and each attachment's transfer.
    fn injected_secs(&self, attachment_bytes: u64) -> f64 {
        self.latency_secs() + attachment_bytes as f64 / MIB / ATTACHMENT_MIB_PER_SEC
    }
}

/// The bound of one run: the chain; the site's latencies over its per-site limit; or all the
/// injected time over the job's concurrency (the larger of the per-site limit and the item
/// concurrency, so the bound stays a lower bound).
fn bound(calls: &Calls, run: &Run, attachment_bytes: u64) -> f64 {
    let items = run.result["item_concurrency"].as_f64().unwrap_or(1.0);
    let site = run.concurrency.max(1.0);
    calls
        .chain_secs()
        .max(calls.latency_secs() / site)
        .max(calls.injected_secs(attachment_bytes) / site.max(items))
}

/// Runs the Jira export `runs` times at realistic latencies; the `export.jira.realistic` row.
#[allow(clippy::too_many_arguments)]
pub(super) async fn bench(
    fake: &FakeAtlassian,
    dep: &Deployment,
    env: &[(String, String)],
    connection: &shared::ids::ConnectionId,
    cloud: &str,
    want: &Expected,
    runs: usize,
    s3: Option<&S3Server>,
) -> Row {
    let w: &Workload = &JIRA;
    inject(fake, cloud);
    let mut samples = Vec::new();
    let mut details = Vec::new();
    for run in 1..=runs {
        let id = format!("bench-export-jira-realistic-{run}");
        let mark = fake.requests().len();
        let r = one_run(w, fake, dep, env, connection, &id, s3, Default::default()).await;
        let calls = Calls::of(fake, mark, cloud);
        let b = bound(&calls, &r, want.attachment_bytes);
        let per_item = calls.atlassian() as f64 / r.items.max(1.0);
        say(format!(
            "export jira (realistic latencies) run {run}/{runs}: {} issues, {} attachments in {:.1} s (latency bound {:.1} s: chain {:.1} s, site latency {:.1} s over the site's slots, injected {:.1} s); {} Atlassian requests ({:.3} per issue: {calls:?})",
            r.items,
            r.attachments,
            r.secs,
            b,
            calls.chain_secs(),
            calls.latency_secs(),
            calls.injected_secs(want.attachment_bytes),
            calls.atlassian(),
            per_item,
        ));
        details.push(json!({
            "secs": r.secs,
            "items": r.items,
            "attachments": r.attachments,
            "latency_bound_secs": b,
            "chain_secs": calls.chain_secs(),
            "site_latency_secs": calls.latency_secs(),
            "injected_secs": calls.injected_secs(want.attachment_bytes),
            "requests_per_item": per_item,
            "requests": {
                "search": calls.search,
                "bulkfetch": calls.bulkfetch,
                "comments": calls.comments,
                "attachments": calls.attachments,
                "other_api": calls.other_api,
                "media": calls.media,
            },
        }));
        samples.push((r, b, per_item));
    }
    fake.clear_faults();
    let complete = samples.iter().all(|(r, _, _)| {
        r.items as usize == want.items && r.attachments as usize == want.attachments
    });
    let walls: Vec<f64> = samples.iter().map(|(r, _, _)| r.secs).collect();
    let wall = median(&walls);
    let bound_secs = median(&samples.iter().map(|(_, b, _)| *b).collect::<Vec<_>>());
    let per_item = median(&samples.iter().map(|(_, _, p)| *p).collect::<Vec<_>>());
    let ratio = median(
        &samples
            .iter()
            .map(|(r, b, _)| r.secs / b)
            .collect::<Vec<_>>(),
    );
    let fmt = |x: Option<f64>, d: usize| x.map_or("?".into(), |x| num(x, d));
    Row {
        id: "export.jira.realistic".into(),
        benchmark: format!(
            "Export jira at realistic latencies (search {SEARCH_MS} ms, bulkfetch {BULKFETCH_MS} ms, comments {COMMENTS_MS} ms, attachments {ATTACHMENT_MS} ms + {ATTACHMENT_MIB_PER_SEC} MiB/s; {} issues, {} attachments, {} MiB)",
            want.items,
            want.attachments,
            num(want.attachment_bytes as f64 / MIB, 1)
        ),
        value: wall,
        unit: "s".into(),
        samples: walls,
        figure: format!(
            "{} s wall; {} Atlassian requests per issue",
            fmt(wall, 1),
            fmt(per_item, 3)
        ),
        bound: format!(
            "latency bound {} s (max of the chain: search pages, the last bulk fetch, a download; the site's latencies / its per-site limit; all injected time / concurrency); wall / bound ≤ {TARGET_RATIO}",
            fmt(bound_secs, 1)
        ),
        verdict: match ratio {
            Some(x) if complete => Verdict::of(x <= TARGET_RATIO),
            _ => Verdict::Fail,
        },
        note: if complete {
            format!("wall / bound = {}", fmt(ratio, 2))
        } else {
            format!(
                "incomplete export (want {} issues, {} attachments)",
                want.items, want.attachments
            )
        },
        details: json!({ "tenant": TENANT, "runs": details }),
    }
}
