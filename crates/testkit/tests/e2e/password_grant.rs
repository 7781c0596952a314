//! The Resource Owner Password Credentials grant (RFC 6749 §4.3).

use latchkey_core::password::{HashParams, Password, PasswordHasher, PoolConfig};
use latchkey_testkit::{
    ALICE_PASSWORD, HR_SECRET, READ, REPORTS_ID, REPORTS_SECRET, TestServer, WRITE,
};

use crate::support::*;

on_both_engines!(
    issues_an_rfc_9068_access_token_and_a_refresh_token,
    wrong_password_unknown_user_and_inactive_user_get_one_answer_at_one_cost,
    admin_scope_carries_roles_held_by_both_user_and_app,
    outdated_hashes_are_upgraded_on_login,
);

async fn issues_an_rfc_9068_access_token_and_a_refresh_token(server: &TestServer) {
    let scope = format!("{READ} offline_access");
    let answer = alice_grant(server, &scope).await;
    let body = answer.assert_ok();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], scope.as_str());
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43),
        "{body}"
    );
    assert!(body.get("id_token").is_none());

    let (typ, claims) = verify_jwt(
        server,
        body["access_token"].as_str().unwrap(),
        "https://hr.example.com/",
    )
    .await;
    assert_eq!(typ, "at+jwt");
    let ctx = server.context().await;
    let alice = ctx
        .store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    ctx.store.close().await;
    assert_eq!(
        claims["sub"],
        alice.id.as_str(),
        "sub is the immutable user id"
    );
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["aud"], "https://hr.example.com/");
    assert_eq!(claims["client_id"], "hr-mobile");
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["scope"], scope.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["auth_time"].is_i64() && claims["jti"].is_string() && claims["sid"].is_string());
    assert!(
        claims.get("roles").is_none(),
        "no roles without the admin scope"
    );

    // Without offline_access there is no refresh token.
    let answer = alice_grant(server, READ).await;
    assert!(answer.assert_ok().get("refresh_token").is_none());
    // Usernames are matched ignoring case.
    let answer = token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "ALICE"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    answer.assert_ok();
}

async fn wrong_password_unknown_user_and_inactive_user_get_one_answer_at_one_cost(
    server: &TestServer,
) {
    let hasher = server.hasher();
    let attempt = |username: &'static str, password: &'static str| async move {
        let before = server.hasher().verifications();
        let answer = token_basic(
            server,
            "hr-mobile",
            HR_SECRET,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
        (answer, server.hasher().verifications() - before)
    };
    let (wrong, wrong_cost) = attempt("alice", "not her password").await;
    let (unknown, unknown_cost) = attempt("nobody", "whatever").await;
    let (inactive, inactive_cost) = attempt("mallory", "mallory's password").await;
    wrong.assert_error(400, "invalid_grant");
    for other in [&unknown, &inactive] {
        assert_eq!(other.status, wrong.status);
        assert_eq!(
            other.json, wrong.json,
            "the body must not tell the cases apart"
        );
    }
    // Each case ran exactly one password verification: an unknown user is
    // checked against a dummy hash, so it costs what a wrong password costs.
    assert_eq!((wrong_cost, unknown_cost, inactive_cost), (1, 1, 1));
    drop(hasher);
}

async fn admin_scope_carries_roles_held_by_both_user_and_app(server: &TestServer) {
    // alice: Help Desk Administrator (direct) + User Administrator (group).
    // hr-mobile: User Administrator + Security Administrator.
    let answer = alice_grant(server, "urn:opc:idm:__myscopes__").await;
    let token = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, claims) = verify_jwt(server, &token, server.issuer()).await;
    assert_eq!(claims["roles"], serde_json::json!(["User Administrator"]));
    assert_eq!(
        claims["aud"],
        server.issuer(),
        "the admin scope's audience is the issuer"
    );
}

