//! The public keys a trusted app registers for `private_key_jwt`: a JWKS,
//! or one PEM certificate or public key. Parsed and checked when written
//! (so a bad key fails `apply`, naming the field) and again when an
//! assertion arrives, where the assertion's header picks the key.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use simple_asn1::ASN1Block;

/// Registering more than this many keys is a mistake, not a rotation.
const MAX_KEYS: usize = 20;
/// RSA moduli below this many bits are refused (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// What kind of key, and so which `alg` values it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyKind::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyKind::P256, ES256)
                | (KeyKind::P384, ES384)
                | (KeyKind::Ed25519, EdDSA)
        )
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// One registered public key.
pub struct ClientKey {
    pub kid: Option<String>,
    /// base64url SHA-1 / SHA-256 of the certificate (RFC 7515 §4.1.7-8).
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    pub kind: KeyKind,
    pub key: DecodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("x5t", &self.x5t)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What an assertion's header says about its key.
#[derive(Debug, Default)]
pub struct KeyHint<'a> {
    pub kid: Option<&'a str>,
    pub x5t: Option<&'a str>,
    pub x5t_s256: Option<&'a str>,
}

/// Every key of one app.
pub struct ClientKeys(Vec<ClientKey>);

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    x5c: Option<Vec<String>>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
    // Private members: present means someone pasted a private key.
    d: Option<serde_json::Value>,
    k: Option<serde_json::Value>,
}

fn thumbprints(der: &[u8]) -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)),
    )
}

fn b64url(value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| "is not base64url".to_owned())
}

fn rsa_bits(modulus: &[u8]) -> usize {
    let significant = modulus.iter().skip_while(|&&b| b == 0).count();
    significant * 8
}

impl ClientKeys {
    pub fn keys(&self) -> &[ClientKey] {
        &self.0
    }

    /// Parses a JWK Set (RFC 7517 §5) of public signing keys.
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let set: RawSet = serde_json::from_str(text)
            .map_err(|_| "must be a JSON Web Key Set: {\"keys\":[…]}".to_owned())?;
        if set.keys.is_empty() {
            return Err("must hold at least one key".into());
        }
        if set.keys.len() > MAX_KEYS {
            return Err(format!("holds more than {MAX_KEYS} keys"));
        }
        let mut keys: Vec<ClientKey> = Vec::new();
        for (i, value) in set.keys.into_iter().enumerate() {
            let key = parse_jwk(value).map_err(|m| format!("keys[{i}]: {m}"))?;
            if let Some(kid) = &key.kid
                && keys.iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(format!("keys[{i}]: another key has kid {kid:?}"));
            }
            keys.push(key);
        }
        Ok(ClientKeys(keys))
    }

    /// Parses one PEM block: a `CERTIFICATE`, a `PUBLIC KEY` (SPKI), or an
    /// `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let block = pem::parse(text.trim())
            .map_err(|_| "must be a PEM certificate or public key".to_owned())?;
        let key = match block.tag() {
            "CERTIFICATE" => {
                let (kind, key) = certificate_key(block.contents())?;
                let (x5t, x5t_s256) = thumbprints(block.contents());
                ClientKey {
                    kid: None,
                    x5t: Some(x5t),
                    x5t_s256: Some(x5t_s256),
                    alg: None,
                    kind,
                    key,
                }
            }
            "PUBLIC KEY" => {
                let blocks = simple_asn1::from_der(block.contents())
                    .map_err(|_| "the public key is not valid DER".to_owned())?;
                let (kind, key) = spki_key(blocks.first())?;
                ClientKey {
                    kid: None,
                    x5t: None,
                    x5t_s256: None,
                    alg: None,
                    kind,
                    key,
                }
            }
            "RSA PUBLIC KEY" => {
                check_rsa_pkcs1(block.contents())?;
                ClientKey {
                    kid: None,
                    x5t: None,
                    x5t_s256: None,
                    alg: None,
                    kind: KeyKind::Rsa,
                    key: DecodingKey::from_rsa_der(block.contents()),
                }
            }
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                return Err("is a private key: register the certificate or public key only".into());
            }
            other => {
                return Err(format!(
                    "holds a {other:?} block; expected CERTIFICATE or PUBLIC KEY"
                ));
            }
        };
        Ok(ClientKeys(vec![key]))
    }

    /// The key an assertion signed with `alg` names. With neither `kid`
    /// nor a thumbprint, the one key that can verify `alg`.
    pub fn select(&self, hint: &KeyHint<'_>, alg: Algorithm) -> Result<&ClientKey, String> {
        let named: Vec<&ClientKey> = if let Some(kid) = hint.kid {
            // A certificate carries no kid: it is picked by thumbprint, or
            // as the only key (Oracle puts its alias in kid).
            let by_kid: Vec<&ClientKey> = self
                .0
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if by_kid.is_empty() && self.0.iter().any(|k| k.kid.is_some()) {
                return Err(format!("no registered key has kid {kid:?}"));
            }
            if by_kid.is_empty() {
                self.0.iter().collect()
            } else {
                by_kid
            }
        } else {
            self.0.iter().collect()
        };
        let named: Vec<&ClientKey> = named
            .into_iter()
            .filter(|k| match (hint.x5t_s256, &k.x5t_s256) {
                (Some(wanted), Some(have)) => wanted == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .filter(|k| match (hint.x5t, &k.x5t) {
                (Some(wanted), Some(have)) => wanted == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if named.is_empty() {
            return Err("no registered key matches the assertion's x5t / x5t#S256".into());
        }
        let usable: Vec<&ClientKey> = named
            .iter()
            .copied()
            .filter(|k| k.kind.verifies(alg) && k.alg.is_none_or(|a| a == alg))
            .collect();
        match usable.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "the registered {} key cannot verify alg {alg:?}",
                named[0].kind.name()
            )),
            _ => Err(format!(
                "{} registered keys could verify alg {alg:?}: name one with kid",
                usable.len()
            )),
        }
    }
}

