//! One item: its attachments streamed into S3, then its document (skipped when unchanged).

use futures::StreamExt;

use super::departed::Keep;
use super::*;
use crate::offload;

impl<P: Sources> Exporter<P> {
    /// Write one fetched item: its attachments, their texts, then (on the blocking pool) it is
    /// redacted and its document rendered, then its document and its JSON are written (on
    /// runtime workers), unless unchanged.
    pub(super) async fn export_item<S: Source>(
        &self,
        job: &Job,
        run: &Run<'_>,
        item: Item,
    ) -> Result<ItemResult, ExportError> {
        self.step(ITEM_WRITE).await;
        let (layout, ctx, session) = (run.layout, run.ctx, run.session);
        let with_attachments = run.connector.options.attachments;
        let Item {
            id: item_id,
            doc,
            attachments,
        } = item;
        let mut result = ItemResult::default();
        let mut copied = Vec::new();
        let mut keep = Keep::default();
        // Texts of attachments Atlassian refused now: kept with their objects.
        let mut refused_texts = BTreeSet::new();
        if with_attachments {
            // An item's attachments are copied [`ATTACHMENTS_AT_ONCE`] at a time (each holding
            // one of the invocation's stream slots), so an item with many does not hold up its
            // batch's landing by one round trip per attachment; results come in list order.
            let id = &item_id;
            let copies = futures::stream::iter(attachments)
                .map(|att| async move {
                    // Inside a batch too: a batch of large attachments must not outrun the
                    // invocation. The batch is redone by the continuation (same keys).
                    if Instant::now() + self.deadline_margin >= run.deadline {
                        return Err(ExportError::OutOfTime);
                    }
                    let key = layout.attachment(id, &att.id, &att.filename);
                    let outcome = self.copy_attachment(job, ctx, session, &att, &key).await?;
                    Ok((att, key, outcome))
                })
                .buffered(ATTACHMENTS_AT_ONCE);
            let mut copies = std::pin::pin!(copies);
            while let Some(copy) = copies.next().await {
                let (att, key, outcome) = copy?;
                keep.objects.insert(key);
                match outcome {
                    Ok(stored) => {
                        result.attachments += 1;
                        result.bytes += stored.bytes;
                        copied.push((att, stored));
                    }
                    Err(reason) => {
                        refused_texts.insert(layout.attachment_text(&item_id, &att.id));
                        result.skipped.push(Skipped {
                            id: format!("{item_id}/attachment/{}", att.id),
                            reason,
                        })
                    }
                }
            }
        }
        // Documents (issue 18) after the attachments and before the item: a crash in between
        // redoes them with the item.
        // Boxed: extraction makes a large future, and an unboxed one inflates every enclosing
        // future (a debug build overflowed a 2 MiB test-thread stack).
        let texts = Box::pin(crate::export::document::extract_texts(
            &self.blobs,
            &self.documents,
            layout,
            &item_id,
            &copied,
            run.fresh,
        ))
        .await?;
        if with_attachments && self.documents.enabled {
            let prefix = format!("{item_id}/");
            let stored = texts
                .texts
                .iter()
                .filter_map(|t| t.strip_prefix(&prefix))
                .map(|att| layout.attachment_text(&item_id, att));
            keep.texts = Some(stored.chain(refused_texts).collect());
        }
        let (rendered, body, sha256, texts) = {
            let (documents, product, site_url) =
                (self.documents, job.product, ctx.site_url.to_owned());
            let item_id = item_id.clone();
            let redact: fn(&mut Value, &mut NameBook) = S::redact;
            offload::cpu(move || {
                let mut doc = doc;
                // Names are learned from the document itself only, so an item's redacted form
                // never depends on which items an invocation happened to see before it.
                redact(&mut doc, &mut NameBook::default());
                for (att, stored) in &copied {
                    mark_exported(&mut doc, &att.id, &stored.key, &stored.sha256_hex);
                }
                let rendered = crate::export::document::render_item(
                    &documents, product, &site_url, &item_id, &doc, &copied, &texts,
                )?;
                let body = serde_json::to_vec(&doc)
                    .map_err(|e| ExportError::Terminal(format!("item {item_id}: {e}")))?;
                let sha256 = hex::encode(sha2::Sha256::digest(&body));
                Ok::<_, ExportError>((rendered, body, sha256, texts))
            })
            .await??
        };
        result.texts = texts.texts;
        result.skipped.extend(texts.skipped);
        result.bytes += body.len() as u64;
        // The item's object records its own hash and its document's: one HeadObject tells
        // whether either changed, and an unchanged item (an incremental run's overlap, a
        // redone batch) is not written again (no new object version for the same content). A
        // fresh invocation knows nothing is stored yet and does not ask.
        let key = layout.item(&item_id);
        let previous = if run.fresh {
            None
        } else {
            let (blobs, key) = (self.blobs.clone(), key.clone());
            offload::on_worker(async move { blobs.metadata(&key).await }).await??
        };
        let stored = |name: &str| previous.as_ref().and_then(|m| m.get(name));
        let document_sha256 = rendered.as_ref().map(|r| r.sha256.clone());
        let document_changed =
            document_sha256.is_some() && stored(DOCUMENT_SHA256) != document_sha256.as_ref();
        if stored(CONTENT_SHA256) == Some(&sha256) && !document_changed {
            result.unchanged = true;
            return Ok(result);
        }
        if document_changed && let Some(rendered) = rendered {
            let (blobs, layout, item_id) = (self.blobs.clone(), layout.clone(), item_id.clone());
            offload::on_worker(async move {
                crate::export::document::put(&blobs, &layout, &item_id, rendered).await
            })
            .await??;
        }
        // Before the item's JSON, its last write (departed.rs says why). Only over an item
        // exported before: a new item has no departed attachments (a first full run costs no
        // listing per item).
        if with_attachments && previous.is_some() {
            self.remove_departed(layout, &item_id, &keep).await?;
        }
        let blobs = self.blobs.clone();
        offload::on_worker(async move {
            let mut metadata = vec![("item-id", item_id.as_str()), (CONTENT_SHA256, &sha256)];
            if let Some(document) = &document_sha256 {
                metadata.push((DOCUMENT_SHA256, document));
            }
            blobs
                .put_bytes(&key, Bytes::from(body), "application/json", &metadata)
                .await
        })
        .await??;
        Ok(result)
    }

