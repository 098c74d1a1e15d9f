//! Confluence storage format (XHTML with `ac:`/`ri:` elements and macros) to Markdown.

mod convert;
mod tree;

use crate::markdown::render::to_markdown;
use crate::resolve::Resolver;

/// Markdown for a storage-format body (`body.storage.value`).
pub fn storage_to_markdown(xhtml: &str, resolver: &dyn Resolver) -> String {
    to_markdown(&storage_blocks(xhtml, resolver))
}

pub(crate) fn storage_blocks(
    xhtml: &str,
    resolver: &dyn Resolver,
) -> Vec<crate::markdown::ir::Block> {
    convert::Conv { r: resolver }.blocks(&tree::parse(xhtml))
}
