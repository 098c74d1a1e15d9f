//! Newtypes for the identifiers that cross our boundaries. Each validates on construction,
//! so bad input fails at the edge with a message naming the field, never deep inside.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused. Never echoes the rejected value: it may be anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidId {
    pub field: &'static str,
    pub reason: &'static str,
}

fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), InvalidId> {
    if value.is_empty() {
        return Err(InvalidId {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > max {
        return Err(InvalidId {
            field,
            reason: "is too long",
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(InvalidId {
            field,
            reason: "may only contain ASCII letters, digits, '-', '_' and '.'",
        });
    }
    if value.starts_with('.') {
        return Err(InvalidId {
            field,
            reason: "must not start with '.'",
        });
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_token($field, &value, $max)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

token_id!(
    /// The AI platform's tenant. Every S3 key and table key starts with it, so erase and IAM
    /// scoping work by prefix; hence the strict character set.
    TenantId, "tenant", 64
);
token_id!(
    /// Our id of one connection (tenant × product × Atlassian site).
    ConnectionId, "connection_id", 64
);
token_id!(
    /// Our id of one grant: the token family one consent yields (ARCHITECTURE.md data model).
    GrantId, "grant_id", 64
);
token_id!(
    /// Our id of one connector (what to export from a connection).
    ConnectorId, "connector_id", 64
);
token_id!(
    /// Our id of one export job.
    JobId, "job_id", 64
);
token_id!(
    /// Atlassian's site identifier (a UUID in practice).
    CloudId, "cloud_id", 64
);

/// Which of the two apps a connection or connector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Jira,
    Confluence,
}

impl Product {
    pub const ALL: [Product; 2] = [Product::Jira, Product::Confluence];

    pub fn as_str(self) -> &'static str {
        match self {
            Product::Jira => "jira",
            Product::Confluence => "confluence",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Product {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jira" => Ok(Product::Jira),
            "confluence" => Ok(Product::Confluence),
            _ => Err(InvalidId {
                field: "product",
                reason: "must be \"jira\" or \"confluence\"",
            }),
        }
    }
}

/// Longest query we accept. Atlassian's own limits are larger, but a selection longer than
/// this is a mistake, and the query is kept in our table.
pub const MAX_QUERY_LEN: usize = 4096;

fn check_query(field: &'static str, value: &str) -> Result<(), InvalidId> {
    if value.trim().is_empty() {
        return Err(InvalidId {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_QUERY_LEN {
        return Err(InvalidId {
            field,
            reason: "is longer than 4096 bytes",
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(InvalidId {
            field,
            reason: "must not contain control characters",
        });
    }
    Ok(())
}

macro_rules! query_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_query($field, &value)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Query text is customer data (PRIVACY.md P7): Debug shows only its length.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} bytes>)"), self.0.len())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

query_type!(
    /// A Jira JQL selection.
    Jql, "jql"
);
query_type!(
    /// A Confluence CQL selection.
    Cql, "cql"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_accepts_simple_ids() {
        assert_eq!(
            TenantId::parse("acme-01").map(|t| t.to_string()),
            Ok("acme-01".into())
        );
    }

    #[test]
    fn tenant_id_rejects_path_tricks_and_empties() {
        for bad in ["", "a/b", "..", ".hidden", "a b", "ä", &"x".repeat(65)] {
            let err = TenantId::parse(bad).err();
            assert!(err.is_some(), "{bad:?} must be refused");
            assert_eq!(err.map(|e| e.field), Some("tenant"));
        }
    }

    #[test]
    fn error_never_echoes_the_rejected_value() {
        let err = ConnectionId::parse("secret/value")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("secret")));
    }

    #[test]
    fn product_round_trips_through_json() {
        let p: Product = serde_json::from_str("\"confluence\"").unwrap_or(Product::Jira);
        assert_eq!(p, Product::Confluence);
        assert!(serde_json::from_str::<Product>("\"bitbucket\"").is_err());
    }

    #[test]
    fn queries_must_be_non_empty_and_bounded() {
        assert!(Jql::parse("project = ALPHA").is_ok());
        assert!(Jql::parse("   ").is_err());
        assert!(Cql::parse("x".repeat(MAX_QUERY_LEN + 1)).is_err());
        assert!(Cql::parse("space = A\u{0}").is_err());
    }

    #[test]
    fn query_debug_hides_the_text() {
        let q = Jql::parse("project = SECRETPROJ").map(|q| format!("{q:?}"));
        assert_eq!(q.as_deref(), Ok("Jql(<20 bytes>)"));
    }

    #[test]
    fn ids_deserialize_with_validation() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"../x\"").is_err());
    }
}
