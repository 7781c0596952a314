//! One signing key: its algorithm, the parsed private key that signs,
//! and its public JWK (RFC 7517) named by its RFC 7638 thumbprint.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RS256 with a 2048-bit key.
    Rs256,
    /// RS256 with a 3072-bit key (NIST's choice for use beyond 2030).
    Rs256Bits3072,
    Es256,
    EdDsa,
}

impl KeyAlgorithm {
    /// The name in configuration and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rs256 => "RS256",
            KeyAlgorithm::Rs256Bits3072 => "RS256-3072",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The JWS `alg` (RFC 7518).
    pub fn jws_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rs256 | KeyAlgorithm::Rs256Bits3072 => "RS256",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "RS256" | "RS256-2048" => Ok(KeyAlgorithm::Rs256),
            "RS256-3072" => Ok(KeyAlgorithm::Rs256Bits3072),
            "ES256" => Ok(KeyAlgorithm::Es256),
            "EDDSA" => Ok(KeyAlgorithm::EdDsa),
            _ => Err(format!(
                "unsupported signing algorithm {s:?} (expected RS256, RS256-3072, ES256 or EdDSA)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("signing failed")]
    Sign,
    #[error("no active signing key")]
    NoActiveKey,
    #[error(
        "key {kid} is already published and signs from {when}; \
         rotate again after that, or use the emergency path (`latchkey keys rotate --now`)",
        when = crate::scim::time::format_datetime(*.activates_at)
    )]
    AlreadyStaged { kid: String, activates_at: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed private key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: KeyAlgorithm,
    signer: Signer,
    public_jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 v1 encoding (to encrypt
    /// and store).
    pub fn generate(alg: KeyAlgorithm) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let pkcs8 = match alg {
            KeyAlgorithm::Rs256 | KeyAlgorithm::Rs256Bits3072 => {
                let size = if alg == KeyAlgorithm::Rs256 {
                    aws_lc_rs::rsa::KeySize::Rsa2048
                } else {
                    aws_lc_rs::rsa::KeySize::Rsa3072
                };
                let kp = RsaKeyPair::generate(size).map_err(|_| KeyError::Generate)?;
                let der: Pkcs8V1Der = kp.as_der().map_err(|_| KeyError::Generate)?;
                der.as_ref().to_vec()
            }
            KeyAlgorithm::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|kp| kp.to_pkcs8v1())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
            KeyAlgorithm::EdDsa => Ed25519KeyPair::generate()
                .and_then(|kp| kp.to_pkcs8v1())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(None, alg, &pkcs8).map_err(|_| KeyError::Generate)?;
        Ok((key, pkcs8))
    }

    /// Parses a PKCS#8 key. Without a `kid`, the RFC 7638 thumbprint of the
    /// public key becomes the kid.
    pub fn from_pkcs8(
        kid: Option<&str>,
        alg: KeyAlgorithm,
        der: &[u8],
    ) -> Result<SigningKey, String> {
        let (signer, mut jwk) = match alg {
            KeyAlgorithm::Rs256 | KeyAlgorithm::Rs256Bits3072 => {
                let kp = RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let public = kp.public_key();
                let jwk = json!({
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                });
                (Signer::Rsa(kp), jwk)
            }
            KeyAlgorithm::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| e.to_string())?;
                // Uncompressed point: 0x04 || X (32) || Y (32).
                let point = kp.public_key().as_ref();
                if point.len() != 65 {
                    return Err("unexpected P-256 public key encoding".into());
                }
                let jwk = json!({"crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (Signer::Ec(kp), jwk)
            }
            KeyAlgorithm::EdDsa => {
                let kp =
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| e.to_string())?;
                let jwk =
                    json!({"crv": "Ed25519", "kty": "OKP", "x": b64(kp.public_key().as_ref())});
                (Signer::Ed(kp), jwk)
            }
        };
        let kid = kid.map(str::to_owned).unwrap_or_else(|| thumbprint(&jwk));
        let obj = jwk.as_object_mut().expect("built as an object");
        obj.insert("kid".into(), Value::String(kid.clone()));
        obj.insert("alg".into(), Value::String(alg.jws_name().into()));
        obj.insert("use".into(), Value::String("sig".into()));
        Ok(SigningKey {
            kid,
            alg,
            signer,
            public_jwk: jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS with header `{alg, kid, typ}`.
    pub fn sign_jwt<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, KeyError> {
        let header = json!({"alg": self.alg.jws_name(), "kid": self.kid, "typ": typ});
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut message = b64(&header);
        message.push('.');
        message.push_str(&b64(&claims));
        let signature = match &self.signer {
            Signer::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| KeyError::Sign)?;
                sig
            }
            Signer::Ec(kp) => kp
                .sign(&SystemRandom::new(), message.as_bytes())
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec(),
            Signer::Ed(kp) => kp.sign(message.as_bytes()).as_ref().to_vec(),
        };
        message.push('.');
        message.push_str(&b64(&signature));
        Ok(message)
    }
}

/// RFC 7638 JWK thumbprint (SHA-256) of the required public members.
fn thumbprint(jwk: &Value) -> String {
    // serde_json's map is ordered by key, which is exactly the
    // lexicographic order RFC 7638 asks for; the JWK holds only the
    // required members at this point.
    let canonical = serde_json::to_string(jwk).expect("JSON values serialise");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    b64(digest.as_ref())
}
