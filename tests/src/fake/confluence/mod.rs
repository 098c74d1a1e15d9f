//! The fake Confluence: seeded spaces, a nested page tree, blog posts, attachments and comments
//! of one site, the handle tests read them through (`FakeAtlassian::confluence`), and mutations.
//!
//! Forbidden pages still appear in CQL search results (the index is permissive; ASSUMPTION,
//! undocumented: it models restrictions changed after indexing), but direct reads answer as the
//! docs list for a user without permission: 404 from `GET api/v2/pages/{id}`, its attachment
//! lists (v1 and v2) and downloads, 403 from v1 `rest/api/content/{id}` (see `api`,
//! `readable_page`); a search that expands bodies leaves them out. Forbidden attachments answer
//! 404 on download.

mod api;
mod comments;
pub(crate) mod cql;
mod generate;
mod render;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;

use super::attachment::AttachmentInfo;
use super::error::FakeError;
use super::seed::SeedSpec;
use super::site::SiteContext;
use super::users::UserInfo;

pub(crate) use api::router;

/// Extra bytes in the storage body of a heavy page (`SeedSpec::confluence_heavy_every`); twice
/// as many in one heavy page in four, which then answers 504 even alone.
pub const HEAVY_BODY_BYTES: usize = 300 * 1024;
/// A CQL search whose expanded bodies add up to more than this answers 504: Cloud may time out
/// on heavy pages, and production clients halve `limit` and retry (Onyx `onyx_confluence.py`,
/// `_paginate_url`; see ../shared/ATLASSIAN.md). ASSUMPTION: the real threshold is not
/// documented; this one lets one heavy page through alone but not two together.
pub const HEAVY_RESPONSE_BYTES: usize = 512 * 1024;

/// Kinds of content CQL search returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    Page,
    BlogPost,
    Attachment,
    Comment,
}

impl ContentKind {
    /// The `type` string Confluence uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Page => "page",
            ContentKind::BlogPost => "blogpost",
            ContentKind::Attachment => "attachment",
            ContentKind::Comment => "comment",
        }
    }
}

/// A seeded space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceInfo {
    pub id: String,
    pub key: String,
    pub name: String,
}

/// A seeded page or blog post, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageInfo {
    pub id: String,
    pub kind: ContentKind,
    pub space_key: String,
    pub title: String,
    pub parent_id: Option<String>,
    /// Ancestor ids, root first (what `expand=ancestors` lists).
    pub ancestor_ids: Vec<String>,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    pub version: u32,
    pub attachment_ids: Vec<String>,
    /// Its comments (footer, inline and replies), in creation order.
    pub comment_ids: Vec<String>,
    pub forbidden: bool,
}

/// A seeded comment, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentInfo {
    pub id: String,
    /// The page or blog post it is on.
    pub page_id: String,
    /// The comment it replies to.
    pub parent_id: Option<String>,
    /// `footer` or `inline`.
    pub location: &'static str,
    /// The passage of the page body an inline comment (and its replies) annotates.
    pub annotated_text: Option<String>,
    pub author_account_id: String,
    /// The user its body mentions (`<ri:user ri:account-id=…>`).
    pub mentioned_account_id: String,
}

/// One CQL search hit (a page, blog post, attachment or comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentInfo {
    pub id: String,
    pub kind: ContentKind,
    pub title: String,
    pub space_key: String,
    pub last_modified: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
}

#[derive(Debug)]
pub(crate) struct Page {
    pub id: u64,
    pub space: usize,
    pub kind: ContentKind,
    pub title: String,
    pub parent: Option<usize>,
    pub position: usize,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    pub version: u32,
    pub creator: usize,
    pub modifier: usize,
    pub seed: u64,
    pub attachments: Vec<usize>,
    pub comments: Vec<usize>,
    /// How heavy its body is: 0 ordinary, 1 heavy, 2 too heavy to expand even alone (see
    /// `SeedSpec::confluence_heavy_every`).
    pub heavy: u8,
    pub forbidden: bool,
    pub deleted: bool,
}

#[derive(Debug)]
pub(crate) struct Attachment {
    pub id: u64,
    pub page: usize,
    pub title: String,
    pub size: u64,
    pub mime: &'static str,
    pub created: OffsetDateTime,
    pub author: usize,
    pub file_id: String,
    pub forbidden: bool,
}

