//! Builds a site's Confluence from a `SeedSpec`: spaces, a page tree per space (each page's
//! parent is an older page, so the tree is several levels deep), blog posts and attachments.

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use super::{Attachment, ConfluenceState, ContentKind, Page, Space};
use crate::fake::jira::between;
use crate::fake::rng::SeedRng;
use crate::fake::seed::{self, SeedSpec};
use crate::fake::site::SiteContext;

/// Content is created over the three years before the fake's start.
const SPAN_DAYS: i64 = 1095;
/// A title with every character XML needs escaped.
const AWKWARD_TITLE: &str = "Q&A: <Release> \"Notes\" & 'more'";

pub(super) fn generate(spec: &SeedSpec, seed: u64, ctx: &SiteContext) -> ConfluenceState {
    let start = ctx.clock.start();
    let users = ctx.users.len().max(1);
    let mut state = ConfluenceState {
        next_page_id: 327_681,
        ..ConfluenceState::default()
    };

    for (s, (key, count)) in spec.confluence_spaces.iter().enumerate() {
        let key = key.to_ascii_uppercase();
        state.spaces.push(Space {
            id: 32_769 + s as u64 * 65_536,
            name: format!("{key} space — “Dokumentation”"),
            key,
        });
        let mut rng = SeedRng::derive(seed, "confluence-space", s as u64);
        let mut created: Vec<OffsetDateTime> = (0..*count)
            .map(|_| start - Duration::seconds(rng.range(3600, (SPAN_DAYS * 86_400) as u64) as i64))
            .collect();
        created.sort();
        let mut tree: Vec<usize> = Vec::new();
        let mut titles = HashSet::new();
        for (i, created) in created.into_iter().enumerate() {
            let g = state.pages.len();
            let page_seed = SeedRng::derive(seed, "confluence-page", g as u64).next_u64();
            let mut rng = SeedRng::new(page_seed);
            let kind = if i % 10 == 9 {
                ContentKind::BlogPost
            } else {
                ContentKind::Page
            };
            let parent = match kind {
                // A binary-ish tree: the k-th page hangs under page (k-1)/2, so depth grows as log2.
                ContentKind::Page if !tree.is_empty() => Some(tree[(tree.len() - 1) / 2]),
                _ => None,
            };
            let mut title = if i == 2 {
                AWKWARD_TITLE.to_owned()
            } else {
                format!("{} {}", seed::phrase(&mut rng), i + 1)
            };
            if !titles.insert(title.clone()) {
                title = format!("{title} ({})", g + 1);
            }
            let age = (start - created).whole_seconds().max(1) as f64;
            let modified = created + Duration::seconds((age * rng.unit().powi(3)) as i64);
            let creator = rng.index(users);
            let every = spec.forbidden_page_every;
            let id = state.next_page_id;
            state.next_page_id += 5;
            if kind == ContentKind::Page {
                tree.push(g);
            }
            state.pages.push(Page {
                id,
                space: s,
                kind,
                title,
                parent,
                position: i,
                created,
                modified,
                version: if modified > created {
                    1 + rng.range(1, 6) as u32
                } else {
                    1
                },
                creator,
                modifier: if rng.chance(0.6) {
                    creator
                } else {
                    rng.index(users)
                },
                seed: page_seed,
                attachments: Vec::new(),
                comments: Vec::new(),
                heavy: heaviness(kind, g, spec.confluence_heavy_every),
                forbidden: every > 0 && g % every == every - 1 && parent.is_some(),
                deleted: false,
            });
        }
    }

    attach(&mut state, spec, seed, users);
    super::comments::generate(&mut state, spec.confluence_comment_every, seed, users);
    state.by_id = state
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    state
}

/// 1 for every `every`-th page, 2 (too heavy even alone) for every fourth of those.
fn heaviness(kind: ContentKind, g: usize, every: usize) -> u8 {
    if kind != ContentKind::Page || every == 0 || g % every != every - 1 {
        0
    } else if (g / every) % 4 == 3 {
        2
    } else {
        1
    }
}

