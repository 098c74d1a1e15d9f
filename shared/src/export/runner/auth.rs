//! Access tokens for a job's calls (the token side: issue 13 changes it here, and only here).
//! `Session`, `authed`, `renew` and the token acquisition of `open_session` were moved
//! verbatim from the former single-file runner.

use super::*;

/// The access token shared by a job's concurrent calls, renewed once when Atlassian says 401.
pub(super) struct Session {
    token: Mutex<Secret>,
}

impl Session {
    pub(super) fn current(&self) -> Secret {
        self.token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Exporter {
    /// The job's session: the access token its calls share (moved verbatim from `drive`).
    pub(super) async fn open_session(&self, job: &Job) -> Result<Session, ExportError> {
        let (token, _) = self
            .keeper
            .access_token(
                &job.tenant,
                &job.connection_id,
                Need::AccessToken,
                OffsetDateTime::now_utc(),
            )
            .await?;
        let session = Session {
            token: Mutex::new(token.token),
        };
        Ok(session)
    }

    /// Call Atlassian with the session's token; on 401 renew it once (another caller may have
    /// rotated it) and retry; a 401 on a token we just refreshed means access was revoked.
    pub(super) async fn authed<T, F, Fut>(
        &self,
        job: &Job,
        session: &Session,
        call: F,
    ) -> Result<T, ExportError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, ExportError>>,
    {
        let token = session.current();
        match call(token.clone()).await {
            Err(ExportError::Unauthorized(_)) => {
                let (fresh, obtained) = self.renew(job, session, &token).await?;
                match call(fresh).await {
                    Err(ExportError::Unauthorized(_)) if obtained == Obtained::Refreshed => {
                        if let Some(conn) = self
                            .keeper
                            .store
                            .get_connection(&job.tenant, &job.connection_id)
                            .await?
                        {
                            self.keeper
                                .revoke(
                                    &conn,
                                    RevocationReason::Unauthorized,
                                    OffsetDateTime::now_utc(),
                                )
                                .await?;
                        }
                        Err(ExportError::Revoked)
                    }
                    Err(ExportError::Unauthorized(_)) => Err(ExportError::Revoked),
                    other => other,
                }
            }
            other => other,
        }
    }

    pub(super) async fn renew(
        &self,
        job: &Job,
        session: &Session,
        stale: &Secret,
    ) -> Result<(Secret, Obtained), ExportError> {
        let current = session.current();
        if current.expose_secret() != stale.expose_secret() {
            return Ok((current, Obtained::FromWinner));
        }
        // Ask for a token valid well past now: forces a refresh unless someone just did one.
        let later = OffsetDateTime::now_utc() + time::Duration::hours(2);
        let (fresh, obtained) = self
            .keeper
            .access_token(&job.tenant, &job.connection_id, Need::AccessToken, later)
            .await?;
        if let Ok(mut t) = session.token.lock() {
            *t = fresh.token.clone();
        }
        Ok((fresh.token, obtained))
    }
}
