//! Builds a site's Jira from a `SeedSpec`: compact records only; JSON bodies, ADF and changelog
//! entries are rendered on request from each record's seed.

use std::collections::{HashMap, HashSet};

use time::{Duration, OffsetDateTime};

use super::{Attachment, Comment, Issue, JiraState, Project};
use crate::fake::rng::SeedRng;
use crate::fake::seed::{self, SeedSpec};
use crate::fake::site::SiteContext;

const LABELS: &[&str] = &[
    "backend",
    "frontend",
    "customer",
    "urgent",
    "tech-debt",
    "ux",
    "sécurité",
];
/// Issues are created over the two years before the fake's start.
const SPAN_DAYS: i64 = 730;

pub(super) fn generate(spec: &SeedSpec, seed: u64, ctx: &SiteContext) -> JiraState {
    let start = ctx.clock.start();
    let users = ctx.users.len().max(1);
    let mut state = JiraState {
        seed,
        next_comment_id: 10_000,
        ..JiraState::default()
    };

    // Projects and issues, keys numbered in creation order within each project.
    for (p, (key, count)) in spec.jira_projects.iter().enumerate() {
        let mut rng = SeedRng::derive(seed, "jira-project", p as u64);
        let key = key.to_ascii_uppercase();
        let mut created: Vec<OffsetDateTime> = (0..*count)
            .map(|_| {
                let secs = rng.range(3600, (SPAN_DAYS * 86_400) as u64);
                start - Duration::seconds(secs as i64)
                    + Duration::milliseconds(rng.below(1000) as i64)
            })
            .collect();
        created.sort();
        for (n, created) in created.into_iter().enumerate() {
            let g = state.issues.len();
            let issue_seed = SeedRng::derive(seed, "jira-issue", g as u64).next_u64();
            let mut rng = SeedRng::new(issue_seed);
            let age = (start - created).whole_seconds().max(1) as f64;
            let updated = created + Duration::seconds((age * rng.unit().powi(3)) as i64);
            let reporter = rng.index(users);
            state.issues.push(Issue {
                id: 0,
                project: p,
                number: n as u32 + 1,
                summary: seed::phrase(&mut rng),
                created,
                updated,
                reporter,
                creator: if rng.chance(0.9) {
                    reporter
                } else {
                    rng.index(users)
                },
                assignee: rng.chance(0.8).then(|| rng.index(users)),
                picker: rng.chance(0.5).then(|| rng.index(users)),
                status: rng.index(3),
                issuetype: rng.index(3),
                priority: rng.index(5),
                labels: (0..rng.below(3)).map(|_| *rng.pick(LABELS)).collect(),
                seed: issue_seed,
                comments: Vec::new(),
                changelog: rng.below(7) as usize,
                attachments: Vec::new(),
                forbidden: spec.forbidden_issue_every > 0
                    && g % spec.forbidden_issue_every == spec.forbidden_issue_every - 1,
                flaky: false,
                deleted: false,
            });
        }
        state.projects.push(Project {
            id: 10_000 + p as u64,
            name: format!("{} {}", project_name(&key), "Project"),
            key,
            next_number: *count as u32 + 1,
        });
    }

    // Ids follow creation order across projects, as Jira's do.
    let mut by_created: Vec<usize> = (0..state.issues.len()).collect();
    by_created.sort_by_key(|i| (state.issues[*i].created, *i));
    for (rank, i) in by_created.into_iter().enumerate() {
        state.issues[i].id = 10_001 + rank as u64;
    }
    state.next_issue_id = 10_001 + state.issues.len() as u64;

    let total = state.issues.len();
    // Comment-heavy issues (more than the 20 comments search returns) spread over the set.
    let heavy: HashSet<usize> = if spec.jira_comment_heavy_issues == 0 || total == 0 {
        HashSet::new()
    } else {
        let stride = (total / spec.jira_comment_heavy_issues).max(1);
        (0..spec.jira_comment_heavy_issues)
            .map(|k| (1 + k * stride) % total)
            .collect()
    };
    let flaky: HashSet<usize> = (0..total)
        .filter(|g| g % 7 == 3 && !state.issues[*g].forbidden)
        .take(spec.flaky_bulkfetch_issues)
        .collect();
    for g in 0..total {
        let mut rng = SeedRng::derive(state.issues[g].seed, "comments", 0);
        let count = if heavy.contains(&g) {
            rng.range(21, 45) as usize
        } else {
            rng.below(5) as usize
        };
        if heavy.contains(&g) {
            state.issues[g].changelog = 25;
        }
        state.issues[g].flaky = flaky.contains(&g);
        let (created, updated) = (state.issues[g].created, state.issues[g].updated);
        let mut times: Vec<OffsetDateTime> = (0..count)
            .map(|_| between(&mut rng, created, updated))
            .collect();
        times.sort();
        for t in times {
            let id = state.next_comment_id;
            state.next_comment_id += 1;
            let author = rng.index(users);
            let edited = rng.chance(0.2);
            state.issues[g].comments.push(Comment {
                id,
                author,
                update_author: if edited { rng.index(users) } else { author },
                created: t,
                updated: if edited {
                    between(&mut rng, t, updated)
                } else {
                    t
                },
                seed: rng.next_u64(),
            });
        }
    }

    attach(&mut state, spec, seed, users);

    for (i, issue) in state.issues.iter().enumerate() {
        state.by_id.insert(issue.id, i);
    }
    let keys: Vec<(String, usize)> = (0..total)
        .map(|i| (state.key(&state.issues[i]), i))
        .collect();
    state.by_key = keys.into_iter().collect::<HashMap<_, _>>();
    state
}

