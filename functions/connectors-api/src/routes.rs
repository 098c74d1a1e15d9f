//! The routes beyond `POST /authorizations`. Every lookup is scoped by the tenant given in the
//! request: an id of another tenant is simply not found (no existence leak).

use lambda_http::http::StatusCode;
use lambda_http::http::header::{self, HeaderValue};
use lambda_http::{Body, Request};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::events::{Event, ExportRequested};
use shared::export::runner::new_job_id;
use shared::ids::{ConnectionId, ConnectorId, Cql, JobId, Jql, Product, TenantId};
use shared::store::connectors::{Connector, ConnectorOptions};
use shared::store::jobs::Job;
use shared::store::{Connection, ConnectionStatus, Grant};
use time::OffsetDateTime;

use crate::json::{self, ApiError};
use crate::{Api, Handled};

fn ts(t: OffsetDateTime) -> Value {
    t.format(&time::format_description::well_known::Rfc3339)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

fn opt_ts(t: Option<OffsetDateTime>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// The tenant from `?tenant=`, required on every route but the tenant erase.
fn tenant_param(req: &Request) -> Result<TenantId, ApiError> {
    let query = req.uri().query().unwrap_or("");
    let all: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "tenant")
        .map(|(_, v)| v.into_owned())
        .collect();
    match all.as_slice() {
        [one] => TenantId::parse(one.as_str()).map_err(|e| ApiError::bad_request(e.to_string())),
        [] => Err(ApiError::bad_request(
            "tenant: the query parameter is required",
        )),
        _ => Err(ApiError::bad_request(
            "tenant: give the query parameter once",
        )),
    }
}

/// An id from the path. One that cannot exist is "not found", not a validation error.
fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such resource"))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(e.to_string())
}

fn grant_view(g: &Grant) -> Value {
    json!({
        "id": g.id,
        "status": g.status.as_str(),
        "status_reason": g.status_reason,
        "scopes": g.scope.split_whitespace().collect::<Vec<_>>(),
        "token_type": g.token_type,
        "access_expires_at": opt_ts(g.access_expires_at),
        "last_refreshed_at": opt_ts(g.last_refreshed_at),
        "keepalive_due_at": opt_ts(g.refresh_due_at),
        "consented_at": ts(g.consented_at),
        "reconsent_due_at": ts(g.reconsent_due_at()),
    })
}

fn connection_view(c: &Connection, grant: Option<&Grant>) -> Value {
    json!({
        "id": c.id,
        "tenant": c.tenant,
        "product": c.product,
        "cloud_id": c.cloud_id,
        "site_url": c.site_url,
        "site_name": c.site_name,
        "status": c.status.as_str(),
        "status_reason": c.status_reason,
        "grant": grant.map(grant_view),
        "connected_at": ts(c.connected_at),
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
    })
}

/// Each connection with its grant (read once per grant).
async fn with_grants(api: &Api, conns: &[Connection]) -> Result<Vec<Value>, ApiError> {
    let mut grants: Vec<Grant> = Vec::new();
    for c in conns {
        if let Some(id) = &c.grant_id
            && !grants.iter().any(|g| g.id == *id)
            && let Some(g) = api
                .store()
                .get_grant(&c.tenant, id)
                .await
                .map_err(unavailable)?
        {
            grants.push(g);
        }
    }
    Ok(conns
        .iter()
        .map(|c| {
            let grant = c
                .grant_id
                .as_ref()
                .and_then(|id| grants.iter().find(|g| g.id == *id));
            connection_view(c, grant)
        })
        .collect())
}

fn job_view(j: &Job) -> Value {
    json!({
        "id": j.id,
        "tenant": j.tenant,
        "connector_id": j.connector_id,
        "product": j.product,
        "status": j.status.as_str(),
        "phase": j.phase,
        "full_run": j.full_run,
        "items_done": j.items_done,
        "attachments_done": j.attachments_done,
        "bytes_done": j.bytes_done,
        "skipped_count": j.skipped_count,
        "skipped": j.skipped,
        "invocations": j.invocations,
        "started_at": ts(j.started_at),
        "updated_at": ts(j.updated_at),
        "finished_at": opt_ts(j.finished_at),
        "failure_reason": j.failure_reason,
        "resume_at": opt_ts(j.resume_at),
    })
}

