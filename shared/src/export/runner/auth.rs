//! Access tokens for a job's calls, from the connection's grant (issue 13): one session per
//! invocation, a token renewed once when Atlassian says 401, and a 401 on the renewed token
//! diagnosed — never taken for a revocation (only `invalid_grant` revokes).

use super::*;
use crate::atlassian::scopes;
use crate::store::Connection;
use crate::vault::refresh::{Diagnosis, TokenError};

/// The access token shared by a job's concurrent calls, with the grant version that issued
/// it; renewed once when Atlassian says 401.
pub(super) struct Session {
    connection: Connection,
    token: Mutex<(Secret, u64)>,
    /// The scopes the grant holds (the token response's `scope`), to name a missing one.
    scope: String,
}

impl Session {
    pub(super) fn current(&self) -> (Secret, u64) {
        self.token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl<P: Sources> Exporter<P> {
    /// The job's session: the connection and an access token of its grant (refreshed if it
    /// expires within minutes; a legacy connection is migrated first).
    pub(super) async fn open_session(&self, job: &Job) -> Result<Session, ExportError> {
        let (connection, token, _) = match self
            .keeper
            .for_connection(&job.tenant, &job.connection_id)
            .await
        {
            Err(TokenError::NotFound) => {
                return Err(ExportError::Terminal("the connection was deleted".into()));
            }
            other => other?,
        };
        Ok(Session {
            connection,
            scope: token.grant.scope.clone(),
            token: Mutex::new((token.token, token.grant.version)),
        })
    }

    /// Call Atlassian with the session's token; on 401 renew it once (another caller may have
    /// rotated it, and a rotated-out access token dies 10 minutes later) and retry. A 401 on
    /// the renewed token is never taken for a revocation (only `invalid_grant` is): we ask
    /// accessible-resources whether the grant still covers the site — if not, the connection
    /// is `site_access_lost`; if so, the app lacks a scope for the endpoint. Either way the
    /// job fails with that reason and the tokens stay.
    pub(super) async fn authed<T, F, Fut>(
        &self,
        _job: &Job,
        session: &Session,
        call: F,
    ) -> Result<T, ExportError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, ExportError>>,
    {
        let (token, version) = session.current();
        match call(token).await {
            Err(ExportError::Unauthorized(_)) => {
                let fresh = self.renew(session, version).await?;
                match call(fresh.clone()).await {
                    Err(ExportError::Unauthorized(endpoint)) => {
                        Err(self.refused(session, &fresh, endpoint).await)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Why a renewed token was refused, as the job's failure.
    async fn refused(&self, session: &Session, token: &Secret, endpoint: &str) -> ExportError {
        let conn = &session.connection;
        match self.keeper.diagnose(token, conn).await {
            Diagnosis::SiteMissing => {
                if let Err(e) = self.keeper.site_lost(conn).await {
                    tracing::error!(error = %e, connection_id = %conn.id, "could not record the lost site");
                }
                ExportError::Token(TokenError::SiteAccessLost)
            }
            Diagnosis::SiteListed => {
                let missing = scopes::missing_scopes(conn.product, endpoint, &session.scope);
                let documented = scopes::documented_scopes(conn.product, endpoint);
                ExportError::Terminal(if missing.is_empty() {
                    format!(
                        "Atlassian refused {endpoint} (401): scope does not match / not authorized — the endpoint documents {}, which the grant's consent holds; check that the app still has it in the developer console",
                        if documented.is_empty() {
                            "no scope we know of".to_owned()
                        } else {
                            documented.join(", ")
                        }
                    )
                } else {
                    format!(
                        "Atlassian refused {endpoint} (401): scope does not match — the grant lacks {}; add it to the app in the developer console and to the deployment's scopes, then connect again",
                        missing.join(", ")
                    )
                })
            }
            Diagnosis::TokenRefused => ExportError::Terminal(format!(
                "Atlassian refused {endpoint} and accessible-resources with a freshly refreshed token (401); the connection is kept, try again later or connect again"
            )),
            Diagnosis::Unknown(why) => ExportError::Token(TokenError::Transient(format!(
                "Atlassian refused {endpoint} (401) and accessible-resources could not be asked: {why}"
            ))),
        }
    }

    /// A token newer than the one refused (issued at grant version `seen`).
    async fn renew(&self, session: &Session, seen: u64) -> Result<Secret, ExportError> {
        let (current, version) = session.current();
        if version > seen {
            return Ok(current);
        }
        let grant = session
            .connection
            .grant_id
            .as_ref()
            .ok_or(ExportError::Token(TokenError::Revoked))?;
        let (fresh, _) = self
            .keeper
            .renewed(&session.connection.tenant, grant, seen)
            .await?;
        if let Ok(mut t) = session.token.lock()
            && t.1 < fresh.grant.version
        {
            *t = (fresh.token.clone(), fresh.grant.version);
        }
        Ok(fresh.token)
    }
}
