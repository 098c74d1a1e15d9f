//! The fake Jira: seeded projects, issues, comments, changelogs and attachments of one site, the
//! handle tests read them through (`FakeAtlassian::jira`), and the mutations incremental tests use.
//!
//! Forbidden issues model a permission that changed after the search index was built: they still
//! appear in JQL search results (ids and fields alike), `POST issue/bulkfetch` leaves them out
//! silently (Jira documents that issues the user may not see are neither returned nor listed in
//! `issueErrors`), and `GET issue/{id}` and its comments and changelog answer 404, as Jira does
//! for issues the user may not browse. Their attachments answer 403.

mod api;
mod expand;
mod generate;
pub(crate) mod jql;
mod render;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;

use super::attachment::AttachmentInfo;
use super::error::FakeError;
use super::seed::SeedSpec;
use super::site::SiteContext;

pub(crate) use api::router;
pub(crate) use generate::{between, large_name};

/// A seeded Jira project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectInfo {
    pub id: String,
    pub key: String,
    pub name: String,
}

/// A seeded issue, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueInfo {
    /// Numeric string, e.g. `"10042"`.
    pub id: String,
    pub key: String,
    pub project_key: String,
    pub summary: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub comment_count: usize,
    pub changelog_count: usize,
    pub attachment_ids: Vec<String>,
    /// Hidden from bulk fetch and single reads (see the module docs).
    pub forbidden: bool,
    /// Answers with an `issueErrors` entry the first time a bulk fetch asks for it.
    pub flaky: bool,
}

#[derive(Debug)]
pub(crate) struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub next_number: u32,
}

#[derive(Debug)]
pub(crate) struct Issue {
    pub id: u64,
    pub project: usize,
    pub number: u32,
    pub summary: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub reporter: usize,
    pub creator: usize,
    pub assignee: Option<usize>,
    pub picker: Option<usize>,
    pub status: usize,
    pub issuetype: usize,
    pub priority: usize,
    pub labels: Vec<&'static str>,
    pub seed: u64,
    pub comments: Vec<Comment>,
    pub changelog: usize,
    pub attachments: Vec<usize>,
    pub forbidden: bool,
    pub flaky: bool,
    pub deleted: bool,
}

#[derive(Debug)]
pub(crate) struct Comment {
    pub id: u64,
    pub author: usize,
    pub update_author: usize,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub seed: u64,
}

#[derive(Debug)]
pub(crate) struct Attachment {
    pub id: u64,
    pub issue: usize,
    pub filename: String,
    pub size: u64,
    pub mime: &'static str,
    pub created: OffsetDateTime,
    pub author: usize,
    pub forbidden: bool,
    /// Deleted from its issue ([`JiraData::delete_attachment`]).
    pub deleted: bool,
}

#[derive(Debug, Default)]
pub(crate) struct JiraState {
    pub projects: Vec<Project>,
    pub issues: Vec<Issue>,
    pub attachments: Vec<Attachment>,
    pub by_id: HashMap<u64, usize>,
    pub by_key: HashMap<String, usize>,
    pub next_issue_id: u64,
    pub next_comment_id: u64,
    /// Flaky issues that already answered their one `issueErrors` entry.
    pub flaky_served: HashSet<usize>,
    pub seed: u64,
}

impl JiraState {
    pub(crate) fn key(&self, issue: &Issue) -> String {
        let project = self
            .projects
            .get(issue.project)
            .map(|p| p.key.as_str())
            .unwrap_or("?");
        format!("{project}-{}", issue.number)
    }

    /// A visible (not deleted) issue by id or key.
    pub(crate) fn find(&self, id_or_key: &str) -> Option<usize> {
        let idx = match id_or_key.parse::<u64>() {
            Ok(id) => self.by_id.get(&id).copied(),
            Err(_) => self.by_key.get(&id_or_key.to_ascii_uppercase()).copied(),
        }?;
        (!self.issues[idx].deleted).then_some(idx)
    }

    pub(crate) fn project_by_key(&self, key: &str) -> Option<usize> {
        self.projects
            .iter()
            .position(|p| p.key.eq_ignore_ascii_case(key))
    }