fn connector_view(c: &Connector, last_job: Option<&Job>) -> Value {
    json!({
        "id": c.id,
        "tenant": c.tenant,
        "connection_id": c.connection_id,
        "product": c.product,
        "query": c.query,
        "options": c.options,
        "watermark": opt_ts(c.watermark),
        "active_job": c.active_job,
        "last_job": last_job.map(job_view),
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
    })
}

pub async fn list_connections(api: &Api, req: &Request) -> Handled {
    let tenant = tenant_param(req)?;
    let conns = api
        .store()
        .list_connections(&tenant)
        .await
        .map_err(unavailable)?;
    let views = with_grants(api, &conns).await?;
    json::respond(StatusCode::OK, &json!({ "connections": views }))
}

async fn load_connection(api: &Api, tenant: &TenantId, raw: &str) -> Result<Connection, ApiError> {
    let id = path_id::<ConnectionId>(raw)?;
    api.store()
        .get_connection(tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("no such connection"))
}

pub async fn get_connection(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let conn = load_connection(api, &tenant, raw).await?;
    let views = with_grants(api, std::slice::from_ref(&conn)).await?;
    json::respond(StatusCode::OK, &views.first().cloned().unwrap_or_default())
}

pub async fn erase_connection(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let id = path_id::<ConnectionId>(raw)?;
    let erased = api
        .eraser
        .erase_connection(&tenant, &id)
        .await
        .map_err(unavailable)?;
    json::respond(StatusCode::OK, &json!({ "erased": erased }))
}

/// `DELETE /tenants/{id}`: the erase can outlast this function's timeout, so it runs in the
/// export function (shared/src/erase/later.rs): 202 and where to follow it. Without a queue
/// (a local run without one) it runs here: 200 and what it removed.
pub async fn erase_tenant(api: &Api, raw: &str) -> Handled {
    let tenant = TenantId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let status_url = format!("/tenants/{tenant}/erasure");
    match api
        .eraser
        .start_tenant_erase(&tenant)
        .await
        .map_err(unavailable)?
    {
        Some(erased) => json::respond(
            StatusCode::OK,
            &json!({ "state": "done", "erased": erased, "status": status_url }),
        ),
        None => {
            let mut resp = json::respond(
                StatusCode::ACCEPTED,
                &json!({ "state": "running", "status": status_url }),
            )?;
            let location = HeaderValue::from_str(&status_url)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            resp.headers_mut().insert(header::LOCATION, location);
            Ok(resp)
        }
    }
}

/// `GET /tenants/{id}/erasure`: the state of the tenant's last erase (kept a day).
pub async fn tenant_erasure(api: &Api, raw: &str) -> Handled {
    let tenant = TenantId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let state = api
        .store()
        .erase_state(&tenant)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("no erase of this tenant was requested"))?;
    json::respond(
        StatusCode::OK,
        &json!({
            "state": if state.done { "done" } else { "running" },
            "erased": { "items": state.items, "objects": state.objects },
        }),
    )
}

/// `PUT /connectors/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorInput {
    tenant: TenantId,
    connection_id: ConnectionId,
    product: Product,
    query: String,
    #[serde(default)]
    options: ConnectorOptions,
}

pub async fn put_connector(api: &Api, req: &Request, raw: &str) -> Handled {
    let id = ConnectorId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let input: ConnectorInput = json::body(req)?;
    let query = match input.product {
        Product::Jira => Jql::parse(input.query).map(|q| q.as_str().to_owned()),
        Product::Confluence => Cql::parse(input.query).map(|q| q.as_str().to_owned()),
    }
    .map_err(|e| ApiError::bad_request(format!("query: {}", e.reason)))?;
    let conn = api
        .store()
        .get_connection(&input.tenant, &input.connection_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError::bad_request("connection_id: no such connection for this tenant")
        })?;
    if conn.product != input.product {
        return Err(ApiError::bad_request(format!(
            "product: the connection is a {} connection",
            conn.product
        )));
    }
    let existing = api
        .store()
        .get_connector(&input.tenant, &id)
        .await
        .map_err(unavailable)?;
    let now = OffsetDateTime::now_utc();
    // A connector is not changed under a running export (README, "Changing a connector"): the
    // job would mix its cursor with another query, and its watermark would claim what the new
    // query never exported.
    if let Some(active) = existing.as_ref().and_then(|e| e.active_job.clone())
        && api
            .store()
            .holds_slot(&input.tenant, &id, &active, now)
            .await
            .map_err(unavailable)?
    {
        return Err(ApiError::conflict(format!(
            "an export of this connector is running ({active}); change the connector when it has ended"
        )));
    }
    let connector = Connector {
        tenant: input.tenant,
        id,
        connection_id: input.connection_id,
        product: input.product,
        query,
        options: input.options,
        watermark: None,
        active_job: None,
        active_job_at: None,
        last_job: None,
        last_full_job: None,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let stored = api
        .store()
        .put_connector(&connector)
        .await
        .map_err(unavailable)?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    json::respond(status, &connector_view(&stored, None))
}

