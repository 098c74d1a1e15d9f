//! Attachment metadata shared by both products, and their bytes: a deterministic function of
//! (attachment id, size), generated in 64 KiB chunks and streamed, never held in memory. No
//! externally visible behaviour is decided here beyond `Content-Length` (exact, from the size
//! hint; the metadata's `size` and the bytes agree, as Jira's `Attachment.size` and v1's
//! `extensions.fileSize` document). The byte content is synthetic.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::rng::{fnv1a, mix};

/// Bytes per generated chunk (and per body frame).
pub const CHUNK_SIZE: u64 = 64 * 1024;

/// One seeded attachment, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// The product's id: Jira `"10042"`, Confluence `"att300042"`.
    pub id: String,
    pub filename: String,
    pub size: u64,
    pub mime_type: String,
    pub created: OffsetDateTime,
    /// Account id of the uploader.
    pub author_account_id: String,
    /// Issue key (Jira) or page id (Confluence) it belongs to.
    pub container: String,
    /// Downloading it answers 403.
    pub forbidden: bool,
}

impl AttachmentInfo {
    /// SHA-256 (lower-case hex) of the bytes the fake serves for it, computed by streaming the
    /// generator.
    pub fn sha256_hex(&self) -> String {
        match super::crafted::Crafted::by_filename(&self.filename) {
            Some(c) => hex::encode(Sha256::digest(c.bytes())),
            None => content_sha256_hex(&self.id, self.size),
        }
    }

    /// The exact bytes the fake serves (fine for small attachments in tests; large ones should
    /// use [`AttachmentInfo::sha256_hex`]).
    pub fn content(&self) -> Vec<u8> {
        if let Some(c) = super::crafted::Crafted::by_filename(&self.filename) {
            return c.bytes().to_vec();
        }
        let mut out = Vec::new();
        for chunk in chunks(&self.id, self.size) {
            out.extend_from_slice(&chunk);
        }
        out
    }
}

/// SHA-256 hex of the content of attachment `id` with `size` bytes.
pub fn content_sha256_hex(id: &str, size: u64) -> String {
    let mut hasher = Sha256::new();
    for chunk in chunks(id, size) {
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

fn chunks(id: &str, size: u64) -> impl Iterator<Item = Bytes> {
    let mut body = ContentBody::new(id, size);
    std::iter::from_fn(move || body.next_chunk())
}

/// A response body producing the attachment's bytes chunk by chunk, with an exact size hint so
/// the server sends `Content-Length`.
#[derive(Debug)]
pub(crate) struct ContentBody {
    seed: u64,
    size: u64,
    pos: u64,
}

impl ContentBody {
    pub(crate) fn new(id: &str, size: u64) -> Self {
        Self {
            seed: mix(fnv1a(id.as_bytes()) ^ size),
            size,
            pos: 0,
        }
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.pos >= self.size {
            return None;
        }
        let index = self.pos / CHUNK_SIZE;
        let len = usize::try_from((self.size - self.pos).min(CHUNK_SIZE)).unwrap_or(0);
        let mut state = mix(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut buf = BytesMut::with_capacity(len);
        while buf.len() < len {
            // xorshift64*: a few operations per 8 bytes keeps even debug builds fast.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            let take = (len - buf.len()).min(8);
            buf.extend_from_slice(&word[..take]);
        }
        self.pos += len as u64;
        Some(buf.freeze())
    }
}

impl Body for ContentBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_chunk().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.size
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size - self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_sized() {
        let a: Vec<Bytes> = chunks("10001", 200_000).collect();
        let b: Vec<Bytes> = chunks("10001", 200_000).collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Bytes::len).sum::<usize>(), 200_000);
        assert_eq!(a.len(), 4);
        assert_ne!(
            content_sha256_hex("10001", 10),
            content_sha256_hex("10002", 10)
        );
    }

    #[test]
    fn empty_content_has_the_empty_digest() {
        assert_eq!(
            content_sha256_hex("x", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