fn parse_jwk(value: serde_json::Value) -> Result<ClientKey, String> {
    let raw: RawJwk =
        serde_json::from_value(value).map_err(|e| format!("is not a valid JWK: {e}"))?;
    if raw.d.is_some() || raw.k.is_some() {
        return Err(
            "holds private or symmetric key material (d or k): register public keys only; HMAC assertions use client_secret_jwt".into(),
        );
    }
    if let Some(key_use) = &raw.key_use
        && key_use != "sig"
    {
        return Err(format!(
            "has use {key_use:?}; only signing keys (sig) are used"
        ));
    }
    let field =
        |name: &str, value: &Option<String>| value.clone().ok_or_else(|| format!("has no {name}"));
    let (kind, key) = match raw.kty.as_deref() {
        Some("RSA") => {
            let n = field("n", &raw.n)?;
            let e = field("e", &raw.e)?;
            let bits = rsa_bits(&b64url(&n).map_err(|m| format!("n {m}"))?);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
                ));
            }
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
            (KeyKind::Rsa, key)
        }
        Some("EC") => {
            let kind = match raw.crv.as_deref() {
                Some("P-256") => KeyKind::P256,
                Some("P-384") => KeyKind::P384,
                other => {
                    return Err(format!(
                        "has curve {other:?}; supported are P-256 and P-384"
                    ));
                }
            };
            let x = field("x", &raw.x)?;
            let y = field("y", &raw.y)?;
            let size = if kind == KeyKind::P256 { 32 } else { 48 };
            if b64url(&x)?.len() != size || b64url(&y)?.len() != size {
                return Err("has coordinates of the wrong length for its curve".into());
            }
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
            (kind, key)
        }
        Some("OKP") => {
            if raw.crv.as_deref() != Some("Ed25519") {
                return Err(format!(
                    "has curve {:?}; the supported OKP curve is Ed25519",
                    raw.crv
                ));
            }
            let x = field("x", &raw.x)?;
            if b64url(&x)?.len() != 32 {
                return Err("has an Ed25519 key of the wrong length".into());
            }
            let key = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
            (KeyKind::Ed25519, key)
        }
        Some("oct") => {
            return Err(
                "is a symmetric (oct) key: register public keys only; HMAC assertions use client_secret_jwt".into(),
            );
        }
        other => return Err(format!("has unsupported kty {other:?}")),
    };
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => {
            let alg: Algorithm = name
                .parse()
                .map_err(|_| format!("has unsupported alg {name:?}"))?;
            if !kind.verifies(alg) {
                return Err(format!("is a {} key but names alg {name}", kind.name()));
            }
            Some(alg)
        }
    };
    // Thumbprints: as given, or computed from the first certificate.
    let (mut x5t, mut x5t_s256) = (raw.x5t, raw.x5t_s256);
    if let Some(first) = raw.x5c.as_ref().and_then(|c| c.first()) {
        let der = STANDARD
            .decode(first)
            .map_err(|_| "has an x5c entry that is not base64".to_owned())?;
        let (sha1, sha256) = thumbprints(&der);
        x5t.get_or_insert(sha1);
        x5t_s256.get_or_insert(sha256);
    }
    Ok(ClientKey {
        kid: raw.kid,
        x5t,
        x5t_s256,
        alg,
        kind,
        key,
    })
}

