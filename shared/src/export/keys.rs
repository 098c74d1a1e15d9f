//! The S3 layout (ARCHITECTURE.md): everything starts with the tenant, so erase and IAM
//! scoping work by prefix.
//!
//! ```text
//! {tenant}/{product}/{cloudId}/{connector}/items/{itemId}.json
//! {tenant}/{product}/{cloudId}/{connector}/attachments/{itemId}/{attachmentId}-{safe name}
//! {tenant}/{product}/{cloudId}/{connector}/documents/{itemId}.md
//! {tenant}/{product}/{cloudId}/{connector}/documents/{itemId}.json   (metadata, one schema)
//! {tenant}/{product}/{cloudId}/{connector}/documents/{itemId}/attachments/{attachmentId}.txt
//! {tenant}/{product}/{cloudId}/{connector}/manifests/{job}.json
//! {tenant}/{product}/{cloudId}/{connector}/state/{job}/page-{n}.json   (removed when the job ends)
//! ```

use crate::blob::safe_key_segment;
use crate::ids::{CloudId, ConnectorId, JobId, Product, TenantId};

/// Longest file-name part of an attachment key (S3 keys may be 1,024 bytes).
const MAX_NAME_BYTES: usize = 180;

/// Everything of a tenant (erase).
pub fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{tenant}/")
}

/// Everything exported through one connection (erase): its connectors' layouts are under it.
pub fn connection_prefix(tenant: &TenantId, product: Product, cloud: &CloudId) -> String {
    format!("{}{product}/{cloud}/", tenant_prefix(tenant))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(
        tenant: &TenantId,
        product: Product,
        cloud: &CloudId,
        connector: &ConnectorId,
    ) -> Layout {
        Layout {
            root: format!("{}{connector}/", connection_prefix(tenant, product, cloud)),
        }
    }

    /// The connector's whole prefix.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn item(&self, item_id: &str) -> String {
        format!("{}items/{}.json", self.root, safe_key_segment(item_id, 128))
    }

    pub fn attachments_of(&self, item_id: &str) -> String {
        format!(
            "{}attachments/{}/",
            self.root,
            safe_key_segment(item_id, 128)
        )
    }

    pub fn attachment(&self, item_id: &str, attachment_id: &str, filename: &str) -> String {
        format!(
            "{}{}-{}",
            self.attachments_of(item_id),
            safe_key_segment(attachment_id, 64),
            // A file named after an account id must not carry it into the key (PRIVACY.md P5).
            safe_key_segment(
                &crate::export::redact::safe_key_component(filename),
                MAX_NAME_BYTES
            )
        )
    }

    pub fn attachments_root(&self) -> String {
        format!("{}attachments/", self.root)
    }

    pub fn documents_root(&self) -> String {
        format!("{}documents/", self.root)
    }

    /// The Markdown document of an item (issue 18).
    pub fn document_markdown(&self, item_id: &str) -> String {
        format!(
            "{}{}.md",
            self.documents_root(),
            safe_key_segment(item_id, 128)
        )
    }

    /// The metadata record beside [`Layout::document_markdown`].
    pub fn document_metadata(&self, item_id: &str) -> String {
        format!(
            "{}{}.json",
            self.documents_root(),
            safe_key_segment(item_id, 128)
        )
    }

    /// Every attachment text of an item (the prefix of [`Layout::attachment_text`]).
    pub fn attachment_texts_of(&self, item_id: &str) -> String {
        format!(
            "{}{}/attachments/",
            self.documents_root(),
            safe_key_segment(item_id, 128)
        )
    }

    /// The text extracted from one attachment of an item.
    pub fn attachment_text(&self, item_id: &str, attachment_id: &str) -> String {
        format!(
            "{}{}.txt",
            self.attachment_texts_of(item_id),
            safe_key_segment(attachment_id, 64)
        )
    }

    pub fn manifest(&self, job: &JobId) -> String {
        format!("{}manifests/{job}.json", self.root)
    }

    pub fn state(&self, job: &JobId) -> String {
        format!("{}state/{job}/", self.root)
    }

    pub fn state_page(&self, job: &JobId, page: u32) -> String {
        format!("{}page-{page:06}.json", self.state(job))
    }
}