/// Spreads attachments over issues the user may see; the two `report.pdf` land on one issue.
fn attach(state: &mut JiraState, spec: &SeedSpec, seed: u64, users: usize) {
    let candidates: Vec<usize> = (0..state.issues.len())
        .filter(|i| !state.issues[*i].forbidden)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let mut rng = SeedRng::derive(seed, "jira-attachments", 0);
    let hostile = seed::HOSTILE_FILENAMES.len() + 1;
    let mut previous_issue = candidates[0];
    let mut add = |state: &mut JiraState,
                   j: usize,
                   filename: String,
                   size: u64,
                   forbidden: bool,
                   slot: usize| {
        let issue = if j > 0
            && filename == "report.pdf"
            && seed::attachment_filename(j - 1, true) == "report.pdf"
        {
            previous_issue
        } else {
            candidates[slot % candidates.len()]
        };
        previous_issue = issue;
        let (created, updated) = (state.issues[issue].created, state.issues[issue].updated);
        let id = 10_001 + state.attachments.len() as u64;
        let idx = state.attachments.len();
        state.attachments.push(Attachment {
            id,
            issue,
            mime: seed::mime_for(&filename),
            filename,
            size,
            created: between(&mut rng, created, updated),
            author: rng.index(users),
            forbidden,
            deleted: false,
        });
        state.issues[issue].attachments.push(idx);
    };
    for j in 0..spec.jira_attachments {
        let filename = seed::attachment_filename(j, true);
        let size = seed::ordinary_attachment_size(
            &mut SeedRng::derive(seed, "jira-attachment-size", j as u64),
            j,
        );
        let forbidden = spec.forbidden_attachment_every > 0
            && j >= hostile
            && (j - hostile).is_multiple_of(spec.forbidden_attachment_every);
        add(state, j, filename, size, forbidden, (j / 2) * 7 + 3);
    }
    for (k, size) in spec.jira_large_attachments.iter().enumerate() {
        add(
            state,
            usize::MAX,
            large_name(*size),
            *size,
            false,
            k * 13 + 5,
        );
    }
    if spec.crafted_attachments {
        for (k, c) in crate::fake::crafted::Crafted::ALL.into_iter().enumerate() {
            let size = c.bytes().len() as u64;
            add(
                state,
                usize::MAX,
                c.filename().to_owned(),
                size,
                false,
                k * 5 + 2,
            );
        }
    }
}

pub(crate) fn large_name(size: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if size.is_multiple_of(MIB) {
        format!("large-{}MiB.bin", size / MIB)
    } else {
        format!("large-{size}B.bin")
    }
}

fn project_name(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// A time uniformly between `a` and `b` (or `a` when `b <= a`).
pub(crate) fn between(rng: &mut SeedRng, a: OffsetDateTime, b: OffsetDateTime) -> OffsetDateTime {
    let span = (b - a).whole_milliseconds();
    if span <= 0 {
        return a;
    }
    a + Duration::milliseconds(rng.below(span as u64) as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fake::clock::FakeClock;
    use crate::fake::users::Users;

    fn ctx() -> SiteContext {
        SiteContext {
            cloud_id: "c".into(),
            name: "n".into(),
            url: "https://x.atlassian.net".into(),
            gateway: "http://127.0.0.1:1".into(),
            users: Arc::new(Users::generate(1)),
            clock: FakeClock::new(OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)),
        }
    }

    #[test]
    fn small_seed_has_the_promised_shape() {
        let state = generate(&SeedSpec::small(), 42, &ctx());
        assert_eq!(state.issues.len(), 55);
        assert!(
            state
                .issues
                .iter()
                .filter(|i| i.comments.len() > 20)
                .count()
                >= 3
        );
        assert!(state.issues.iter().any(|i| i.forbidden));
        assert!(state.attachments.iter().any(|a| a.size == 0));
        assert!(state.attachments.iter().any(|a| a.size == 3 * 1024 * 1024));
        assert!(state.attachments.iter().any(|a| a.forbidden));
        let reports: Vec<&Attachment> = state
            .attachments
            .iter()
            .filter(|a| a.filename == "report.pdf")
            .collect();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].issue, reports[1].issue);
        for issue in &state.issues {
            assert!(issue.created <= issue.updated);
            assert!(issue.updated <= ctx().clock.start());
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let a = generate(&SeedSpec::small(), 7, &ctx());
        let b = generate(&SeedSpec::small(), 7, &ctx());
        let summary = |s: &JiraState| {
            s.issues
                .iter()
                .map(|i| (i.id, i.summary.clone(), i.updated))
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&a), summary(&b));
    }

    #[test]
    fn large_seed_generates_quickly() {
        let t = std::time::Instant::now();
        let state = generate(&SeedSpec::large(), 1, &ctx());
        assert_eq!(state.issues.len(), 2000);
        assert_eq!(state.attachments.len(), 300);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
