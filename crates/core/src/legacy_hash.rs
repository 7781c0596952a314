//! Password hashes imported from other systems, verified so their users
//! sign in without a reset, then upgraded to argon2id (the caller rehashes
//! on success). Formats:
//!
//! - bcrypt: `$2a$`, `$2b$`, `$2y$`;
//! - PBKDF2: Django `pbkdf2_sha256$ITER$SALT$HASH`, PHC
//!   `$pbkdf2-sha256$i=ITER,l=LEN$SALT$HASH` (also sha512), passlib
//!   `$pbkdf2-sha256$ITER$SALT$HASH`, and Keycloak's exported credential
//!   (the JSON with `secretData` and `credentialData`);
//! - scrypt: PHC `$scrypt$ln=N,r=R,p=P$SALT$HASH`.
//!
//! Work factors are capped, so an imported hash cannot make a worker spin
//! or allocate without bound.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::Value;

const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_BCRYPT_COST: u32 = 17;
/// 2^20 × 128 × r(8) = 1 GiB.
const MAX_SCRYPT_LOG_N: u8 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegacyHash {
    Bcrypt(String),
    Pbkdf2 {
        digest: Digest,
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

fn b64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    STANDARD_NO_PAD.decode(trimmed).ok()
}

/// passlib's "adapted base64": `.` for `+`, no padding.
fn ab64(text: &str) -> Option<Vec<u8>> {
    b64(&text.replace('.', "+"))
}

fn iterations(value: u64) -> Option<NonZeroU32> {
    u32::try_from(value)
        .ok()
        .filter(|i| *i <= MAX_PBKDF2_ITERATIONS)
        .and_then(NonZeroU32::new)
}

fn digest_named(name: &str) -> Option<Digest> {
    match name {
        "sha1" | "pbkdf2" | "pbkdf2-sha1" => Some(Digest::Sha1),
        "sha256" | "pbkdf2-sha256" => Some(Digest::Sha256),
        "sha512" | "pbkdf2-sha512" => Some(Digest::Sha512),
        _ => None,
    }
}

impl LegacyHash {
    pub(crate) fn parse(stored: &str) -> Option<LegacyHash> {
        let stored = stored.trim();
        if stored.starts_with('{') {
            return Self::keycloak(stored);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            // Django: the salt is used as text, the hash is base64.
            let mut parts = rest.split('$');
            let (iter, salt, hash) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            return Some(LegacyHash::Pbkdf2 {
                digest: Digest::Sha256,
                iterations: iterations(iter.parse().ok()?)?,
                salt: salt.as_bytes().to_vec(),
                hash: STANDARD.decode(hash).ok().filter(|h| !h.is_empty())?,
            });
        }
        let fields: Vec<&str> = stored.split('$').collect();
        match fields.as_slice() {
            ["", v, cost, salt_and_hash] if matches!(*v, "2a" | "2b" | "2y") => {
                let cost: u32 = cost.parse().ok()?;
                // 22 characters of salt and 31 of hash, in bcrypt's base64.
                let well_formed = salt_and_hash.len() == 53
                    && salt_and_hash
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
                (well_formed && (4..=MAX_BCRYPT_COST).contains(&cost))
                    .then(|| LegacyHash::Bcrypt(stored.to_owned()))
            }
            ["", alg, params, salt, hash] if alg.starts_with("pbkdf2-") => {
                let digest = digest_named(alg)?;
                let (iter, salt, hash) = if let Ok(rounds) = params.parse::<u64>() {
                    (rounds, ab64(salt)?, ab64(hash)?)
                } else {
                    let mut iter = None;
                    for pair in params.split(',') {
                        match pair.split_once('=')? {
                            ("i", v) => iter = Some(v.parse::<u64>().ok()?),
                            ("l", _) => {}
                            _ => return None,
                        }
                    }
                    (iter?, b64(salt)?, b64(hash)?)
                };
                (!hash.is_empty()).then_some(())?;
                Some(LegacyHash::Pbkdf2 {
                    digest,
                    iterations: iterations(iter)?,
                    salt,
                    hash,
                })
            }
            ["", "scrypt", params, salt, hash] => {
                let (mut log_n, mut r, mut p) = (None, None, None);
                for pair in params.split(',') {
                    match pair.split_once('=')? {
                        ("ln", v) => log_n = Some(v.parse::<u8>().ok()?),
                        ("r", v) => r = Some(v.parse::<u32>().ok()?),
                        ("p", v) => p = Some(v.parse::<u32>().ok()?),
                        _ => return None,
                    }
                }
                let (log_n, r, p) = (log_n?, r?, p?);
                if log_n > MAX_SCRYPT_LOG_N || r == 0 || r > 32 || p == 0 || p > 16 {
                    return None;
                }
                scrypt::Params::new(log_n, r, p).ok()?;
                let hash = b64(hash).filter(|h| !h.is_empty() && h.len() <= 64)?;
                Some(LegacyHash::Scrypt {
                    log_n,
                    r,
                    p,
                    salt: b64(salt)?,
                    hash,
                })
            }
            _ => None,
        }
    }

    /// Keycloak's exported password credential: `secretData` holds the
    /// base64 `value` and `salt`, `credentialData` the `algorithm` and
    /// `hashIterations` (each either a JSON string or an object).
    fn keycloak(text: &str) -> Option<LegacyHash> {
        let credential: Value = serde_json::from_str(text).ok()?;
        let part = |name: &str| -> Option<Value> {
            match credential.get(name)? {
                Value::String(inner) => serde_json::from_str(inner).ok(),
                other => Some(other.clone()),
            }
        };
        let (secret, data) = (part("secretData")?, part("credentialData")?);
        Some(LegacyHash::Pbkdf2 {
            digest: digest_named(data.get("algorithm")?.as_str()?)?,
            iterations: iterations(data.get("hashIterations")?.as_u64()?)?,
            salt: STANDARD.decode(secret.get("salt")?.as_str()?).ok()?,
            hash: STANDARD
                .decode(secret.get("value")?.as_str()?)
                .ok()
                .filter(|h| !h.is_empty())?,
        })
    }

    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            LegacyHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            LegacyHash::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let algorithm = match digest {
                    Digest::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
                    Digest::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
                    Digest::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
                };
                // Constant-time comparison inside.
                pbkdf2::verify(algorithm, *iterations, salt, password, hash).is_ok()
            }
            LegacyHash::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(password, salt, &params, &mut out).is_ok()
                    && bool::from(subtle::ConstantTimeEq::ct_eq(
                        out.as_slice(),
                        hash.as_slice(),
                    ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pbkdf2_b64(
        digest: pbkdf2::Algorithm,
        iter: u32,
        salt: &[u8],
        password: &str,
        len: usize,
    ) -> String {
        let mut out = vec![0u8; len];
        pbkdf2::derive(
            digest,
            NonZeroU32::new(iter).unwrap(),
            salt,
            password.as_bytes(),
            &mut out,
        );
        STANDARD.encode(out)
    }

    fn check(stored: &str, password: &str) {
        let parsed = LegacyHash::parse(stored).unwrap_or_else(|| panic!("{stored} should parse"));
        assert!(parsed.verify(password.as_bytes()), "{stored}");
        assert!(!parsed.verify(b"wrong password"), "{stored}");
    }

    #[test]
    fn bcrypt_variants() {
        let hash = bcrypt::hash("hunter2", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            check(&hash.replacen("$2b$", prefix, 1), "hunter2");
        }
        assert!(
            LegacyHash::parse(&hash.replacen("$04$", "$31$", 1)).is_none(),
            "cost capped"
        );
    }

    #[test]
    fn django_pbkdf2() {
        // Computed independently with Python's hashlib.pbkdf2_hmac.
        check(
            "pbkdf2_sha256$10000$qLDpxFvgXrHh$WERlhAyD/63uHxUsQ5PRF3i1LWsKgr9+sPLVgf3c/nc=",
            "lètmein",
        );
        let hash = pbkdf2_b64(pbkdf2::PBKDF2_HMAC_SHA256, 1000, b"seasalt", "secret", 32);
        check(&format!("pbkdf2_sha256$1000$seasalt${hash}"), "secret");
    }

    #[test]
    fn phc_and_passlib_pbkdf2() {
        let salt = b"0123456789abcdef";
        let hash = pbkdf2_b64(pbkdf2::PBKDF2_HMAC_SHA256, 1000, salt, "secret", 32);
        let (s, h) = (STANDARD_NO_PAD.encode(salt), hash.trim_end_matches('='));
        check(&format!("$pbkdf2-sha256$i=1000,l=32${s}${h}"), "secret");
        check(
            &format!(
                "$pbkdf2-sha256$1000${}${}",
                s.replace('+', "."),
                h.replace('+', ".")
            ),
            "secret",
        );
        let hash512 = pbkdf2_b64(pbkdf2::PBKDF2_HMAC_SHA512, 1000, salt, "secret", 64);
        check(
            &format!(
                "$pbkdf2-sha512$i=1000,l=64${s}${}",
                hash512.trim_end_matches('=')
            ),
            "secret",
        );
    }

    #[test]
    fn keycloak_credential() {
        let salt = b"keycloak-salt-16";
        for (alg, digest, len) in [
            ("pbkdf2-sha256", pbkdf2::PBKDF2_HMAC_SHA256, 32),
            ("pbkdf2-sha512", pbkdf2::PBKDF2_HMAC_SHA512, 64),
        ] {
            let value = pbkdf2_b64(digest, 27500, salt, "kc-pass", len);
            let secret = serde_json::json!({"value": value, "salt": STANDARD.encode(salt), "additionalParameters": {}}).to_string();
            let data = serde_json::json!({"hashIterations": 27500, "algorithm": alg, "additionalParameters": {}}).to_string();
            let exported = serde_json::json!({"type": "password", "secretData": secret, "credentialData": data}).to_string();
            check(&exported, "kc-pass");
        }
    }

    #[test]
    fn scrypt_phc() {
        // Computed independently with Python's hashlib.scrypt.
        check(
            "$scrypt$ln=10,r=8,p=1$TmFDbC1zYWx0LTE2Ynl0ZQ$gkjuJFs/EcPBaq4PINEJDtMUKZqNDASRkiG2Vv24NBg",
            "correct horse",
        );
        let salt = b"scrypt-salt-0123";
        let mut out = [0u8; 32];
        scrypt::scrypt(
            b"s-pass",
            salt,
            &scrypt::Params::new(10, 8, 1).unwrap(),
            &mut out,
        )
        .unwrap();
        let stored = format!(
            "$scrypt$ln=10,r=8,p=1${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        );
        check(&stored, "s-pass");
        assert!(
            LegacyHash::parse("$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaA").is_none(),
            "memory capped"
        );
    }

    #[test]
    fn unknown_formats_are_refused() {
        for bad in [
            "",
            "plain",
            "$1$md5$hash",
            "{}",
            "{\"secretData\":1}",
            "pbkdf2_sha256$x$s$h",
            "$pbkdf2-md5$i=1$c2FsdA$aGFzaA",
            "$pbkdf2-sha256$i=0$c2FsdA$aGFzaA",
        ] {
            assert!(LegacyHash::parse(bad).is_none(), "{bad}");
        }
    }
}
