//! Flow 1 of ARCHITECTURE.md: connect a customer's Atlassian site.
//!
//! [`ConnectService::start`] records a single-use state and returns the consent URL;
//! [`ConnectService::complete`] consumes the state, exchanges the code, reads which sites the
//! grant covers and stores one encrypted connection per site.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use url::Url;

use crate::atlassian::AtlassianUrls;
use crate::atlassian::http::AtlassianHttp;
use crate::atlassian::oauth::{self, AppCredentials, OAuthError};
use crate::config::{Config, ConfigError};
use crate::error::AwsError;
use crate::ids::{CloudId, Product, TenantId};
use crate::secret::{ExposeSecret, Secret, secret};
use crate::store::Connection;
use crate::store::states::STATE_LIFETIME;
use crate::store::{
    ConsumeStateError, NewConnection, PendingAuthorization, Store, StoreError, connection_id,
};
use crate::vault::{Vault, VaultError};

/// Both apps' credentials, loaded once per cold start.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    pub jira: Option<AppCredentials>,
    pub confluence: Option<AppCredentials>,
}

impl Apps {
    /// Read each configured app's client secret from Secrets Manager.
    pub async fn load(
        config: &Config,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Apps, AwsError> {
        let mut apps = Apps::default();
        for settings in [&config.jira, &config.confluence].into_iter().flatten() {
            let out = secrets
                .get_secret_value()
                .secret_id(&settings.client_secret_name)
                .send()
                .await
                .map_err(|e| AwsError::new("secretsmanager:GetSecretValue", &e))?;
            let value = out.secret_string.ok_or_else(|| AwsError {
                operation: "secretsmanager:GetSecretValue",
                code: None,
                detail: format!("secret {} has no string value", settings.client_secret_name),
            })?;
            let creds = AppCredentials {
                settings: settings.clone(),
                client_secret: secret(value.trim()),
            };
            match settings.product {
                Product::Jira => apps.jira = Some(creds),
                Product::Confluence => apps.confluence = Some(creds),
            }
        }
        Ok(apps)
    }

    pub fn get(&self, product: Product) -> Option<&AppCredentials> {
        match product {
            Product::Jira => self.jira.as_ref(),
            Product::Confluence => self.confluence.as_ref(),
        }
    }
}

/// A consent URL handed to the platform.
#[derive(Debug, Clone)]
pub struct StartedAuthorization {
    pub authorize_url: Url,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("return_url is not one of the allowed return URLs")]
    ReturnUrlNotAllowed,
    #[error("the {0} app is not configured in this deployment")]
    ProductNotConfigured(Product),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What came back on the callback URL.
#[derive(Debug)]
pub enum CallbackParams {
    /// The user consented.
    Code { code: Secret, state: Secret },
    /// The user refused (or Atlassian reported another error).
    Refused {
        state: Option<Secret>,
        error: String,
    },
}

/// A completed consent.
#[derive(Debug)]
pub struct Connected {
    pub tenant: TenantId,
    pub product: Product,
    pub connections: Vec<Connection>,
    pub return_url: Option<Url>,
}

/// A refused consent (the state is consumed all the same).
#[derive(Debug)]
pub struct Refused {
    pub return_url: Option<Url>,
    pub access_denied: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error("unknown or already used authorization")]
    UnknownState,
    #[error("the authorization expired")]
    ExpiredState,
    #[error("the authorization covers no Atlassian site")]
    NoSites,
    #[error("the {0} app is not configured in this deployment")]
    ProductNotConfigured(Product),
    #[error("Atlassian refused the authorization: {0}")]
    Rejected(OAuthError),
    #[error("Atlassian could not be reached: {0}")]
    Upstream(OAuthError),
    #[error("a granted site has an unusable id or URL")]
    BadSite,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<ConsumeStateError> for CompleteError {
    fn from(e: ConsumeStateError) -> Self {
        match e {
            ConsumeStateError::Unknown => CompleteError::UnknownState,
            ConsumeStateError::Expired => CompleteError::ExpiredState,
            ConsumeStateError::Store(e) => CompleteError::Store(e),
        }
    }
}

/// Everything the connect flow needs; built once per cold start.
pub struct ConnectService {
    pub config: Config,
    pub apps: Apps,
    pub store: Store,
    pub vault: Vault,
    pub http: AtlassianHttp,
    pub urls: AtlassianUrls,
}

impl ConnectService {
    /// Build from validated config and the cold start's AWS clients (reads the client secrets).
    pub async fn from_config(
        config: Config,
        aws: &crate::aws::AwsClients,
    ) -> Result<ConnectService, crate::error::StartupError> {
        let apps = Apps::load(&config, &aws.secrets).await?;
        let http = AtlassianHttp::new(
            Default::default(),
            config.atlassian.max_concurrency_per_site,
        )?;
        Ok(ConnectService {
            urls: AtlassianUrls::new(&config.atlassian),
            store: Store::new(aws.dynamodb.clone(), config.table_name.clone()),
            vault: Vault::new(aws.kms.clone(), config.kms_key_id.clone()),
            apps,
            http,
            config,
        })
    }
}

/// A fresh 256-bit state, URL-safe.
fn new_state() -> Secret {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    secret(URL_SAFE_NO_PAD.encode(raw))
}

impl ConnectService {
    pub async fn start(
        &self,
        tenant: TenantId,
        product: Product,
        return_url: Option<Url>,
        now: OffsetDateTime,
    ) -> Result<StartedAuthorization, StartError> {
        if let Some(url) = &return_url
            && !self.config.is_allowed_return_url(url)
        {
            return Err(StartError::ReturnUrlNotAllowed);
        }
        let app = self
            .apps
            .get(product)
            .ok_or(StartError::ProductNotConfigured(product))?;
        let redirect = self.config.redirect_url()?;
        let state = new_state();
        let expires_at = now + STATE_LIFETIME;
        self.store
            .put_state(
                &state,
                &PendingAuthorization {
                    tenant,
                    product,
                    return_url,
                    expires_at,
                },
            )
            .await?;
        Ok(StartedAuthorization {
            authorize_url: oauth::authorize_url(&self.urls, &app.settings, redirect, &state),
            expires_at,
        })
    }

