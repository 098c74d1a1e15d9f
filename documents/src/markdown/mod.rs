//! The intermediate shape of rich text and its Markdown rendering.

pub mod ir;
pub mod render;