fn oid_of(block: &ASN1Block) -> Option<Vec<u64>> {
    match block {
        ASN1Block::ObjectIdentifier(_, oid) => oid.as_vec::<u64>().ok(),
        _ => None,
    }
}

const OID_RSA: &[u64] = &[1, 2, 840, 113_549, 1, 1, 1];
const OID_EC: &[u64] = &[1, 2, 840, 10_045, 2, 1];
const OID_P256: &[u64] = &[1, 2, 840, 10_045, 3, 1, 7];
const OID_P384: &[u64] = &[1, 3, 132, 0, 34];
const OID_ED25519: &[u64] = &[1, 3, 101, 112];

/// The key of a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
fn spki_key(block: Option<&ASN1Block>) -> Result<(KeyKind, DecodingKey), String> {
    let malformed = || "the public key is not a SubjectPublicKeyInfo".to_owned();
    let Some(ASN1Block::Sequence(_, parts)) = block else {
        return Err(malformed());
    };
    let [
        ASN1Block::Sequence(_, algorithm),
        ASN1Block::BitString(_, _, bits),
    ] = parts.as_slice()
    else {
        return Err(malformed());
    };
    let oid = algorithm.first().and_then(oid_of).ok_or_else(malformed)?;
    let param = algorithm.get(1).and_then(oid_of);
    match (oid.as_slice(), param.as_deref()) {
        (OID_RSA, _) => {
            check_rsa_pkcs1(bits)?;
            Ok((KeyKind::Rsa, DecodingKey::from_rsa_der(bits)))
        }
        (OID_EC, Some(OID_P256)) => Ok((KeyKind::P256, DecodingKey::from_ec_der(bits))),
        (OID_EC, Some(OID_P384)) => Ok((KeyKind::P384, DecodingKey::from_ec_der(bits))),
        (OID_EC, _) => Err("holds an EC key on an unsupported curve (use P-256 or P-384)".into()),
        (OID_ED25519, _) => Ok((KeyKind::Ed25519, DecodingKey::from_ed_der(bits))),
        _ => Err("holds an unsupported key type (use RSA, EC P-256/P-384 or Ed25519)".into()),
    }
}

