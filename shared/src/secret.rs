//! Values that must never be printed: tokens, codes, client secrets, data keys.
//!
//! [`Secret`] is `secrecy::SecretString`: its `Debug` prints a mask and it has no `Display`,
//! so a secret can only reach a log line or an error message through an explicit
//! [`ExposeSecret::expose_secret`] call, which is easy to find in review.

pub use secrecy::{ExposeSecret, SecretString as Secret};

/// Build a [`Secret`] from anything string-like.
pub fn secret(value: impl Into<String>) -> Secret {
    Secret::from(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_secret_never_shows_the_value() {
        let s = secret("atl-refresh-token-value-123");
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("atl-refresh-token-value-123"),
            "{printed}"
        );
        assert!(!printed.contains("123"), "{printed}");
    }

    #[test]
    fn expose_gives_the_value_back() {
        assert_eq!(secret("v").expose_secret(), "v");
    }
}
