//! Introspection (RFC 7662), revocation (RFC 7009), sessions and the
//! client credentials grant.

use std::time::Duration;

use latchkey_testkit::{
    ALICE_PASSWORD, BATCH_SECRET, BLINK_SECRET, HR_SECRET, READ, REPORTS_ID, REPORTS_SECRET,
    TestServer,
};
use serde_json::{Value, json};

use crate::support::*;

on_both_engines!(
    introspection_reports_every_token_state,
    revocation_cascades_and_leaves_foreign_tokens_alone,
    deactivating_a_user_ends_their_sessions,
);

async fn call(
    server: &TestServer,
    path: &str,
    client: (&str, &str),
    params: &[(&str, &str)],
) -> Answer {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .header("authorization", basic(client.0, client.1))
        .header("content-type", FORM_CT)
        .body(form(params))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

const HR: (&str, &str) = ("hr-mobile", HR_SECRET);
const REPORTS: (&str, &str) = (REPORTS_ID, REPORTS_SECRET);

async fn introspect(server: &TestServer, client: (&str, &str), token: &str) -> Value {
    let answer = call(server, "/oauth2/v1/introspect", client, &[("token", token)]).await;
    answer.assert_ok().clone()
}

async fn revoke(server: &TestServer, client: (&str, &str), token: &str) -> Answer {
    call(server, "/oauth2/v1/revoke", client, &[("token", token)]).await
}

async fn sign_in(server: &TestServer) -> (String, String) {
    let answer = alice_grant(server, &format!("{READ} offline_access")).await;
    let body = answer.assert_ok();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn introspection_reports_every_token_state(server: &TestServer) {
    let (access, refresh) = sign_in(server).await;
    let info = introspect(server, HR, &access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["client_id"], "hr-mobile");
    assert_eq!(info["username"], "alice");
    assert_eq!(info["scope"], format!("{READ} offline_access"));
    assert_eq!(info["iss"], server.issuer());
    assert_eq!(info["aud"], "https://hr.example.com/");
    for claim in ["exp", "iat", "sub", "jti", "sid"] {
        assert!(info.get(claim).is_some(), "{claim} missing: {info}");
    }
    // Resource servers are clients too: any authenticated client may
    // introspect an access token.
    assert_eq!(introspect(server, REPORTS, &access).await["active"], true);

    let info = introspect(server, HR, &refresh).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["sid"], introspect(server, HR, &access).await["sid"]);
    // Another app's refresh token: exactly {"active": false}.
    assert_eq!(
        introspect(server, REPORTS, &refresh).await,
        json!({"active": false})
    );

    for garbage in [
        "",
        "garbage",
        "a.b.c",
        &format!("{access}x"),
        &access[..access.len() - 4],
    ] {
        let answer = call(server, "/oauth2/v1/introspect", HR, &[("token", garbage)]).await;
        if garbage.is_empty() {
            answer.assert_error(400, "invalid_request");
        } else {
            assert_eq!(answer.assert_ok(), &json!({"active": false}), "{garbage}");
        }
    }

    // Rotated out: inactive; its successor active.
    let next = token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    let next = next.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        introspect(server, HR, &refresh).await,
        json!({"active": false})
    );
    assert_eq!(introspect(server, HR, &next).await["active"], true);

    // Expired: Blink's tokens live one second.
    let answer = token_basic(
        server,
        "blink",
        BLINK_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("scope", &format!("{READ} offline_access")),
        ],
    )
    .await;
    let body = answer.assert_ok().clone();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for token in ["access_token", "refresh_token"] {
        let info = introspect(
            server,
            ("blink", BLINK_SECRET),
            body[token].as_str().unwrap(),
        )
        .await;
        assert_eq!(info, json!({"active": false}), "expired {token}");
    }

    // Introspection requires client authentication.
    let answer = post_token_to(server, "/oauth2/v1/introspect", &[("token", &access)]).await;
    answer.assert_error(401, "invalid_client");
}