    /// A refused consent: consume the state (so it cannot be replayed) and say where to go.
    pub async fn refuse(
        &self,
        state: Option<&Secret>,
        error: &str,
        now: OffsetDateTime,
    ) -> Refused {
        let pending = match state {
            Some(s) => self.store.consume_state(s.expose_secret(), now).await.ok(),
            None => None,
        };
        Refused {
            return_url: pending.and_then(|p| p.return_url),
            access_denied: error == "access_denied",
        }
    }

    pub async fn complete(
        &self,
        code: &Secret,
        state: &Secret,
        now: OffsetDateTime,
    ) -> Result<Connected, CompleteError> {
        let pending = self.store.consume_state(state.expose_secret(), now).await?;
        let app = self
            .apps
            .get(pending.product)
            .ok_or(CompleteError::ProductNotConfigured(pending.product))?;
        let redirect = self.config.redirect_url()?;
        let grant = oauth::exchange_code(&self.http, &self.urls, app, code, redirect)
            .await
            .map_err(classify)?;
        let sites = oauth::accessible_resources(&self.http, &self.urls, &grant.tokens.access_token)
            .await
            .map_err(classify)?;
        if sites.is_empty() {
            return Err(CompleteError::NoSites);
        }
        let access_expires_at =
            now + time::Duration::seconds(i64::try_from(grant.expires_in).unwrap_or(3600));
        let mut connections = Vec::with_capacity(sites.len());
        for site in sites {
            let cloud_id = CloudId::parse(site.id).map_err(|_| CompleteError::BadSite)?;
            let site_url = Url::parse(&site.url).map_err(|_| CompleteError::BadSite)?;
            let id = connection_id(&pending.tenant, pending.product, &cloud_id);
            let ctx = crate::vault::EnvelopeContext {
                tenant: pending.tenant.clone(),
                connection: id.clone(),
                product: pending.product,
            };
            // One envelope (and one data key) per connection: each is bound to its own record.
            let envelope = self.vault.seal(&ctx, &grant.tokens).await?;
            let stored = self
                .store
                .upsert_connection(&NewConnection {
                    tenant: pending.tenant.clone(),
                    id,
                    product: pending.product,
                    cloud_id,
                    site_url,
                    scope: grant.scope.clone(),
                    token_type: grant.token_type.clone(),
                    access_expires_at,
                    envelope,
                    now,
                })
                .await?;
            connections.push(stored);
        }
        Ok(Connected {
            tenant: pending.tenant,
            product: pending.product,
            connections,
            return_url: pending.return_url,
        })
    }
}

/// Refusals (a 4xx from the token endpoint) versus transport trouble.
fn classify(e: OAuthError) -> CompleteError {
    match &e {
        OAuthError::InvalidGrant { .. } | OAuthError::Refused { .. } => CompleteError::Rejected(e),
        OAuthError::Http(h)
            if h.status()
                .is_some_and(|s| s.is_client_error() && s.as_u16() != 429) =>
        {
            CompleteError::Rejected(e)
        }
        _ => CompleteError::Upstream(e),
    }
}
