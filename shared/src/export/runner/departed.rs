//! Attachments that left their item (removed in Jira or Confluence, or renamed: the key holds
//! the file name): their objects under `attachments/{itemId}/` and their texts under
//! `documents/{itemId}/attachments/` are deleted when the item is written again.
//!
//! Stateless, so crash-safe and idempotent: what stays is derived from the item as fetched now
//! (keys are deterministic), and what goes is whatever else S3 lists under the item's two
//! prefixes. It runs after the item's attachments and documents are written and before its
//! JSON, which is the item's last write: a crash anywhere before the JSON is written makes the
//! re-run find the item changed and sweep again with the same result; once the JSON is
//! written, its content says the sweep for exactly this attachment list is done, so an
//! unchanged item (the common case of an incremental run) costs no listing, and neither does
//! an item never exported before (no JSON yet: a first full run pays nothing). The one gap
//! that leaves: a crash after some of a new item's attachments were written, then one of them
//! removed in Atlassian before the redo; its copy stays until the item changes again.

use super::*;

/// What stays of one item's attachments.
#[derive(Debug, Default)]
pub(super) struct Keep {
    /// The object key of every attachment the item lists now, copied or not this run (one
    /// Atlassian refused now keeps the copy it had: it was not removed from the item).
    pub(super) objects: BTreeSet<String>,
    /// The text keys still valid: those stored or found current this run, and those of
    /// attachments whose download was refused (not re-examined). `None`: leave texts alone
    /// (documents are off, or the item's attachments are not exported).
    pub(super) texts: Option<BTreeSet<String>>,
}

impl<P: Sources> Exporter<P> {
    /// Delete the item's attachment objects and texts that `keep` does not name. Returns how
    /// many were deleted.
    pub(super) async fn remove_departed(
        &self,
        layout: &Layout,
        item_id: &str,
        keep: &Keep,
    ) -> Result<u64, ExportError> {
        let mut gone: Vec<String> = self
            .blobs
            .list_keys(&layout.attachments_of(item_id))
            .await?
            .into_iter()
            .filter(|k| !keep.objects.contains(k))
            .collect();
        if let Some(texts) = &keep.texts {
            gone.extend(
                self.blobs
                    .list_keys(&layout.attachment_texts_of(item_id))
                    .await?
                    .into_iter()
                    .filter(|k| !texts.contains(k)),
            );
        }
        if gone.is_empty() {
            return Ok(0);
        }
        let deleted = self.blobs.delete_keys(&gone).await?;
        tracing::info!(
            deleted,
            "removed the copies of attachments that left their item"
        );
        Ok(deleted)
    }
}