async fn post_token_to(server: &TestServer, path: &str, params: &[(&str, &str)]) -> Answer {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", FORM_CT)
        .body(form(params))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

async fn revocation_cascades_and_leaves_foreign_tokens_alone(server: &TestServer) {
    let (access, refresh) = sign_in(server).await;
    // Another client cannot revoke what is not its own: 200, no change.
    assert_eq!(revoke(server, REPORTS, &access).await.status.as_u16(), 200);
    assert_eq!(revoke(server, REPORTS, &refresh).await.status.as_u16(), 200);
    assert_eq!(introspect(server, HR, &access).await["active"], true);
    assert_eq!(introspect(server, HR, &refresh).await["active"], true);
    // Unknown tokens: 200.
    assert_eq!(
        revoke(server, HR, "no-such-token").await.status.as_u16(),
        200
    );
    // An unknown hint is reported.
    let answer = call(
        server,
        "/oauth2/v1/revoke",
        HR,
        &[("token", &access), ("token_type_hint", "id_token")],
    )
    .await;
    answer.assert_error(400, "unsupported_token_type");

    // Revoking the access token denies it alone.
    let (second_access, _) = sign_in(server).await;
    let answer = revoke(server, HR, &access).await;
    assert_eq!(answer.status.as_u16(), 200);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(
        introspect(server, HR, &access).await,
        json!({"active": false})
    );
    assert_eq!(introspect(server, HR, &second_access).await["active"], true);
    assert_eq!(
        introspect(server, HR, &refresh).await["active"],
        true,
        "the session lives on"
    );

    // Revoking the refresh token ends the session: the refresh token, and
    // every access token of the session.
    let fresh = token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    let fresh = fresh.assert_ok().clone();
    let (new_access, new_refresh) = (
        fresh["access_token"].as_str().unwrap(),
        fresh["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(revoke(server, HR, new_refresh).await.status.as_u16(), 200);
    assert_eq!(
        introspect(server, HR, new_refresh).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(server, HR, new_access).await,
        json!({"active": false})
    );
    token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", new_refresh),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    // Another session of the same user is untouched.
    assert_eq!(introspect(server, HR, &second_access).await["active"], true);
}

async fn deactivating_a_user_ends_their_sessions(server: &TestServer) {
    let ctx = server.context().await;
    // Deleting a user ends their tokens too.
    server
        .apply("[[users]]\nusername = \"temp\"\npassword = \"temporary password\"\n")
        .await
        .unwrap();
    let answer = token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "temp"),
            ("password", "temporary password"),
        ],
    )
    .await;
    let temp_access = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(introspect(server, HR, &temp_access).await["active"], true);
    let temp = ctx
        .store
        .repos
        .users
        .find_by_username("temp")
        .await
        .unwrap()
        .unwrap();
    ctx.store.repos.users.delete(&temp.id).await.unwrap();
    assert_eq!(
        introspect(server, HR, &temp_access).await,
        json!({"active": false})
    );

    let (access, refresh) = sign_in(server).await;
    let alice = ctx
        .store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ctx.store
            .repos
            .tokens
            .list_sessions(&alice.id)
            .await
            .unwrap()
            .len(),
        1
    );
    ctx.store
        .repos
        .users
        .set_active(&alice.id, false, 0)
        .await
        .unwrap();
    assert!(
        ctx.store
            .repos
            .tokens
            .list_sessions(&alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    ctx.store.close().await;
    assert_eq!(
        introspect(server, HR, &access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(server, HR, &refresh).await,
        json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_issue_tokens_in_the_apps_own_context() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let answer = token_basic(
        &server,
        "batch",
        BATCH_SECRET,
        &[
            ("grant_type", "client_credentials"),
            ("scope", &format!("{READ} urn:opc:idm:__myscopes__")),
        ],
    )
    .await;
    let body = answer.assert_ok().clone();
    assert!(body.get("refresh_token").is_none());
    let (_, claims) = verify_jwt(
        &server,
        body["access_token"].as_str().unwrap(),
        "https://hr.example.com/",
    )
    .await;
    assert_eq!(claims["sub"], "batch");
    assert_eq!(claims["client_id"], "batch");
    assert_eq!(claims["roles"], json!(["Audit Administrator"]));
    assert!(claims.get("username").is_none() && claims.get("sid").is_none());
    // Default scope: everything but user scopes.
    let answer = token_basic(
        &server,
        "batch",
        BATCH_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        answer.assert_ok()["scope"],
        format!("{READ} urn:opc:idm:__myscopes__")
    );
    // No user, so no offline_access.
    token_basic(
        &server,
        "batch",
        BATCH_SECRET,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "offline_access"),
        ],
    )
    .await
    .assert_error(400, "invalid_scope");
    // An app that does not list the grant.
    token_basic(
        &server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_error(400, "unauthorized_client");
    // Introspectable like any access token.
    let answer = token_basic(
        &server,
        "batch",
        BATCH_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let info = introspect(&server, ("batch", BATCH_SECRET), &token).await;
    assert_eq!(
        (info["active"].clone(), info["sub"].clone()),
        (json!(true), json!("batch"))
    );
    // Its app deactivated (or deleted), the token is no longer active.
    let ctx = server.context().await;
    let batch = ctx
        .store
        .repos
        .apps
        .find_by_client_id("batch")
        .await
        .unwrap()
        .unwrap();
    ctx.store
        .repos
        .apps
        .set_active(&batch.id, false, 0)
        .await
        .unwrap();
    eventually(
        "the deactivated app's token going inactive",
        std::time::Duration::from_secs(5),
        async || introspect(&server, HR, &token).await == json!({"active": false}),
    )
    .await;
    ctx.store.repos.apps.delete(&batch.id).await.unwrap();
    ctx.store.close().await;
    eventually(
        "the deleted app's token going inactive",
        std::time::Duration::from_secs(5),
        async || introspect(&server, HR, &token).await == json!({"active": false}),
    )
    .await;
    server.stop().await;
}
