//! Token envelope encryption (PRIVACY.md P1, P2).
//!
//! Each write asks KMS for a fresh AES-256 data key (`GenerateDataKey`) under an encryption
//! context naming the tenant, the grant (the token family one consent yields) and product; the token pair is sealed locally with
//! AES-256-GCM (random 96-bit nonce, the same context as associated data), and only the
//! ciphertext and the KMS-encrypted data key are stored. Opening asks KMS to decrypt the data
//! key under the context of the record being read, so an envelope copied onto another
//! grant cannot be opened: KMS refuses the context, and AES-GCM would refuse the AAD.
//!
//! Plaintext keys and serialised tokens live in `Zeroizing` buffers and are wiped when
//! dropped; tokens are handed out only as [`Secret`]s.

pub mod migrate;
pub mod refresh;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::AwsError;
use crate::ids::{ConnectionId, GrantId, Product, TenantId};
use crate::secret::{ExposeSecret, Secret, secret};

/// Format tag stored with each envelope, so the scheme can change without guessing.
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A token pair in memory. Debug masks both.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: Secret,
    /// Present when the grant included `offline_access`.
    pub refresh_token: Option<Secret>,
}

/// What is stored: never a plaintext token or key. Debug shows sizes only.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: u8,
    /// nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes).
    pub ciphertext: Vec<u8>,
    /// The data key, encrypted by KMS under the encryption context.
    pub encrypted_key: Vec<u8>,
}

/// The record an envelope is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeOwner {
    /// A grant item (every envelope written since grants exist).
    Grant(GrantId),
    /// A connection item written before grants existed; only read, to migrate it.
    LegacyConnection(ConnectionId),
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &self.version)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("encrypted_key_len", &self.encrypted_key.len())
            .finish()
    }
}

/// Which record an envelope belongs to; bound into KMS and AES-GCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeContext {
    pub tenant: TenantId,
    pub owner: EnvelopeOwner,
    pub product: Product,
}

impl EnvelopeContext {
    pub fn grant(tenant: &TenantId, grant: &GrantId, product: Product) -> EnvelopeContext {
        EnvelopeContext {
            tenant: tenant.clone(),
            owner: EnvelopeOwner::Grant(grant.clone()),
            product,
        }
    }

    fn pairs(&self) -> [(&'static str, &str); 4] {
        let owner = match &self.owner {
            EnvelopeOwner::Grant(g) => ("grant", g.as_str()),
            EnvelopeOwner::LegacyConnection(c) => ("connection", c.as_str()),
        };
        [
            ("purpose", "atlassian-oauth-tokens"),
            ("tenant", self.tenant.as_str()),
            owner,
            ("product", self.product.as_str()),
        ]
    }

    /// Canonical bytes for the AES-GCM associated data.
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::new();
        for (k, v) in self.pairs() {
            aad.extend_from_slice(k.as_bytes());
            aad.push(b'=');
            aad.extend_from_slice(v.as_bytes());
            aad.push(0);
        }
        aad
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Kms(#[from] AwsError),
    /// The envelope does not belong to this record, or was altered.
    #[error("token envelope does not match its connection or was altered")]
    Mismatch,
    #[error("token envelope is malformed: {0}")]
    Malformed(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    #[serde(rename = "a")]
    access: &'a str,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    refresh: Option<&'a str>,
}

/// Seals and opens token envelopes with one KMS key.
#[derive(Debug, Clone)]
pub struct Vault {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl Vault {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Vault {
        Vault {
            kms,
            key_id: key_id.into(),
        }
    }

    pub async fn seal(
        &self,
        ctx: &EnvelopeContext,
        tokens: &TokenPair,
    ) -> Result<Envelope, VaultError> {
        let mut req = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in ctx.pairs() {
            req = req.encryption_context(k, v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| AwsError::new("kms:GenerateDataKey", &e))?;
        let key = Zeroizing::new(
            out.plaintext
                .map(Blob::into_inner)
                .ok_or(VaultError::Malformed("KMS returned no data key"))?,
        );
        let encrypted_key = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(VaultError::Malformed("KMS returned no encrypted data key"))?;

        let plaintext = Zeroizing::new(
            serde_json::to_vec(&Sealed {
                access: tokens.access_token.expose_secret(),
                refresh: tokens.refresh_token.as_ref().map(|s| s.expose_secret()),
            })
            .map_err(|_| VaultError::Malformed("tokens could not be serialised"))?,
        );
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| VaultError::Malformed("data key is not 256 bits"))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = ctx.aad();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Malformed("encryption failed"))?;
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + sealed.len());
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&sealed);
        Ok(Envelope {
            version: ENVELOPE_VERSION,
            ciphertext,
            encrypted_key,
        })
    }

    pub async fn open(
        &self,
        ctx: &EnvelopeContext,
        envelope: &Envelope,
    ) -> Result<TokenPair, VaultError> {
        if envelope.version != ENVELOPE_VERSION {
            return Err(VaultError::Malformed("unknown envelope version"));
        }
        if envelope.ciphertext.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed("ciphertext too short"));
        }
        let mut req = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(envelope.encrypted_key.clone()));
        for (k, v) in ctx.pairs() {
            req = req.encryption_context(k, v);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let err = AwsError::new("kms:Decrypt", &e);
                return Err(
                    if err.is_code("InvalidCiphertextException")
                        || err.is_code("IncorrectKeyException")
                    {
                        VaultError::Mismatch
                    } else {
                        VaultError::Kms(err)
                    },
                );
            }
        };
        let key = Zeroizing::new(
            out.plaintext
                .map(Blob::into_inner)
                .ok_or(VaultError::Malformed("KMS returned no key"))?,
        );
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| VaultError::Malformed("data key is not 256 bits"))?;
        let (nonce, sealed) = envelope.ciphertext.split_at(NONCE_LEN);
        let aad = ctx.aad();
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| VaultError::Mismatch)?,
        );
        let parsed: Sealed<'_> = serde_json::from_slice(&plaintext)
            .map_err(|_| VaultError::Malformed("sealed tokens unreadable"))?;
        Ok(TokenPair {
            access_token: secret(parsed.access),
            refresh_token: parsed.refresh.map(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(grant: &str) -> EnvelopeContext {
        EnvelopeContext::grant(
            &TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}")),
            &GrantId::parse(grant).unwrap_or_else(|e| panic!("{e}")),
            Product::Jira,
        )
    }

    #[test]
    fn a_legacy_connection_context_differs_from_a_grant_of_the_same_id() {
        let mut legacy = ctx("c1");
        legacy.owner = EnvelopeOwner::LegacyConnection(
            ConnectionId::parse("c1").unwrap_or_else(|e| panic!("{e}")),
        );
        assert_ne!(ctx("c1").aad(), legacy.aad());
    }

    #[test]
    fn envelope_debug_shows_no_bytes() {
        let e = Envelope {
            version: 1,
            ciphertext: vec![0xAB; 40],
            encrypted_key: vec![0xCD; 8],
        };
        let shown = format!("{e:?}");
        assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
        assert!(shown.contains("ciphertext_len: 40"));
    }

    #[test]
    fn aad_differs_per_grant_and_product() {
        assert_ne!(ctx("c1").aad(), ctx("c2").aad());
        let mut other = ctx("c1");
        other.product = Product::Confluence;
        assert_ne!(ctx("c1").aad(), other.aad());
    }

    #[test]
    fn aad_is_unambiguous() {
        // "a" + "b=c" must not collide with "a=b" + "c": separators are NUL, which ids exclude.
        let a = ctx("ab");
        assert!(a.aad().contains(&0));
    }
}
