//! Flow 1 of ARCHITECTURE.md: connect a customer's Atlassian site.
//!
//! [`ConnectService::start`] records a single-use state and returns the consent URL;
//! [`ConnectService::complete`] consumes the state, exchanges the code, stores the grant (one
//! token family, sealed) and connects only the site the customer chose: the one the platform
//! named, the only one granted, or the one(s) the user picks on the callback's chooser page
//! ([`ConnectService::choose`]). accessible-resources is cumulative — it lists every site this
//! user ever granted the app, for any customer — so it is never connected wholesale.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use url::Url;

use crate::atlassian::AtlassianUrls;
use crate::atlassian::http::AtlassianHttp;
use crate::atlassian::oauth::{self, AppCredentials, OAuthError};
use crate::atlassian::outbound::Outbound;
use crate::config::{Config, ConfigError};
use crate::error::AwsError;
use crate::ids::{CloudId, GrantId, Product, TenantId};
use crate::secret::{ExposeSecret, Secret, secret};
use crate::store::choices::{OfferedSite, PendingChoice};
use crate::store::grants::{UNATTACHED_LIFETIME, new_grant_id};
use crate::store::states::STATE_LIFETIME;
use crate::store::{
    Connection, ConsumeStateError, NewConnection, NewGrant, PendingAuthorization, Store,
    StoreError, connection_id,
};
use crate::vault::{EnvelopeContext, Vault, VaultError};

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

/// A completed consent: the chosen sites are connected to the consent's grant.
#[derive(Debug)]
pub struct Connected {
    pub tenant: TenantId,
    pub product: Product,
    pub grant_id: GrantId,
    pub connections: Vec<Connection>,
    pub return_url: Option<Url>,
}

/// The grant lists several sites and the platform named none: the user picks on a page.
#[derive(Debug)]
pub struct ChooseSite {
    /// Single use; posted back with the choice. Shown only in the page's form.
    pub selection: Secret,
    pub product: Product,
    pub sites: Vec<OfferedSite>,
    pub expires_at: OffsetDateTime,
}

/// Where a consent ends.
#[derive(Debug)]
pub enum Completed {
    Connected(Connected),
    Choose(ChooseSite),
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
    #[error("the authorization covers no Atlassian site for this product")]
    NoSites,
    #[error("the site named in the authorization was not granted")]
    SiteNotGranted,
    #[error("the chosen site was not offered")]
    SiteNotOffered,
    #[error("no site was chosen")]
    NothingChosen,
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
            Outbound::for_settings(&config.atlassian),
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

/// What starting an authorization needs, and nothing more: the connectors API builds this, so
/// it never reads the client secrets, opens a token envelope or calls Atlassian (issue 16:
/// its role has no Secrets Manager grant).
pub struct Authorizer {
    pub config: Config,
    pub store: Store,
    pub urls: AtlassianUrls,
}

impl Authorizer {
    pub fn from_config(config: Config, aws: &crate::aws::AwsClients) -> Authorizer {
        Authorizer {
            urls: AtlassianUrls::new(&config.atlassian),
            store: Store::new(aws.dynamodb.clone(), config.table_name.clone()),
            config,
        }
    }