async fn outdated_hashes_are_upgraded_on_login(server: &TestServer) {
    let old = PasswordHasher::new(
        HashParams {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
        },
        PoolConfig {
            workers: 1,
            max_queue: 1,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let hash = old.hash(&Password::new("legacy pass")).await.unwrap();
    server
        .apply(&format!(
            "[[users]]\nusername = \"legacy\"\npassword_hash = \"{hash}\"\n"
        ))
        .await
        .unwrap();
    let answer = token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "legacy"),
            ("password", "legacy pass"),
        ],
    )
    .await;
    answer.assert_ok();
    let ctx = server.context().await;
    let stored = ctx
        .store
        .repos
        .users
        .find_by_username("legacy")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    ctx.store.close().await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "rehashed with the current parameters: {stored}"
    );
    // And the upgraded hash still logs in.
    token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "legacy"),
            ("password", "legacy pass"),
        ],
    )
    .await
    .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_scope_is_every_granted_scope_but_offline_access_and_openid() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let answer = token_basic(
        &server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    let body = answer.assert_ok();
    assert_eq!(
        body["scope"],
        format!("{READ} {WRITE} profile email urn:opc:idm:__myscopes__")
    );
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_the_app_was_not_granted_is_invalid_scope_and_no_token() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let answer = token_basic(
        &server,
        REPORTS_ID,
        REPORTS_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("scope", WRITE),
        ],
    )
    .await;
    answer.assert_error(400, "invalid_scope");
    assert!(answer.json.get("access_token").is_none());
    // offline_access is a scope like any other: the app must hold it.
    let answer = token_basic(
        &server,
        REPORTS_ID,
        REPORTS_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("scope", &format!("{READ} offline_access")),
        ],
    )
    .await;
    answer.assert_error(400, "invalid_scope");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_adds_an_id_token_and_per_app_lifetimes_apply() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let answer = alice_grant(&server, "openid profile email").await;
    let body = answer.assert_ok();
    let (typ, claims) = verify_jwt(&server, body["id_token"].as_str().unwrap(), "hr-mobile").await;
    assert_eq!(typ, "JWT");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["aud"], "hr-mobile");
    assert!(claims["auth_time"].is_i64() && claims["sid"].is_string());

    // UserInfo returns the claims the token's scopes allow.
    let userinfo = |token: String| {
        let url = server.url("/oauth2/v1/userinfo");
        async move {
            let mut request = reqwest::Client::new().get(url);
            if !token.is_empty() {
                request = request.bearer_auth(token);
            }
            Answer::read(request.send().await.unwrap()).await
        }
    };
    let info = userinfo(body["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(info.status, 200, "{}", info.json);
    assert_eq!(info.json["sub"], claims["sub"]);
    assert_eq!(info.json["name"], "Alice Liddell");
    assert_eq!(info.json["email"], "alice@example.com");
    let no_openid = alice_grant(&server, latchkey_testkit::READ).await;
    let refused = userinfo(
        no_openid.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json["error"], "insufficient_scope");
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"openid\"")
    );
    let refused = userinfo(String::new()).await;
    assert_eq!(refused.status, 401);
    let refused = userinfo("garbage".into()).await;
    assert_eq!(
        (refused.status.as_u16(), refused.json["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let openid_only = alice_grant(&server, "openid").await;
    let info = userinfo(
        openid_only.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
    .await;
    assert_eq!(
        info.json.as_object().unwrap().len(),
        1,
        "openid alone: sub only: {}",
        info.json
    );

    let answer = token_basic(
        &server,
        REPORTS_ID,
        REPORTS_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    let body = answer.assert_ok();
    assert_eq!(body["expires_in"], 90, "access_token_ttl = \"90s\"");
    let (_, claims) = verify_jwt(
        &server,
        body["access_token"].as_str().unwrap(),
        "https://hr.example.com/",
    )
    .await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        90
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_algorithm_signs_tokens_the_jwks_verifies() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let options = latchkey_testkit::Options {
            key_algorithm: alg,
            ..Default::default()
        };
        let server = TestServer::start_on(latchkey_testkit::Engine::Sqlite, options)
            .await
            .unwrap();
        server.apply(latchkey_testkit::DOMAIN).await.unwrap();
        let answer = alice_grant(&server, READ).await;
        let token = answer.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            format!("{:?}", header.alg).to_uppercase(),
            alg.to_uppercase()
        );
        verify_jwt(&server, &token, "https://hr.example.com/").await;
        server.stop().await;
    }
}