    fn info(&self, idx: usize) -> IssueInfo {
        let issue = &self.issues[idx];
        IssueInfo {
            id: issue.id.to_string(),
            key: self.key(issue),
            project_key: self
                .projects
                .get(issue.project)
                .map(|p| p.key.clone())
                .unwrap_or_default(),
            summary: issue.summary.clone(),
            created: issue.created,
            updated: issue.updated,
            comment_count: issue.comments.len(),
            changelog_count: issue.changelog,
            attachment_ids: issue
                .attachments
                .iter()
                .map(|a| self.attachments[*a].id.to_string())
                .collect(),
            forbidden: issue.forbidden,
            flaky: issue.flaky,
        }
    }

    fn attachment_info(&self, idx: usize, ctx: &SiteContext) -> AttachmentInfo {
        let a = &self.attachments[idx];
        let issue = &self.issues[a.issue];
        AttachmentInfo {
            id: a.id.to_string(),
            filename: a.filename.clone(),
            size: a.size,
            mime_type: a.mime.to_owned(),
            created: a.created,
            author_account_id: ctx.users.get(a.author).account_id.clone(),
            container: self.key(issue),
            forbidden: a.forbidden || issue.forbidden,
        }
    }
}

/// Read access (and a few mutations) to one site's Jira. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JiraData {
    state: Arc<RwLock<JiraState>>,
    ctx: Arc<SiteContext>,
}

