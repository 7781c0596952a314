//! Users migrated from Keycloak sign in at the token endpoint with their
//! old passwords (pbkdf2-sha256, pbkdf2-sha512 and argon2 credentials from
//! a realm export), keep their Keycloak id as `sub`, and have their hashes
//! upgraded to Latchkey's argon2id on the way. On both engines.

use latchkey_import::{KeycloakOptions, import_keycloak};
use latchkey_testkit::{Engine, Options, TestServer};

use crate::support::*;

const REALM: &str = include_str!("../fixtures/keycloak-realm-acme.json");
const HR_MOBILE_SECRET: &str = "hr-mobile-kc-secret-0123456789";
const READ: &str = "https://hr.acme.example/employees.read";

async fn migrated_users_sign_in(engine: Engine) {
    let Some(server) = TestServer::start_on(engine, Options::default()).await else {
        return;
    };
    let ctx = server.context().await;
    let imported = import_keycloak(
        REALM,
        &KeycloakOptions { audience: None },
        &ctx.master.secret_hasher(),
        &ctx.master,
    )
    .unwrap();
    server
        .apply(&imported.file.to_toml())
        .await
        .expect("the imported realm applies");

    let users = [
        (
            "alice",
            "Keycloak sha256 pass",
            "4c7e1a2b-9f3d-4e5a-8b6c-0d1e2f3a4b5c",
            "{",
        ),
        (
            "bob",
            "Keycloak sha512 pass",
            "5d8f2b3c-0a4e-4f6b-9c7d-1e2f3a4b5c6d",
            "{",
        ),
        (
            "carol",
            "Argon2 pass 2024!",
            "6e9a3c4d-1b5f-4a7c-8d8e-2f3a4b5c6d7e",
            "$argon2id$v=19$m=7168,t=5,p=1$",
        ),
    ];
    for (username, password, keycloak_id, imported_prefix) in users {
        let stored = |ctx: &latchkey::context::Context| {
            let users = ctx.store.repos.users.clone();
            async move { users.find_by_username(username).await.unwrap().unwrap() }
        };
        let before = stored(&ctx).await;
        assert!(
            before
                .password_hash
                .as_deref()
                .unwrap()
                .starts_with(imported_prefix),
            "{username}: imported as {:?}",
            before.password_hash
        );
        let grant = async |password: &str| {
            token_basic(
                &server,
                "hr-mobile",
                HR_MOBILE_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                    ("scope", READ),
                ],
            )
            .await
        };
        grant("not the old password")
            .await
            .assert_error(400, "invalid_grant");
        let answer = grant(password).await;
        let token = answer.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, claims) = verify_jwt(&server, &token, "https://hr.acme.example/").await;
        assert_eq!(
            claims["sub"], keycloak_id,
            "{username}: the Keycloak id is the sub"
        );
        let after = stored(&ctx).await.password_hash.unwrap();
        assert!(
            after.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{username}: upgraded to {after}"
        );
        grant(password).await.assert_ok();
    }

    // Disabled in Keycloak, inactive here.
    token_basic(
        &server,
        "hr-mobile",
        HR_MOBILE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "dave"),
            ("password", "whatever it was"),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    // The public client with direct access grants works without a secret.
    let answer = token_body(
        &server,
        &[
            ("grant_type", "password"),
            ("client_id", "hr-cli"),
            ("username", "carol"),
            ("password", "Argon2 pass 2024!"),
        ],
    )
    .await;
    assert!(
        answer.assert_ok().get("refresh_token").is_none(),
        "hr-cli had use.refresh.tokens off"
    );
    ctx.store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_users_sign_in_with_their_old_passwords_on_sqlite() {
    migrated_users_sign_in(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_users_sign_in_with_their_old_passwords_on_postgres() {
    migrated_users_sign_in(Engine::Postgres).await;
}