    /// Record a single-use state and return the consent URL. `site` (a site URL or cloud id)
    /// names the one site to connect after consent.
    pub async fn start(
        &self,
        tenant: TenantId,
        product: Product,
        return_url: Option<Url>,
        site: Option<String>,
        now: OffsetDateTime,
    ) -> Result<StartedAuthorization, StartError> {
        start(
            &self.config,
            &self.store,
            &self.urls,
            tenant,
            product,
            return_url,
            site,
            now,
        )
        .await
    }
}

impl ConnectService {
    /// As [`Authorizer::start`].
    pub async fn start(
        &self,
        tenant: TenantId,
        product: Product,
        return_url: Option<Url>,
        site: Option<String>,
        now: OffsetDateTime,
    ) -> Result<StartedAuthorization, StartError> {
        start(
            &self.config,
            &self.store,
            &self.urls,
            tenant,
            product,
            return_url,
            site,
            now,
        )
        .await
    }
}

#[allow(clippy::too_many_arguments)]
async fn start(
    config: &Config,
    store: &Store,
    urls: &AtlassianUrls,
    tenant: TenantId,
    product: Product,
    return_url: Option<Url>,
    site: Option<String>,
    now: OffsetDateTime,
) -> Result<StartedAuthorization, StartError> {
    if let Some(url) = &return_url
        && !config.is_allowed_return_url(url)
    {
        return Err(StartError::ReturnUrlNotAllowed);
    }
    // The app's public settings (client id, scopes); its secret is not needed here.
    let app = [&config.jira, &config.confluence]
        .into_iter()
        .flatten()
        .find(|a| a.product == product)
        .ok_or(StartError::ProductNotConfigured(product))?;
    let redirect = config.redirect_url()?;
    let state = new_state();
    let expires_at = now + STATE_LIFETIME;
    store
        .put_state(
            &state,
            &PendingAuthorization {
                tenant,
                product,
                return_url,
                site,
                expires_at,
            },
        )
        .await?;
    Ok(StartedAuthorization {
        authorize_url: oauth::authorize_url(urls, app, redirect, &state),
        expires_at,
    })
}

impl ConnectService {
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

    /// Consume the state, exchange the code, store the grant, and connect the site the
    /// customer chose: the one the authorization named, the only one granted for the product,
    /// or — with several and none named — ask the user ([`Completed::Choose`]).
    pub async fn complete(
        &self,
        code: &Secret,
        state: &Secret,
        now: OffsetDateTime,
    ) -> Result<Completed, CompleteError> {
        let pending = self.store.consume_state(state.expose_secret(), now).await?;
        let app = self
            .apps
            .get(pending.product)
            .ok_or(CompleteError::ProductNotConfigured(pending.product))?;
        let redirect = self.config.redirect_url()?;
        let issued = oauth::exchange_code(&self.http, &self.urls, app, code, redirect)
            .await
            .map_err(classify)?;
        let resources =
            oauth::accessible_resources(&self.http, &self.urls, &issued.tokens.access_token)
                .await
                .map_err(classify)?;
        let sites = granted_sites(&resources, pending.product)?;
        if sites.is_empty() {
            return Err(CompleteError::NoSites);
        }
        let chosen: Vec<OfferedSite> = match &pending.site {
            Some(wanted) => vec![
                sites
                    .iter()
                    .find(|s| site_matches(s, wanted))
                    .cloned()
                    .ok_or(CompleteError::SiteNotGranted)?,
            ],
            None if sites.len() == 1 => sites.clone(),
            None => Vec::new(),
        };
        let grant_id = new_grant_id();
        let envelope = self
            .vault
            .seal(
                &EnvelopeContext::grant(&pending.tenant, &grant_id, pending.product),
                &issued.tokens,
            )
            .await?;
        let access_expires_at =
            now + time::Duration::seconds(i64::try_from(issued.expires_in).unwrap_or(3600));
        self.store
            .create_grant(&NewGrant {
                tenant: pending.tenant.clone(),
                id: grant_id.clone(),
                product: pending.product,
                scope: issued.scope.clone(),
                token_type: issued.token_type.clone(),
                access_expires_at,
                envelope,
                consented_at: now,
                last_refreshed_at: now,
                // Until a site is connected to it; a chooser left open is cleaned up by TTL.
                unattached_until: Some(now + UNATTACHED_LIFETIME),
            })
            .await?;
        if chosen.is_empty() {
            let selection = new_state();
            self.store
                .put_choice(
                    &selection,
                    &PendingChoice {
                        tenant: pending.tenant,
                        product: pending.product,
                        grant_id,
                        return_url: pending.return_url,
                        sites: sites.clone(),
                        expires_at: pending.expires_at,
                    },
                )
                .await?;
            return Ok(Completed::Choose(ChooseSite {
                selection,
                product: pending.product,
                sites,
                expires_at: pending.expires_at,
            }));
        }
        let connected = self
            .connect(
                &pending.tenant,
                pending.product,
                &grant_id,
                &chosen,
                pending.return_url,
                now,
            )
            .await?;
        Ok(Completed::Connected(connected))
    }

