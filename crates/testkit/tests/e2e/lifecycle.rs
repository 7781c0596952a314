//! Keys at rest, and changes made outside the server reaching it.

use std::time::Duration;

use latchkey_core::keys::{KeyAlgorithm, KeyRing, SigningKey};
use latchkey_core::secrets::MasterKey;
use latchkey_testkit::{HR_SECRET, READ};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_encrypted_at_rest_and_need_the_master_key() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let ctx = server.context().await;
    let stored = ctx.store.repos.keys.list_all().await.unwrap();
    assert_eq!(stored.len(), 1);
    let record = &stored[0];
    assert!(
        SigningKey::from_pkcs8(None, KeyAlgorithm::Es256, &record.encrypted_private_key).is_err(),
        "the stored bytes are not a usable private key"
    );
    let plain = ctx
        .master
        .decrypt(&record.encrypted_private_key, &record.kid)
        .unwrap();
    let key = SigningKey::from_pkcs8(Some(&record.kid), KeyAlgorithm::Es256, &plain).unwrap();
    assert_eq!(key.public_jwk().to_string(), record.public_jwk);
    ctx.store.close().await;

    // Another master key cannot start a server on this database.
    let mut settings = server.settings();
    settings.master_key = Some(MasterKey::generate().to_base64());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let err = latchkey::server::start(settings)
        .await
        .err()
        .expect("a wrong master key is refused");
    let message = format!("{err:#}");
    assert!(message.contains("LATCHKEY_MASTER_KEY"), "{message}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_outside_the_server_reach_it_within_five_seconds() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    alice_grant(&server, READ).await.assert_ok();

    // A secret rotated by the CLI (another process, the same database).
    let ctx = server.context().await;
    let app = ctx
        .store
        .repos
        .apps
        .find_by_client_id("hr-mobile")
        .await
        .unwrap()
        .unwrap();
    let new_secret = "rotated-secret-0123456789abcdef";
    ctx.store
        .repos
        .apps
        .set_secret(
            &app.id,
            &latchkey_core::store::NewSecret {
                hash: ctx.master.secret_hasher().hash(new_secret),
                sealed: None,
                previous: None,
            },
            0,
        )
        .await
        .unwrap();
    let params = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", latchkey_testkit::ALICE_PASSWORD),
    ];
    eventually(
        "the old secret being refused",
        Duration::from_secs(5),
        async || {
            token_basic(&server, "hr-mobile", HR_SECRET, &params)
                .await
                .status
                .as_u16()
                == 401
        },
    )
    .await;
    token_basic(&server, "hr-mobile", new_secret, &params)
        .await
        .assert_ok();

    // A key rotated by the CLI: published, then signing.
    let ring = KeyRing::new(ctx.store.repos.keys.clone(), ctx.master.clone());
    let kid = ring.rotate_now(KeyAlgorithm::EdDsa, 0).await.unwrap();
    eventually(
        "the new key being published",
        Duration::from_secs(6),
        async || {
            let jwks = jwks(&server).await;
            jwks["keys"].as_array().unwrap().len() == 2
        },
    )
    .await;
    let answer = token_basic(&server, "hr-mobile", new_secret, &params).await;
    let token = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    verify_jwt(&server, &token, "https://hr.example.com/").await;
    ctx.store.close().await;
    server.stop().await;
}
