//! What a refused sign-in is recorded under when the username names no
//! user: whatever was typed (a typo, another system's name, a password
//! typed in the wrong field) must not be readable in the audit trail. It
//! is kept as a keyed hash (HMAC-SHA256 under a key derived from the
//! master key), so repeated attempts on one name still group together,
//! and someone who knows a name can find its events (`latchkey audit
//! --unknown-user NAME`), but the trail cannot be read back, nor guesses
//! tested offline from the database alone.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secrets::MasterKey;

/// The prefix of an unknown username's keyed hash in the audit trail.
pub const UNKNOWN_USER_PREFIX: &str = "unknown-user:";

#[derive(Clone)]
pub struct AuditNames {
    key: hmac::Key,
}

impl std::fmt::Debug for AuditNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditNames(***)")
    }
}

impl AuditNames {
    pub fn new(master: &MasterKey) -> Self {
        AuditNames {
            key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &master.derive("latchkey/audit-username/v1"),
            ),
        }
    }

    /// The audit subject of a username that names no user. Case is
    /// ignored, as usernames ignore it.
    pub fn unknown(&self, username: &str) -> String {
        let tag = hmac::sign(&self.key, username.to_lowercase().as_bytes());
        // 128 bits: plenty to tell names apart, short in a table.
        format!(
            "{UNKNOWN_USER_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_keyed_hashes_that_ignore_case() {
        let master = MasterKey::generate();
        let names = AuditNames::new(&master);
        let typed = "hunter2-typed-as-a-username";
        let subject = names.unknown(typed);
        assert!(subject.starts_with(UNKNOWN_USER_PREFIX));
        assert!(!subject.contains("hunter2"));
        assert_eq!(subject, names.unknown(&typed.to_uppercase()));
        assert_ne!(subject, names.unknown("another"));
        assert_ne!(
            subject,
            AuditNames::new(&MasterKey::generate()).unknown(typed),
            "another master key, another hash"
        );
    }
}
