//! Flow 3 of ARCHITECTURE.md: export what a connector selects into S3.
//!
//! [`runner`] is the product-agnostic job machinery; [`jira`] (and Confluence) are the
//! [`source::Source`]s; [`redact`] keeps account ids and profile data out (PRIVACY.md P5);
//! [`keys`] is the S3 layout.

pub mod confluence;
pub mod document;
mod error;
pub mod jira;
pub mod keys;
pub mod redact;
pub mod resume;
pub mod runner;
pub mod source;

pub use error::ExportError;