/// The subject public key of an X.509 certificate (RFC 5280 §4.1).
fn certificate_key(der: &[u8]) -> Result<(KeyKind, DecodingKey), String> {
    let malformed = || "the certificate is not valid X.509 DER".to_owned();
    let blocks = simple_asn1::from_der(der).map_err(|_| malformed())?;
    let Some(ASN1Block::Sequence(_, certificate)) = blocks.first() else {
        return Err(malformed());
    };
    let Some(ASN1Block::Sequence(_, tbs)) = certificate.first() else {
        return Err(malformed());
    };
    // tbsCertificate: [0] version (optional), serialNumber, signature,
    // issuer, validity, subject, subjectPublicKeyInfo, …
    let skip = usize::from(matches!(tbs.first(), Some(ASN1Block::Explicit(..))));
    spki_key(tbs.get(skip + 5))
}

/// An RSAPublicKey (PKCS#1) of at least `MIN_RSA_BITS`.
fn check_rsa_pkcs1(der: &[u8]) -> Result<(), String> {
    let blocks = simple_asn1::from_der(der).map_err(|_| "the RSA key is not valid DER")?;
    let Some(ASN1Block::Sequence(_, parts)) = blocks.first() else {
        return Err("the RSA key is not an RSAPublicKey".into());
    };
    let Some(ASN1Block::Integer(_, modulus)) = parts.first() else {
        return Err("the RSA key is not an RSAPublicKey".into());
    };
    let bits = usize::try_from(modulus.bits()).unwrap_or(0);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../testdata/client-keys/", $name))
        };
    }

    fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &serde_json::json!({"sub": "x"}), key).unwrap()
    }

    fn verifies(key: &ClientKey, token: &str, alg: Algorithm) -> bool {
        let mut v = jsonwebtoken::Validation::new(alg);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v).is_ok()
    }

    #[test]
    fn certificates_of_every_kind_yield_their_key_and_thumbprints() {
        for (cert, private, alg, kind) in [
            (
                fixture!("rsa.cert.pem"),
                fixture!("rsa.key.pem"),
                Algorithm::PS256,
                KeyKind::Rsa,
            ),
            (
                fixture!("p256.cert.pem"),
                fixture!("p256.key.pem"),
                Algorithm::ES256,
                KeyKind::P256,
            ),
            (
                fixture!("ed25519.cert.pem"),
                fixture!("ed25519.key.pem"),
                Algorithm::EdDSA,
                KeyKind::Ed25519,
            ),
        ] {
            let keys = ClientKeys::from_pem(cert).unwrap();
            let key = &keys.keys()[0];
            assert_eq!(key.kind, kind);
            let der = pem::parse(cert).unwrap();
            let (sha1, sha256) = thumbprints(der.contents());
            assert_eq!(key.x5t.as_deref(), Some(sha1.as_str()));
            let encoding = match kind {
                KeyKind::Rsa => EncodingKey::from_rsa_pem(private.as_bytes()),
                KeyKind::Ed25519 => EncodingKey::from_ed_pem(private.as_bytes()),
                _ => EncodingKey::from_ec_pem(private.as_bytes()),
            }
            .unwrap();
            assert!(verifies(key, &sign(alg, &encoding, None), alg), "{kind:?}");
            // Picked by thumbprint, or as the only key.
            let hint = KeyHint {
                x5t_s256: Some(&sha256),
                ..KeyHint::default()
            };
            assert!(keys.select(&hint, alg).is_ok());
            assert!(keys.select(&KeyHint::default(), alg).is_ok());
            let wrong = KeyHint {
                x5t: Some("AAAA"),
                ..KeyHint::default()
            };
            assert!(keys.select(&wrong, alg).is_err());
            assert!(keys.select(&KeyHint::default(), Algorithm::HS256).is_err());
        }
    }

    #[test]
    fn public_key_pems_are_accepted_and_private_or_weak_keys_refused() {
        let keys = ClientKeys::from_pem(fixture!("p384.pub.pem")).unwrap();
        assert_eq!(keys.keys()[0].kind, KeyKind::P384);
        assert!(keys.select(&KeyHint::default(), Algorithm::ES384).is_ok());
        assert!(keys.select(&KeyHint::default(), Algorithm::ES256).is_err());
        assert_eq!(
            ClientKeys::from_pem(fixture!("rsa-other.pub.pem"))
                .unwrap()
                .keys()[0]
                .kind,
            KeyKind::Rsa
        );
        let err = ClientKeys::from_pem(fixture!("rsa.key.pem")).err().unwrap();
        assert!(err.contains("private key"), "{err}");
        let err = ClientKeys::from_pem(fixture!("rsa1024.pub.pem"))
            .err()
            .unwrap();
        assert!(err.contains("1024-bit"), "{err}");
        assert!(ClientKeys::from_pem("not pem").is_err());
    }

    #[test]
    fn jwks_keys_are_selected_by_kid_and_must_be_public() {
        let p256 = EncodingKey::from_ec_pem(fixture!("p256.key.pem").as_bytes()).unwrap();
        let ed = EncodingKey::from_ed_pem(fixture!("ed25519.key.pem").as_bytes()).unwrap();
        let jwk = |key: &EncodingKey, alg: Algorithm, kid: &str| {
            let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
            jwk["kid"] = kid.into();
            jwk
        };
        let set = serde_json::json!({"keys": [
            jwk(&p256, Algorithm::ES256, "ec-1"),
            jwk(&ed, Algorithm::EdDSA, "ed-1"),
        ]});
        let keys = ClientKeys::from_jwks(&set.to_string()).unwrap();
        let by_kid = |kid: &str, alg| {
            keys.select(
                &KeyHint {
                    kid: Some(kid),
                    ..KeyHint::default()
                },
                alg,
            )
        };
        let key = by_kid("ec-1", Algorithm::ES256).unwrap();
        assert!(verifies(
            key,
            &sign(Algorithm::ES256, &p256, Some("ec-1")),
            Algorithm::ES256
        ));
        let mut tampered = sign(Algorithm::ES256, &p256, None);
        // Flip the signature's first character (its last may be padding bits).
        let at = tampered.rfind('.').unwrap() + 1;
        let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
        tampered.replace_range(at..=at, flipped);
        assert!(!verifies(key, &tampered, Algorithm::ES256));
        assert!(
            by_kid("ed-1", Algorithm::ES256)
                .unwrap_err()
                .contains("cannot verify")
        );
        assert!(
            by_kid("nope", Algorithm::ES256)
                .unwrap_err()
                .contains("no registered key")
        );
        // Without kid, the one key that can verify the alg.
        assert!(keys.select(&KeyHint::default(), Algorithm::EdDSA).is_ok());

        let refuse =
            |set: serde_json::Value| ClientKeys::from_jwks(&set.to_string()).err().unwrap();
        let mut private = jwk(&p256, Algorithm::ES256, "p");
        private["d"] = "c2VjcmV0".into();
        assert!(refuse(serde_json::json!({"keys": [private]})).contains("private"));
        assert!(
            refuse(serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))
                .contains("private or symmetric")
        );
        assert!(refuse(serde_json::json!({"keys": [{"kty": "oct"}]})).contains("symmetric"));
        assert!(refuse(serde_json::json!({"keys": []})).contains("at least one"));
        let twice = jwk(&p256, Algorithm::ES256, "same");
        assert!(refuse(serde_json::json!({"keys": [twice.clone(), twice]})).contains("kid"));
        let mut wrong_alg = jwk(&p256, Algorithm::ES256, "w");
        wrong_alg["alg"] = "RS256".into();
        assert!(refuse(serde_json::json!({"keys": [wrong_alg]})).contains("names alg"));
        let mut enc = jwk(&p256, Algorithm::ES256, "e");
        enc["use"] = "enc".into();
        assert!(refuse(serde_json::json!({"keys": [enc]})).contains("sig"));
        assert!(
            refuse(serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}))
                .contains("bit RSA")
        );
        assert!(ClientKeys::from_jwks("[]").is_err());
    }
}