impl JiraData {
    pub(crate) fn generate(ctx: Arc<SiteContext>, spec: &SeedSpec, seed: u64) -> Self {
        let state = generate::generate(spec, seed, &ctx);
        Self {
            state: Arc::new(RwLock::new(state)),
            ctx,
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, JiraState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, JiraState> {
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

    pub fn projects(&self) -> Vec<ProjectInfo> {
        self.read()
            .projects
            .iter()
            .map(|p| ProjectInfo {
                id: p.id.to_string(),
                key: p.key.clone(),
                name: p.name.clone(),
            })
            .collect()
    }

    /// Every issue that exists (not deleted), in key order.
    pub fn issues(&self) -> Vec<IssueInfo> {
        let state = self.read();
        let mut idx: Vec<usize> = (0..state.issues.len())
            .filter(|i| !state.issues[*i].deleted)
            .collect();
        idx.sort_by_key(|i| (state.issues[*i].project, state.issues[*i].number));
        idx.into_iter().map(|i| state.info(i)).collect()
    }

    /// One issue by id or key.
    pub fn issue(&self, id_or_key: &str) -> Option<IssueInfo> {
        let state = self.read();
        state.find(id_or_key).map(|i| state.info(i))
    }

    /// The issues JQL search returns for `jql`, in the order it returns them (forbidden ones
    /// included, as the search does). `Err` carries the 400 message the API would give.
    pub fn search(&self, jql: &str) -> Result<Vec<IssueInfo>, String> {
        let state = self.read();
        let hits = jql::search(&state, jql, self.ctx.clock.now()).map_err(|e| e.message())?;
        Ok(hits.into_iter().map(|i| state.info(i)).collect())
    }

    /// Keys of the issues bulk fetch and single reads refuse.
    pub fn forbidden_issue_keys(&self) -> Vec<String> {
        self.issues()
            .into_iter()
            .filter(|i| i.forbidden)
            .map(|i| i.key)
            .collect()
    }

    /// Attachments of every existing issue.
    pub fn attachments(&self) -> Vec<AttachmentInfo> {
        let state = self.read();
        (0..state.attachments.len())
            .filter(|a| {
                !state.attachments[*a].deleted && !state.issues[state.attachments[*a].issue].deleted
            })
            .map(|a| state.attachment_info(a, &self.ctx))
            .collect()
    }

    pub fn attachment(&self, id: &str) -> Option<AttachmentInfo> {
        self.attachments().into_iter().find(|a| a.id == id)
    }

    /// Test setup: give attachment `id` another file name. Jira keeps whatever name the file
    /// was uploaded with (`POST /rest/api/3/issue/{key}/attachments`, multipart `file`;
    /// developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-attachments), so
    /// any name a user picks (`avatar-<accountId>.png`) can reach the export.
    pub fn rename_attachment(&self, id: &str, filename: &str) -> Result<(), FakeError> {
        let mut state = self.write();
        let attachment = state
            .attachments
            .iter_mut()
            .find(|a| a.id.to_string() == id)
            .ok_or_else(|| FakeError::NotFound(id.to_owned()))?;
        attachment.filename = filename.to_owned();
        Ok(())
    }

    /// Test setup: delete attachment `id`, as `DELETE /rest/api/3/attachment/{id}` does ("Deletes
    /// an attachment from an issue";
    /// developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-attachments/#api-rest-api-3-attachment-id-delete):
    /// it leaves the issue's `fields.attachment`, and its metadata and content then answer 404
    /// ("Returned if the attachment is not found"). The issue's `updated` is left as it is (a
    /// test that needs an incremental run to see the issue also calls
    /// [`JiraData::touch_issue`]).
    pub fn delete_attachment(&self, id: &str) -> Result<(), FakeError> {
        let mut state = self.write();
        let idx = state
            .attachments
            .iter()
            .position(|a| a.id.to_string() == id && !a.deleted)
            .ok_or_else(|| FakeError::NotFound(id.to_owned()))?;
        state.attachments[idx].deleted = true;
        let issue = state.attachments[idx].issue;
        state.issues[issue].attachments.retain(|a| *a != idx);
        Ok(())
    }

    /// Bumps `updated` to the fake clock's now and adds a comment (by a seeded user, mentioning
    /// another), as an edit in Jira would.
    pub fn touch_issue(&self, id_or_key: &str) -> Result<IssueInfo, FakeError> {
        let now = self.ctx.clock.now();
        let mut state = self.write();
        let idx = state
            .find(id_or_key)
            .ok_or_else(|| FakeError::NotFound(id_or_key.to_owned()))?;
        let id = state.next_comment_id;
        state.next_comment_id += 1;
        let users = self.ctx.users.len().max(1);
        let issue = &mut state.issues[idx];
        issue.updated = now;
        let author = usize::try_from(id).unwrap_or(0) % users;
        issue.comments.push(Comment {
            id,
            author,
            update_author: author,
            created: now,
            updated: now,
            seed: id,
        });
        Ok(state.info(idx))
    }

    /// Creates a new issue in `project_key`, created and updated now.
    pub fn create_issue(&self, project_key: &str) -> Result<IssueInfo, FakeError> {
        let now = self.ctx.clock.now();
        let mut state = self.write();
        let project = state
            .project_by_key(project_key)
            .ok_or_else(|| FakeError::NotFound(project_key.to_owned()))?;
        let number = state.projects[project].next_number;
        state.projects[project].next_number += 1;
        let id = state.next_issue_id;
        state.next_issue_id += 1;
        let seed = state.seed ^ id;
        let idx = state.issues.len();
        state.issues.push(Issue {
            id,
            project,
            number,
            summary: format!("New issue {number} ✨"),
            created: now,
            updated: now,
            reporter: 0,
            creator: 0,
            assignee: Some(1),
            picker: None,
            status: 0,
            issuetype: 0,
            priority: 2,
            labels: Vec::new(),
            seed,
            comments: Vec::new(),
            changelog: 0,
            attachments: Vec::new(),
            forbidden: false,
            flaky: false,
            deleted: false,
        });
        let key = state.key(&state.issues[idx]);
        state.by_id.insert(id, idx);
        state.by_key.insert(key, idx);
        Ok(state.info(idx))
    }

    /// Deletes an issue: it disappears from search, bulk fetch and reads (404).
    pub fn delete_issue(&self, id_or_key: &str) -> Result<(), FakeError> {
        let mut state = self.write();
        let idx = state
            .find(id_or_key)
            .ok_or_else(|| FakeError::NotFound(id_or_key.to_owned()))?;
        state.issues[idx].deleted = true;
        Ok(())
    }
}