    /// Stream one attachment into S3. `Ok(Err(reason))` when Atlassian refuses it (403/404):
    /// recorded and skipped, the export goes on.
    pub(super) async fn copy_attachment(
        &self,
        job: &Job,
        ctx: &Ctx<'_>,
        session: &Session,
        att: &AttachmentRef,
        key: &str,
    ) -> Result<Result<Stored, String>, ExportError> {
        let original = metadata_value(&crate::export::redact::safe_key_component(&att.filename));
        let metadata = [
            ("original-filename", original.as_str()),
            ("attachment-id", att.id.as_str()),
        ];
        // A stream slot for the whole copy (retries included): bounds the part buffers.
        let _slot =
            self.streams.acquire().await.map_err(|_| {
                ExportError::Terminal("the attachment stream slots were closed".into())
            })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let download = self
                .authed(job, session, |t| async move {
                    let req = ctx
                        .http
                        .request(Method::GET, att.url.clone())
                        .bearer_auth(t.expose_secret())
                        .build()
                        .map_err(|_| {
                            ExportError::Terminal("attachment request could not be built".into())
                        })?;
                    ctx.http
                        .send(
                            "attachment.download",
                            ctx.cloud_id.as_str(),
                            Idempotency::Safe,
                            req,
                        )
                        .await
                        .map_err(ExportError::from)
                })
                .await;
            let resp = match download {
                Ok(resp) => resp,
                Err(ExportError::Http(HttpError::Status { status, .. }))
                    if matches!(status.as_u16(), 403 | 404 | 410) =>
                {
                    return Ok(Err(format!(
                        "Atlassian answered {status} for the attachment"
                    )));
                }
                Err(ExportError::Http(HttpError::Status {
                    status,
                    redirected: true,
                    ..
                })) if status.as_u16() == 401 => {
                    // The media host refused the signed link; not a sign about our token.
                    return Ok(Err(
                        "Atlassian's media host refused the download (401)".to_owned()
                    ));
                }
                Err(e) => return Err(e),
            };
            match self
                .blobs
                .put_stream(
                    key,
                    resp.bytes_stream(),
                    &att.mime_type,
                    &metadata,
                    att.size,
                )
                .await
            {
                Ok(stored) => return Ok(Ok(stored)),
                Err(BlobError::Aws(e)) => return Err(ExportError::Store(StoreError::Aws(e))),
                Err(e) if attempt < ATTACHMENT_ATTEMPTS => {
                    tracing::info!(error = %e, attempt, "attachment download broke; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[derive(Default)]
pub(super) struct ItemResult {
    pub(super) attachments: u64,
    pub(super) bytes: u64,
    pub(super) skipped: Vec<Skipped>,
    /// `{itemId}/{attachmentId}` of each attachment text stored (for the manifest).
    pub(super) texts: Vec<String>,
    /// The stored item already had this content: not written.
    pub(super) unchanged: bool,
}

/// Attachments of one item copied at once (within the invocation's [`ATTACHMENT_STREAMS`]).
const ATTACHMENTS_AT_ONCE: usize = 4;

/// Object metadata holding an item's SHA-256 (hex), to skip rewriting unchanged items.
const CONTENT_SHA256: &str = "content-sha256";
/// Object metadata of an item holding its document's SHA-256 (the metadata record's, which
/// holds the Markdown's hash), to skip rewriting unchanged documents.
const DOCUMENT_SHA256: &str = "document-sha256";

/// Note in the item's JSON where its attachment landed.
pub(super) fn mark_exported(doc: &mut Value, attachment_id: &str, key: &str, sha256: &str) {
    // Jira lists attachments in `fields.attachment`, our Confluence items in `attachments`.
    let list = if doc.pointer("/fields/attachment").is_some() {
        "/fields/attachment"
    } else {
        "/attachments"
    };
    let Some(list) = doc.pointer_mut(list).and_then(Value::as_array_mut) else {
        return;
    };
    for a in list {
        if a["id"].as_str() == Some(attachment_id) {
            a["exportedKey"] = Value::String(key.to_owned());
            a["sha256"] = Value::String(sha256.to_owned());
        }
    }
}
