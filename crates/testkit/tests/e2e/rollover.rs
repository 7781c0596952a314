//! Signing-key roll-over as caching verifiers see it (jose's
//! `createRemoteJWKSet`, oauth4webapi, resource servers that keep the JWKS
//! for its `max-age`): a rotated key is published before it signs, on
//! every node, and once due one node promotes it and all sign with it.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use latchkey_core::admin::Actor;
use latchkey_core::clock::FixedClock;
use latchkey_core::keys::{KeyAlgorithm, KeyRotation};
use latchkey_core::model::KeyState;
use latchkey_testkit::{READ, TestServer};
use serde_json::Value;

use crate::support::*;

on_both_engines!(a_token_signed_right_after_keys_rotate_verifies_with_the_jwks_fetched_before);

/// Verifies `token` with a JWKS a verifier cached earlier, as such a
/// verifier does: the `kid` must be in that copy.
fn verify_with(cached: &Value, token: &str, issuer: &str) -> Result<Value, String> {
    let jwks: JwkSet = serde_json::from_value(cached.clone()).unwrap();
    let header = decode_header(token).unwrap();
    let kid = header.kid.clone().unwrap();
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the cached JWKS"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["https://hr.example.com/"]);
    validation.set_issuer(&[issuer]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn access_token(server: &TestServer) -> String {
    alice_grant(server, READ).await.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

fn publishes(jwks: &Value, kid: &str) -> bool {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == kid)
}

async fn a_token_signed_right_after_keys_rotate_verifies_with_the_jwks_fetched_before(
    a: &TestServer,
) {
    let b = a.start_sibling().await;
    let cached_before = jwks(a).await;
    let old_kid = kid_of(&access_token(a).await);

    // `latchkey keys rotate`: the service call the command makes.
    let ctx = a.context().await;
    let staged = ctx
        .registry(KeyAlgorithm::Es256)
        .rotate_key(Actor::Cli, None, KeyRotation::Staged)
        .await
        .unwrap();
    assert_eq!(staged.state, KeyState::Next);
    let activates_at = staged.activates_at.unwrap();

    // Right after it, on either node: a token that the JWKS fetched
    // before the rotation verifies.
    for node in [a, &b] {
        let token = access_token(node).await;
        assert_eq!(
            kid_of(&token),
            old_kid,
            "the old key signs until the new one is due"
        );
        verify_with(&cached_before, &token, a.issuer()).expect("verifies with the old JWKS");
    }
    // Both nodes publish the new key within their reload interval.
    eventually(
        "both nodes publishing the new key",
        Duration::from_secs(5),
        async || publishes(&jwks(a).await, &staged.kid) && publishes(&jwks(&b).await, &staged.kid),
    )
    .await;
    let cached_after = jwks(&b).await;
    assert!(
        publishes(&cached_after, &old_kid),
        "the old key stays published"
    );

    // Its time comes: whichever node reloads first promotes it — here a
    // third one whose clock is there already; the two servers' clocks
    // are not, so they cannot have done it themselves.
    let third = Arc::new(
        ctx.key_ring()
            .with_clock(Arc::new(FixedClock::new(activates_at))),
    );
    third.reload().await.unwrap();
    assert_eq!(third.active().unwrap().kid(), staged.kid);
    // Another node reloading at the same time finds it done.
    let fourth = ctx
        .key_ring()
        .with_clock(Arc::new(FixedClock::new(activates_at + 1)));
    fourth.reload().await.unwrap();
    let keys = ctx.store.repos.keys.list_all().await.unwrap();
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    assert_eq!(
        (state(&staged.kid).state, state(&staged.kid).activates_at),
        (KeyState::Active, Some(activates_at)),
        "promoted once, as of its due time"
    );
    assert_eq!(state(&old_kid).state, KeyState::Retiring);
    ctx.store.close().await;

    // Every node signs with it, without a restart; what it signs verifies
    // with any JWKS fetched since the rotation, not with one fetched
    // before it (what signing at once would have broken).
    for node in [a, &b] {
        eventually(
            "the node signing with the new key",
            Duration::from_secs(5),
            async || kid_of(&access_token(node).await) == staged.kid,
        )
        .await;
        let token = access_token(node).await;
        verify_with(&cached_after, &token, a.issuer())
            .expect("verifies with the JWKS cached after the rotation");
        assert!(verify_with(&cached_before, &token, a.issuer()).is_err());
        verify_jwt(node, &token, "https://hr.example.com/").await;
    }
    // The JWKS says how long it may be cached; the key waited longer.
    let response = reqwest::get(a.url("/oauth2/v1/keys")).await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    assert!(activates_at - staged.created_at >= 60 + 5);
    b.stop().await;
}