    /// The user picked on the chooser page: consume the selection (once) and connect the
    /// chosen sites, which must be among those offered.
    pub async fn choose(
        &self,
        selection: &Secret,
        chosen: &[String],
        now: OffsetDateTime,
    ) -> Result<Connected, CompleteError> {
        let choice = self
            .store
            .consume_choice(selection.expose_secret(), now)
            .await?;
        if chosen.is_empty() {
            return Err(CompleteError::NothingChosen);
        }
        let mut sites = Vec::with_capacity(chosen.len());
        for id in chosen {
            let site = choice
                .sites
                .iter()
                .find(|s| s.cloud_id == *id)
                .ok_or(CompleteError::SiteNotOffered)?;
            if !sites.contains(site) {
                sites.push(site.clone());
            }
        }
        self.connect(
            &choice.tenant,
            choice.product,
            &choice.grant_id,
            &sites,
            choice.return_url,
            now,
        )
        .await
    }

    /// Point one connection per chosen site at the grant (a site already connected for this
    /// tenant keeps its connection id), then delete grants no connection uses any more.
    async fn connect(
        &self,
        tenant: &TenantId,
        product: Product,
        grant_id: &GrantId,
        sites: &[OfferedSite],
        return_url: Option<Url>,
        now: OffsetDateTime,
    ) -> Result<Connected, CompleteError> {
        // First keep the grant (no TTL), then point connections at it: a crash in between
        // leaves an unused grant, which the keep-alive schedule deletes, never a connection
        // whose grant expires under it.
        self.store.attach_grant(tenant, grant_id).await?;
        let mut connections = Vec::with_capacity(sites.len());
        let mut superseded = Vec::new();
        for site in sites {
            let cloud_id =
                CloudId::parse(site.cloud_id.clone()).map_err(|_| CompleteError::BadSite)?;
            let site_url = Url::parse(&site.url).map_err(|_| CompleteError::BadSite)?;
            let stored = self
                .store
                .upsert_connection(&NewConnection {
                    tenant: tenant.clone(),
                    id: connection_id(tenant, product, &cloud_id),
                    product,
                    cloud_id,
                    site_url,
                    site_name: (!site.name.is_empty()).then(|| site.name.clone()),
                    grant_id: grant_id.clone(),
                    now,
                })
                .await?;
            superseded.extend(stored.previous_grant);
            connections.push(stored.connection);
        }
        superseded.sort();
        superseded.dedup();
        for old in superseded {
            if self
                .store
                .connections_of_grant(tenant, &old)
                .await?
                .is_empty()
            {
                // Its tokens are no longer needed (PRIVACY.md P9).
                self.store.delete_grant(tenant, &old).await?;
            }
        }
        Ok(Connected {
            tenant: tenant.clone(),
            product,
            grant_id: grant_id.clone(),
            connections,
            return_url,
        })
    }
}

/// The sites accessible-resources lists for `product`, once each, with usable ids and URLs.
fn granted_sites(
    resources: &[oauth::AccessibleResource],
    product: Product,
) -> Result<Vec<OfferedSite>, CompleteError> {
    let mut sites: Vec<OfferedSite> = Vec::new();
    for r in resources
        .iter()
        .filter(|r| oauth::serves_product(r, product))
    {
        CloudId::parse(r.id.clone()).map_err(|_| CompleteError::BadSite)?;
        let url = Url::parse(&r.url).map_err(|_| CompleteError::BadSite)?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(CompleteError::BadSite);
        }
        if sites.iter().any(|s| s.cloud_id == r.id) {
            continue;
        }
        sites.push(OfferedSite {
            cloud_id: r.id.clone(),
            url: r.url.clone(),
            name: r.name.chars().take(200).collect(),
        });
    }
    Ok(sites)
}

/// Whether `wanted` (as the platform gave it: a cloud id, a site URL or a bare host name)
/// names `site`.
pub fn site_matches(site: &OfferedSite, wanted: &str) -> bool {
    let wanted = wanted.trim();
    if site.cloud_id == wanted {
        return true;
    }
    let host_of = |s: &str| -> Option<String> {
        let with_scheme = if s.contains("://") {
            s.to_owned()
        } else {
            format!("https://{s}")
        };
        Url::parse(&with_scheme).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        })
    };
    match (host_of(&site.url), host_of(wanted)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
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