impl Attachment {
    pub(crate) fn public_id(&self) -> String {
        format!("att{}", self.id)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ConfluenceState {
    pub spaces: Vec<Space>,
    pub pages: Vec<Page>,
    pub attachments: Vec<Attachment>,
    pub comments: Vec<comments::Comment>,
    pub by_id: HashMap<u64, usize>,
    pub next_page_id: u64,
    /// Kinds whose CQL listing answers this status instead (a test's fault).
    pub refused_listings: Vec<(ContentKind, u16)>,
}

impl ConfluenceState {
    /// A page or blog post that exists (not deleted), by id.
    pub(crate) fn find(&self, id: &str) -> Option<usize> {
        let idx = *self.by_id.get(&id.trim().parse::<u64>().ok()?)?;
        (!self.pages[idx].deleted).then_some(idx)
    }

    /// An attachment by `att…` id (or bare number) whose page exists.
    pub(crate) fn find_attachment(&self, id: &str) -> Option<usize> {
        let n: u64 = id.trim().trim_start_matches("att").parse().ok()?;
        let idx = self.attachments.iter().position(|a| a.id == n)?;
        (!self.pages[self.attachments[idx].page].deleted).then_some(idx)
    }

    /// Ancestor indices, root first.
    pub(crate) fn ancestors(&self, idx: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut at = self.pages[idx].parent;
        while let Some(p) = at {
            if chain.contains(&p) {
                break;
            }
            chain.push(p);
            at = self.pages[p].parent;
        }
        chain.reverse();
        chain
    }

    fn info(&self, idx: usize) -> PageInfo {
        let p = &self.pages[idx];
        PageInfo {
            id: p.id.to_string(),
            kind: p.kind,
            space_key: self.spaces[p.space].key.clone(),
            title: p.title.clone(),
            parent_id: p.parent.map(|q| self.pages[q].id.to_string()),
            ancestor_ids: self
                .ancestors(idx)
                .into_iter()
                .map(|a| self.pages[a].id.to_string())
                .collect(),
            created: p.created,
            last_modified: p.modified,
            version: p.version,
            attachment_ids: p
                .attachments
                .iter()
                .map(|a| self.attachments[*a].public_id())
                .collect(),
            comment_ids: p
                .comments
                .iter()
                .map(|c| self.comments[*c].id.to_string())
                .collect(),
            forbidden: p.forbidden,
        }
    }

    fn comment_info(&self, idx: usize, ctx: &SiteContext) -> CommentInfo {
        let c = &self.comments[idx];
        CommentInfo {
            id: c.id.to_string(),
            page_id: self.pages[c.page].id.to_string(),
            parent_id: c.parent.map(|p| self.comments[p].id.to_string()),
            location: if c.inline { "inline" } else { "footer" },
            annotated_text: c.marker.as_ref().map(|(_, text)| text.clone()),
            author_account_id: ctx.users.get(c.author).account_id.clone(),
            mentioned_account_id: ctx.users.get(c.mentioned).account_id.clone(),
        }
    }

    fn attachment_info(&self, idx: usize, ctx: &SiteContext) -> AttachmentInfo {
        let a = &self.attachments[idx];
        let page = &self.pages[a.page];
        AttachmentInfo {
            id: a.public_id(),
            filename: a.title.clone(),
            size: a.size,
            mime_type: a.mime.to_owned(),
            created: a.created,
            author_account_id: ctx.users.get(a.author).account_id.clone(),
            container: page.id.to_string(),
            forbidden: a.forbidden || page.forbidden,
        }
    }
}

/// Read access (and a few mutations) to one site's Confluence. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ConfluenceData {
    state: Arc<RwLock<ConfluenceState>>,
    ctx: Arc<SiteContext>,
}

impl ConfluenceData {
    pub(crate) fn generate(ctx: Arc<SiteContext>, spec: &SeedSpec, seed: u64) -> Self {
        let state = generate::generate(spec, seed, &ctx);
        Self {
            state: Arc::new(RwLock::new(state)),
            ctx,
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ConfluenceState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, ConfluenceState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn ctx(&self) -> &SiteContext {
        &self.ctx
    }

    pub fn cloud_id(&self) -> &str {
        &self.ctx.cloud_id
    }

    pub fn spaces(&self) -> Vec<SpaceInfo> {
        self.read()
            .spaces
            .iter()
            .map(|s| SpaceInfo {
                id: s.id.to_string(),
                key: s.key.clone(),
                name: s.name.clone(),
            })
            .collect()
    }

    /// Every page and blog post that exists, by id.
    pub fn pages(&self) -> Vec<PageInfo> {
        let state = self.read();
        let mut idx: Vec<usize> = (0..state.pages.len())
            .filter(|i| !state.pages[*i].deleted)
            .collect();
        idx.sort_by_key(|i| state.pages[*i].id);
        idx.into_iter().map(|i| state.info(i)).collect()
    }

    /// Pages and blog posts of one space, by id.
    pub fn pages_in_space(&self, space_key: &str) -> Vec<PageInfo> {
        self.pages()
            .into_iter()
            .filter(|p| p.space_key.eq_ignore_ascii_case(space_key))
            .collect()
    }

    pub fn page(&self, id: &str) -> Option<PageInfo> {
        let state = self.read();
        state.find(id).map(|i| state.info(i))
    }

    /// Who created a page: its `history.createdBy`, and the user its body's "Owner:" line
    /// mentions.
    pub fn creator(&self, page_id: &str) -> Option<UserInfo> {
        let state = self.read();
        state
            .find(page_id)
            .map(|i| self.ctx.users.get(state.pages[i].creator).clone())
    }

    /// What CQL search returns for `cql`, in order. `Err` carries the 400 message.
    pub fn search(&self, cql: &str) -> Result<Vec<ContentInfo>, String> {
        let state = self.read();
        let hits = cql::search(&state, cql, self.ctx.clock.now())?;
        Ok(hits
            .into_iter()
            .map(|item| cql::content_info(&state, item))
            .collect())
    }

    pub fn forbidden_page_ids(&self) -> Vec<String> {
        self.pages()
            .into_iter()
            .filter(|p| p.forbidden)
            .map(|p| p.id)
            .collect()
    }

    /// Attachments of every existing page.
    pub fn attachments(&self) -> Vec<AttachmentInfo> {
        let state = self.read();
        (0..state.attachments.len())
            .filter(|a| !state.pages[state.attachments[*a].page].deleted)
            .map(|a| state.attachment_info(a, &self.ctx))
            .collect()
    }

    pub fn attachment(&self, id: &str) -> Option<AttachmentInfo> {
        let state = self.read();
        state
            .find_attachment(id)
            .map(|a| state.attachment_info(a, &self.ctx))
    }

    /// Comments of every existing page and blog post.
    pub fn comments(&self) -> Vec<CommentInfo> {
        let state = self.read();
        (0..state.comments.len())
            .filter(|c| !state.pages[state.comments[*c].page].deleted)
            .map(|c| state.comment_info(c, &self.ctx))
            .collect()
    }

    /// From now on, a CQL search that finds content of `kind` answers `status` (e.g. 403 or 503
    /// for the comment listing); `None` lifts it.
    pub fn refuse_listing(&self, kind: ContentKind, status: Option<u16>) {
        let mut state = self.write();
        state.refused_listings.retain(|(k, _)| *k != kind);
        if let Some(status) = status {
            state.refused_listings.push((kind, status));
        }
    }

    /// A new version of the page, modified now by a seeded user.
    pub fn touch_page(&self, id: &str) -> Result<PageInfo, FakeError> {
        let now = self.ctx.clock.now();
        let users = self.ctx.users.len().max(1);
        let mut state = self.write();
        let idx = state
            .find(id)
            .ok_or_else(|| FakeError::NotFound(id.to_owned()))?;
        let page = &mut state.pages[idx];
        page.modified = now;
        page.version += 1;
        page.modifier = (page.modifier + 1) % users;
        Ok(state.info(idx))
    }

    /// Creates a page in `space_key` under `parent_id` (or at the space root), created now.
    pub fn create_page(
        &self,
        space_key: &str,
        parent_id: Option<&str>,
    ) -> Result<PageInfo, FakeError> {
        let now = self.ctx.clock.now();
        let mut state = self.write();
        let space = state
            .spaces
            .iter()
            .position(|s| s.key.eq_ignore_ascii_case(space_key))
            .ok_or_else(|| FakeError::NotFound(space_key.to_owned()))?;
        let parent = match parent_id {
            Some(p) => Some(
                state
                    .find(p)
                    .ok_or_else(|| FakeError::NotFound(p.to_owned()))?,
            ),
            None => None,
        };
        let id = state.next_page_id;
        state.next_page_id += 5;
        let idx = state.pages.len();
        state.pages.push(Page {
            id,
            space,
            kind: ContentKind::Page,
            title: format!("New page {id} ✨"),
            parent,
            position: idx,
            created: now,
            modified: now,
            version: 1,
            creator: 0,
            modifier: 0,
            seed: id,
            attachments: Vec::new(),
            comments: Vec::new(),
            heavy: 0,
            forbidden: false,
            deleted: false,
        });
        state.by_id.insert(id, idx);
        Ok(state.info(idx))
    }

    /// Deletes (trashes) a page: gone from search and reads (404).
    pub fn delete_page(&self, id: &str) -> Result<(), FakeError> {
        let mut state = self.write();
        let idx = state
            .find(id)
            .ok_or_else(|| FakeError::NotFound(id.to_owned()))?;
        state.pages[idx].deleted = true;
        Ok(())
    }
}
