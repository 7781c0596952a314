//! Which passwords may be set (NIST SP 800-63B §5.1.1.2): a minimum and a
//! maximum length, counted in Unicode characters, no composition rules,
//! and none of the 100,000 most common breached passwords. Enforced whenever a password is set, never at sign-in (a user
//! whose old password predates the policy can still sign in).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Refuse passwords on the built-in breached list (`crate::breached`).
    pub reject_breached: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: 256,
            reject_breached: true,
        }
    }
}

impl PasswordPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if self.min_length == 0 || self.max_length < 64 || self.min_length > self.max_length {
            return Err("min_length must be at least 1, max_length at least 64 (NIST SP 800-63B) and not below min_length".into());
        }
        Ok(())
    }

    /// Why `password` may not be set, if it may not.
    pub fn check(&self, password: &str) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        if length > self.max_length {
            return Err(format!("must be at most {} characters", self.max_length));
        }
        if self.reject_breached && crate::breached::is_breached(password) {
            return Err("is one of the most common breached passwords; choose another".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_in_characters_not_bytes_and_no_composition_rules() {
        let p = PasswordPolicy::default();
        assert!(p.check("short").is_err());
        assert!(p.check("alllowercase").is_ok(), "no composition rules");
        assert!(p.check("ééééééé").is_err(), "7 characters, 14 bytes");
        assert!(p.check("éééééééé").is_ok());
        assert!(p.check(&"x".repeat(256)).is_ok());
        assert!(p.check(&"x".repeat(257)).is_err());
        assert!(
            PasswordPolicy {
                min_length: 8,
                max_length: 32,
                reject_breached: true,
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn breached_passwords_are_refused_unless_disabled() {
        let p = PasswordPolicy::default();
        let err = p.check("password1").unwrap_err();
        assert!(err.contains("breached"), "{err}");
        assert!(p.check("Iloveyou1").is_err(), "case-insensitive");
        let lax = PasswordPolicy {
            reject_breached: false,
            ..p
        };
        assert!(lax.check("password1").is_ok());
    }
}
