//! Secrets at rest and in flight: the master key (AES-256-GCM over the
//! signing keys), the keyed hash of client secrets, random tokens, and the
//! SHA-256 of refresh tokens.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

pub fn fill_random(buf: &mut [u8]) {
    // aws-lc's RNG only fails if the OS has no entropy source at all, in
    // which case nothing secure can be done.
    rand::fill(buf).expect("the operating system's random source failed");
}

/// 256 bits of randomness, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256, the stored form of refresh tokens (high entropy, so a plain
/// digest is enough: no salt or work factor is needed to resist guessing).
pub fn sha256_hex(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes, base64-encoded (got {0} bytes)")]
    WrongLength(usize),
    #[error("the master key is not valid base64")]
    NotBase64,
    #[error("cannot decrypt: wrong master key or corrupted data")]
    Decrypt,
}

/// The key that protects other keys at rest. 32 bytes; never logged.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        MasterKey(key)
    }

    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
            .map_err(|_| MasterKeyError::NotBase64)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::WrongLength(bytes.len()))?;
        Ok(MasterKey(key))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A subkey for one purpose, so the master key itself is used for
    /// nothing but deriving (HMAC as a PRF, as in HKDF-Expand).
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let tag = hmac::sign(&key, purpose.as_bytes());
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    fn aead(&self) -> LessSafeKey {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.derive("latchkey/at-rest/v1"))
            .expect("a 32-byte key is valid for AES-256-GCM");
        LessSafeKey::new(unbound)
    }

    /// AES-256-GCM with a random nonce; output is `nonce || ciphertext || tag`.
    /// `context` is bound as associated data (e.g. the key id), so a
    /// ciphertext cannot be moved to another row.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn decrypt(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, MasterKeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
        let mut buf = body.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// Seals a client secret for `client_secret_jwt`, bound to its client
    /// so that a sealed secret copied to another app's row does not open.
    pub fn seal_client_secret(&self, client_id: &str, secret: &str) -> String {
        STANDARD.encode(self.encrypt(secret.as_bytes(), &client_secret_context(client_id)))
    }

    pub fn open_client_secret(
        &self,
        client_id: &str,
        sealed: &str,
    ) -> Result<String, MasterKeyError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| MasterKeyError::Decrypt)?;
        let plain = self.decrypt(&bytes, &client_secret_context(client_id))?;
        String::from_utf8(plain).map_err(|_| MasterKeyError::Decrypt)
    }

    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, &self.derive("latchkey/client-secret/v1")),
        }
    }
}

fn client_secret_context(client_id: &str) -> String {
    format!("latchkey/client-secret/{client_id}")
}

/// Keyed hash of client secrets: HMAC-SHA256 under a key derived from the
/// master key. Generated secrets carry 256 bits of entropy, so a slow hash
/// buys nothing; the key means a stolen database alone cannot even test
/// guesses of weak secrets written by hand in a domain file.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

const SECRET_HASH_PREFIX: &str = "hmac-sha256$";

impl SecretHasher {
    pub fn hash(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        format!(
            "{SECRET_HASH_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Constant-time comparison of `secret` against a stored hash.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        let candidate = self.hash(secret);
        candidate.len() == stored.len() && bool::from(candidate.as_bytes().ct_eq(stored.as_bytes()))
    }
}

/// A generated client secret: 256 bits, base64url.
pub fn generate_client_secret() -> String {
    random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_binds_context() {
        let key = MasterKey::generate();
        let sealed = key.encrypt(b"private key", "kid-1");
        assert_ne!(&sealed[NONCE_LEN..], b"private key");
        assert_eq!(key.decrypt(&sealed, "kid-1").unwrap(), b"private key");
        assert_eq!(key.decrypt(&sealed, "kid-2"), Err(MasterKeyError::Decrypt));
        assert_eq!(
            MasterKey::generate().decrypt(&sealed, "kid-1"),
            Err(MasterKeyError::Decrypt)
        );
        assert_eq!(
            key.decrypt(&sealed[..5], "kid-1"),
            Err(MasterKeyError::Decrypt)
        );
    }

    #[test]
    fn sealed_client_secrets_open_only_for_their_client() {
        let key = MasterKey::generate();
        let sealed = key.seal_client_secret("app-a", "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open_client_secret("app-a", &sealed).unwrap(), "s3cret");
        assert!(key.open_client_secret("app-b", &sealed).is_err());
        assert!(key.open_client_secret("app-a", "not base64!").is_err());
        assert!(
            MasterKey::generate()
                .open_client_secret("app-a", &sealed)
                .is_err()
        );
    }

    #[test]
    fn master_key_parses_base64_of_32_bytes_only() {
        let key = MasterKey::generate();
        assert!(MasterKey::from_base64(&key.to_base64()).is_ok());
        assert_eq!(
            MasterKey::from_base64("AAAA").unwrap_err(),
            MasterKeyError::WrongLength(3)
        );
        assert_eq!(
            MasterKey::from_base64("!!").unwrap_err(),
            MasterKeyError::NotBase64
        );
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
    }

    #[test]
    fn secret_hash_is_keyed_and_verifies() {
        let a = MasterKey::generate().secret_hasher();
        let b = MasterKey::generate().secret_hasher();
        let stored = a.hash("s3cret");
        assert!(a.verify("s3cret", &stored));
        assert!(!a.verify("s3cret!", &stored));
        assert!(!b.verify("s3cret", &stored));
        assert!(!stored.contains("s3cret"));
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
