//! The console's secrets, each a subkey of the master key: the console
//! app's client secret, the CSRF key, and the sealing of session tokens.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

use crate::secrets::{MasterKey, MasterKeyError};

#[derive(Clone)]
pub struct ConsoleKeys {
    master: MasterKey,
    client_secret: String,
    csrf: hmac::Key,
}

impl fmt::Debug for ConsoleKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsoleKeys(***)")
    }
}

fn sealing_context(id_hash: &str) -> String {
    format!("latchkey/console-session/{id_hash}")
}

impl ConsoleKeys {
    pub fn new(master: &MasterKey) -> Self {
        ConsoleKeys {
            master: master.clone(),
            // Derived, not stored: every node computes the same secret.
            client_secret: URL_SAFE_NO_PAD.encode(master.derive("latchkey/console-client/v1")),
            csrf: hmac::Key::new(
                hmac::HMAC_SHA256,
                &master.derive("latchkey/console-csrf/v1"),
            ),
        }
    }

    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The CSRF token of a session (or of a sign-in form's nonce): an HMAC
    /// of the cookie value, so it needs no storage, differs per session,
    /// and cannot be computed without the cookie (which scripts on other
    /// origins never see).
    pub fn csrf_token(&self, purpose: &str, cookie: &str) -> String {
        let tag = hmac::sign(&self.csrf, format!("{purpose}\n{cookie}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Constant-time check of a submitted CSRF token.
    pub fn check_csrf(&self, purpose: &str, cookie: &str, given: &str) -> bool {
        let expected = self.csrf_token(purpose, cookie);
        expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    }

    /// Seals a session's tokens, bound to the session: a sealed value
    /// copied to another row does not open.
    pub fn seal(&self, id_hash: &str, plaintext: &[u8]) -> String {
        STANDARD.encode(self.master.encrypt(plaintext, &sealing_context(id_hash)))
    }

    pub fn open(&self, id_hash: &str, sealed: &str) -> Result<Vec<u8>, MasterKeyError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| MasterKeyError::Decrypt)?;
        self.master.decrypt(&bytes, &sealing_context(id_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_secret_is_derived_and_the_same_on_every_node() {
        let master = MasterKey::generate();
        let a = ConsoleKeys::new(&master);
        let b = ConsoleKeys::new(&MasterKey::from_base64(&master.to_base64()).unwrap());
        assert_eq!(a.client_secret(), b.client_secret());
        assert_eq!(a.client_secret().len(), 43);
        assert_ne!(
            a.client_secret(),
            ConsoleKeys::new(&MasterKey::generate()).client_secret()
        );
        assert_eq!(format!("{a:?}"), "ConsoleKeys(***)");
    }

    #[test]
    fn csrf_tokens_belong_to_one_cookie_and_purpose() {
        let keys = ConsoleKeys::new(&MasterKey::generate());
        let token = keys.csrf_token("session", "cookie-a");
        assert!(keys.check_csrf("session", "cookie-a", &token));
        assert!(!keys.check_csrf("session", "cookie-b", &token));
        assert!(!keys.check_csrf("sign-in", "cookie-a", &token));
        assert!(!keys.check_csrf("session", "cookie-a", ""));
        assert!(!keys.check_csrf("session", "cookie-a", &token[1..]));
        assert!(
            !ConsoleKeys::new(&MasterKey::generate()).check_csrf("session", "cookie-a", &token)
        );
    }

    #[test]
    fn sealed_tokens_open_only_for_their_session() {
        let keys = ConsoleKeys::new(&MasterKey::generate());
        let sealed = keys.seal("hash-a", b"tokens");
        assert!(!sealed.contains("tokens"));
        assert_eq!(keys.open("hash-a", &sealed).unwrap(), b"tokens");
        assert!(keys.open("hash-b", &sealed).is_err());
        assert!(keys.open("hash-a", "%%").is_err());
    }
}