fn attach(state: &mut ConfluenceState, spec: &SeedSpec, seed: u64, users: usize) {
    let candidates: Vec<usize> = (0..state.pages.len())
        .filter(|i| state.pages[*i].kind == ContentKind::Page && !state.pages[*i].forbidden)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let mut rng = SeedRng::derive(seed, "confluence-attachments", 0);
    let hostile: HashSet<&str> = seed::HOSTILE_FILENAMES.iter().copied().collect();
    let named = hostile.len() + 1;
    // Three to a page, on pages at least seven apart and spread over every space's pages; the
    // hostile names come first, so they land in the first space.
    let stride = (3 * candidates.len() / spec.confluence_attachments.max(1)).max(7);
    let mut add =
        |state: &mut ConfluenceState, title: String, size: u64, forbidden: bool, slot: usize| {
            let page = candidates[slot % candidates.len()];
            let (created, modified) = (state.pages[page].created, state.pages[page].modified);
            let idx = state.attachments.len();
            let file_id = rng.uuid();
            state.attachments.push(Attachment {
                id: 3_000_001 + idx as u64,
                page,
                mime: seed::mime_for(&title),
                title,
                size,
                created: between(&mut rng, created, modified),
                author: rng.index(users),
                file_id,
                forbidden,
            });
            state.pages[page].attachments.push(idx);
        };
    for j in 0..spec.confluence_attachments {
        let size = seed::ordinary_attachment_size(
            &mut SeedRng::derive(seed, "confluence-attachment-size", j as u64),
            j,
        );
        let every = spec.forbidden_attachment_every;
        let forbidden = every > 0 && j >= named && (j - named).is_multiple_of(every);
        add(
            state,
            seed::attachment_filename(j, false),
            size,
            forbidden,
            (j / 3) * stride + 1,
        );
    }
    for (k, size) in spec.confluence_large_attachments.iter().enumerate() {
        let name = crate::fake::jira::large_name(*size).replacen(
            "large-",
            &format!("large-{}-", k + 1),
            1,
        );
        add(state, name, *size, false, k * 11 + 4);
    }
    if spec.crafted_attachments {
        for (k, c) in crate::fake::crafted::Crafted::ALL.into_iter().enumerate() {
            let size = c.bytes().len() as u64;
            add(state, c.filename().to_owned(), size, false, k * 7 + 2);
        }
    }
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
    fn small_seed_nests_pages_several_levels_deep() {
        let state = generate(&SeedSpec::small(), 3, &ctx());
        assert_eq!(state.pages.len(), 50);
        let depth = (0..state.pages.len())
            .map(|i| state.ancestors(i).len())
            .max()
            .unwrap_or(0);
        assert!(depth >= 3, "depth {depth}");
        assert!(state.pages.iter().any(|p| p.kind == ContentKind::BlogPost));
        assert!(state.pages.iter().any(|p| p.forbidden));
        assert!(state.attachments.iter().any(|a| a.forbidden));
        assert_eq!(state.attachments.len(), 20);
        for p in &state.pages {
            let mut names = HashSet::new();
            for a in &p.attachments {
                assert!(
                    names.insert(state.attachments[*a].title.clone()),
                    "duplicate title on a page"
                );
            }
        }
    }

    #[test]
    fn large_seed_has_1200_pages_and_150_attachments() {
        let state = generate(&SeedSpec::large(), 3, &ctx());
        assert_eq!(state.pages.len(), 1200);
        assert_eq!(state.attachments.len(), 150);
        assert!(
            state
                .attachments
                .iter()
                .any(|a| a.size == 200 * 1024 * 1024)
        );
    }

    #[test]
    fn large_seed_puts_hostile_names_and_large_files_in_the_first_space_and_spreads_the_rest() {
        let state = generate(&SeedSpec::large(), 3, &ctx());
        let space_of = |a: &Attachment| state.pages[a.page].space;
        let hostile: HashSet<&str> = seed::HOSTILE_FILENAMES.iter().copied().collect();
        for a in &state.attachments {
            if hostile.contains(a.title.as_str()) || a.size >= 20 * 1024 * 1024 {
                assert_eq!(space_of(a), 0, "{:?} is not in the first space", a.title);
            }
        }
        let outside = state.attachments.iter().filter(|a| space_of(a) != 0);
        assert!(
            outside.count() > 50,
            "the other spaces hold attachments too"
        );
    }
}