async fn load_connector(api: &Api, tenant: &TenantId, raw: &str) -> Result<Connector, ApiError> {
    let id = path_id::<ConnectorId>(raw)?;
    api.store()
        .get_connector(tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("no such connector"))
}

pub async fn get_connector(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let connector = load_connector(api, &tenant, raw).await?;
    let last = match &connector.last_job {
        Some(job) => api
            .store()
            .get_job(&tenant, job)
            .await
            .map_err(unavailable)?,
        None => None,
    };
    json::respond(StatusCode::OK, &connector_view(&connector, last.as_ref()))
}

pub async fn delete_connector(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let id = path_id::<ConnectorId>(raw)?;
    // The same erase as a connection's or a tenant's: tombstone, items, prefix sweep.
    let erased = api
        .eraser
        .erase_connector(&tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("no such connector"))?;
    json::respond(StatusCode::OK, &json!({ "erased": erased }))
}

/// `POST /connectors/{id}/exports` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportInput {
    #[serde(default)]
    full: bool,
}

pub async fn start_export(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let input: ExportInput = match req.body() {
        Body::Empty => ExportInput::default(),
        Body::Text(t) if t.trim().is_empty() => ExportInput::default(),
        _ => json::body(req)?,
    };
    let connector = load_connector(api, &tenant, raw).await?;
    let conn = api
        .store()
        .get_connection(&tenant, &connector.connection_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::conflict("the connector's connection no longer exists"))?;
    match conn.status {
        ConnectionStatus::Active => {}
        ConnectionStatus::Revoked => {
            return Err(ApiError::conflict(
                "the connection was revoked; the customer must connect again",
            ));
        }
        ConnectionStatus::SiteAccessLost => {
            return Err(ApiError::conflict(
                "Atlassian no longer lists this site for the connection's grant; the customer must connect the site again",
            ));
        }
    }
    // One running job per connector, enforced here by claiming the connector's slot for the
    // new job before asking for it: a second request, even before the first job started,
    // finds the slot taken.
    let job_id = new_job_id();
    let store = api.store();
    let now = OffsetDateTime::now_utc();
    let mut holder = store
        .claim_active_job(&tenant, &connector.id, &job_id, now)
        .await
        .map_err(unavailable)?;
    if let Some(other) = holder.clone().filter(|h| *h != job_id) {
        if store
            .holds_slot(&tenant, &connector.id, &other, now)
            .await
            .map_err(unavailable)?
        {
            return Err(ApiError::conflict(format!(
                "an export of this connector is already running: {other}"
            )));
        }
        store
            .finish_active_job(&tenant, &connector.id, &other, None, None)
            .await
            .map_err(unavailable)?;
        holder = store
            .claim_active_job(&tenant, &connector.id, &job_id, now)
            .await
            .map_err(unavailable)?;
    }
    match holder {
        Some(h) if h == job_id => {}
        Some(other) => {
            return Err(ApiError::conflict(format!(
                "an export of this connector is already running: {other}"
            )));
        }
        None => return Err(ApiError::not_found("no such connector")),
    }
    let event = Event::ExportRequested(ExportRequested {
        tenant,
        connector_id: connector.id.clone(),
        job_id: Some(job_id.clone()),
        full: input.full,
    });
    api.events.publish(&event).await.map_err(unavailable)?;
    json::respond(
        StatusCode::ACCEPTED,
        &json!({ "job_id": job_id, "status": "requested" }),
    )
}

pub async fn get_job(api: &Api, req: &Request, raw: &str) -> Handled {
    let tenant = tenant_param(req)?;
    let id = path_id::<JobId>(raw)?;
    let job = api
        .store()
        .get_job(&tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError::not_found(
                "no such job (a job appears once the export function has picked up the request)",
            )
        })?;
    json::respond(StatusCode::OK, &job_view(&job))
}
