//! Attacks on the privilege boundary through the admin API, as a lesser
//! administrator would try them, and the other findings of the security
//! review that live in the token and admin paths: revoked roles, the /Me
//! password oracle, app tokens coming back to life, introspection by a
//! public client, and /Me writes with any token.

use reqwest::Method;
use serde_json::{Value, json};

use latchkey_testkit::TestServer;

use crate::support::*;

on_both_engines!(
    an_application_administrator_cannot_mint_an_administrator_app,
    a_user_administrator_cannot_join_a_group_that_holds_more,
    lesser_administrators_cannot_reset_a_stronger_administrators_password,
    a_revoked_role_stops_working_at_once,
    the_me_password_check_is_throttled_like_a_sign_in,
    an_app_token_dies_for_good_with_its_deactivation_or_its_app,
    introspection_needs_a_confidential_client,
    me_writes_need_the_self_service_scope,
);

const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";
const ME_SCOPE: &str = "urn:opc:idm:t.user.me";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User";
const CONSOLE_SECRET: &str = "attack-console-secret-0123";

pub(crate) const DOMAIN: &str = r#"
[[users]]
username = "root"
password = "root password 0123"
app_roles = ["Identity Domain Administrator"]

[[users]]
username = "uma"
password = "uma password 0123"
app_roles = ["User Administrator"]

[[users]]
username = "helen"
password = "helen password 0123"
app_roles = ["Help Desk Administrator"]

[[users]]
username = "apper"
password = "apper password 0123"
app_roles = ["Application Administrator"]

[[users]]
username = "plain"
password = "plain password 0123"

[[groups]]
name = "domain admins"
app_roles = ["Identity Domain Administrator"]

[[apps]]
name = "Attack Console"
client_id = "attack-console"
type = "trusted"
client_secret = "attack-console-secret-0123"
grant_types = ["password"]
scopes = ["urn:opc:idm:__myscopes__", "urn:opc:idm:t.user.me", "openid"]
app_roles = ["Identity Domain Administrator", "User Administrator", "Help Desk Administrator", "Application Administrator", "Security Administrator", "Audit Administrator"]

[[apps]]
name = "Robot"
client_id = "robot"
type = "trusted"
client_secret = "robot-secret-0123456789"
grant_types = ["client_credentials"]
scopes = ["urn:opc:idm:__myscopes__"]
app_roles = ["Audit Administrator"]
"#;

/// The attackers and their targets, beside the shared domain.
pub(crate) async fn prepare(server: &TestServer) {
    server
        .apply(DOMAIN)
        .await
        .expect("the attack domain applies");
}

async fn grant(server: &TestServer, username: &str, password: &str, scope: &str) -> Answer {
    token_basic(
        server,
        "attack-console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

pub(crate) async fn bearer(server: &TestServer, username: &str) -> String {
    grant(
        server,
        username,
        &format!("{username} password 0123"),
        MY_SCOPES,
    )
    .await
    .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    Answer::read(request.send().await.unwrap()).await
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

fn denied(answer: &Answer) {
    assert_eq!(answer.status.as_u16(), 403, "{}", answer.json);
}

pub(crate) async fn id_of(server: &TestServer, username: &str) -> String {
    let ctx = server.context().await;
    let user = ctx.store.repos.users.find_by_username(username).await;
    ctx.store.close().await;
    user.unwrap().expect("the user exists").id
}

async fn roles_of(server: &TestServer, username: &str) -> Vec<String> {
    let id = id_of(server, username).await;
    let ctx = server.context().await;
    let roles = ctx.store.repos.users.effective_roles(&id).await.unwrap();
    ctx.store.close().await;
    roles.iter().map(|r| r.to_string()).collect()
}

async fn client_token(server: &TestServer, client_id: &str, secret: &str) -> Answer {
    token_basic(
        server,
        client_id,
        secret,
        &[("grant_type", "client_credentials"), ("scope", MY_SCOPES)],
    )
    .await
}

/// Finding 1: an Application Administrator creates (or edits into being)
/// a trusted app holding Identity Domain Administrator, and uses its token.
async fn an_application_administrator_cannot_mint_an_administrator_app(server: &TestServer) {
    prepare(server).await;
    let apper = bearer(server, "apper").await;
    let evil = json!({
        "name": "Evil", "client_id": "evil", "type": "trusted",
        "grant_types": ["client_credentials"],
        "scopes": [MY_SCOPES],
        "app_roles": ["Identity Domain Administrator"],
    });
    denied(
        &call(
            server,
            Method::POST,
            "/admin/v1/Apps",
            &apper,
            Some(evil.clone()),
        )
        .await,
    );
    // Nothing was created.
    let ctx = server.context().await;
    assert!(
        ctx.store
            .repos
            .apps
            .find_by_client_id("evil")
            .await
            .unwrap()
            .is_none()
    );
    ctx.store.close().await;

    // A harmless app, then edited to hold the role: refused too.
    let mut harmless = evil.clone();
    harmless["app_roles"] = json!([]);
    let created = call(
        server,
        Method::POST,
        "/admin/v1/Apps",
        &apper,
        Some(harmless),
    )
    .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.json);
    denied(
        &call(
            server,
            Method::PUT,
            "/admin/v1/Apps/evil",
            &apper,
            Some(evil),
        )
        .await,
    );
    let secret = created.json["client_secret"].as_str().unwrap();
    let token = client_token(server, "evil", secret).await;
    let token = token.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its token has no role: the admin API refuses it.
    denied(&call(server, Method::GET, "/admin/v1/Users", &token, None).await);

    // An app holding a role the Application Administrator lacks cannot
    // be changed, re-keyed, reactivated or deleted by them: rotating its
    // secret would hand them its role.
    for (method, path, body) in [
        (Method::POST, "/admin/v1/Apps/robot/secret", Some(json!({}))),
        (
            Method::PUT,
            "/admin/v1/Apps/robot",
            Some(
                json!({"name": "Robot", "type": "trusted", "grant_types": ["client_credentials", "password"], "scopes": [MY_SCOPES], "app_roles": ["Audit Administrator"]}),
            ),
        ),
        (Method::DELETE, "/admin/v1/Apps/robot", None),
    ] {
        denied(&call(server, method, path, &apper, body).await);
    }
    client_token(server, "robot", "robot-secret-0123456789")
        .await
        .assert_ok();

    // The built-in console app is the server's: nobody edits it through
    // the API, not even an Identity Domain Administrator.
    let root = bearer(server, "root").await;
    for token in [&apper, &root] {
        denied(
            &call(
                server,
                Method::POST,
                "/admin/v1/Apps/latchkey-console/secret",
                token,
                Some(json!({})),
            )
            .await,
        );
        denied(
            &call(
                server,
                Method::DELETE,
                "/admin/v1/Apps/latchkey-console",
                token,
                None,
            )
            .await,
        );
    }
    // An Identity Domain Administrator may create such an app.
    let mut admin_app = json!({
        "name": "Admin Robot", "client_id": "admin-robot", "type": "trusted",
        "grant_types": ["client_credentials"], "scopes": [MY_SCOPES],
        "app_roles": ["Identity Domain Administrator"],
    });
    let made = call(
        server,
        Method::POST,
        "/admin/v1/Apps",
        &root,
        Some(admin_app.clone()),
    )
    .await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.json);
    admin_app["name"] = json!("Renamed Robot");
    denied(
        &call(
            server,
            Method::PUT,
            "/admin/v1/Apps/admin-robot",
            &apper,
            Some(admin_app),
        )
        .await,
    );
}

/// Finding 2: a User Administrator adds themselves to a group holding
/// Identity Domain Administrator.
async fn a_user_administrator_cannot_join_a_group_that_holds_more(server: &TestServer) {
    prepare(server).await;
    let uma = bearer(server, "uma").await;
    let uma_id = id_of(server, "uma").await;
    let root = bearer(server, "root").await;
    let found = call(
        server,
        Method::GET,
        "/admin/v1/Groups?filter=displayName%20eq%20%22domain%20admins%22",
        &root,
        None,
    )
    .await;
    let group_id = found.json["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/v1/Groups/{group_id}");
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": uma_id}]}]));
    denied(&call(server, Method::PATCH, &path, &uma, Some(add)).await);
    let put = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "domain admins",
        "members": [{"value": uma_id}],
    });
    denied(&call(server, Method::PUT, &path, &uma, Some(put)).await);
    denied(&call(server, Method::DELETE, &path, &uma, None).await);
    assert_eq!(roles_of(server, "uma").await, ["User Administrator"]);

    // A group without roles is theirs to fill.
    let made = call(
        server,
        Method::POST,
        "/admin/v1/Groups",
        &uma,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "readers", "members": [{"value": uma_id}]})),
    )
    .await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.json);
}

/// Finding 3: a User Administrator and a Help Desk Administrator reset an
/// Identity Domain Administrator's password and sign in as them.
async fn lesser_administrators_cannot_reset_a_stronger_administrators_password(
    server: &TestServer,
) {
    prepare(server).await;
    let root_id = id_of(server, "root").await;
    let path = format!("/admin/v1/Users/{root_id}");
    for attacker in ["uma", "helen"] {
        let token = bearer(server, attacker).await;
        let reset = patch(
            json!([{"op": "replace", "path": "password", "value": "owned by the help desk 0123"}]),
        );
        denied(&call(server, Method::PATCH, &path, &token, Some(reset)).await);
        let unlock = patch(
            json!([{"op": "replace", "path": format!("{EXTENSION}:locked"), "value": false}]),
        );
        denied(&call(server, Method::PATCH, &path, &token, Some(unlock)).await);
        grant(server, "root", "owned by the help desk 0123", MY_SCOPES)
            .await
            .assert_error(400, "invalid_grant");
    }
    let uma = bearer(server, "uma").await;
    denied(&call(server, Method::DELETE, &path, &uma, None).await);
    let deactivate = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    denied(&call(server, Method::PATCH, &path, &uma, Some(deactivate)).await);
    // The root's sessions are not theirs to end either.
    let root_session = grant(server, "root", "root password 0123", MY_SCOPES).await;
    let sid = verify_jwt(
        server,
        root_session.assert_ok()["access_token"].as_str().unwrap(),
        server.issuer(),
    )
    .await
    .1["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    denied(
        &call(
            server,
            Method::DELETE,
            &format!("/admin/v1/Sessions/{sid}"),
            &uma,
            None,
        )
        .await,
    );
    grant(server, "root", "root password 0123", MY_SCOPES)
        .await
        .assert_ok();

    // Their own peers and plain users stay theirs to help.
    let helen = bearer(server, "helen").await;
    let plain_id = id_of(server, "plain").await;
    let reset =
        patch(json!([{"op": "replace", "path": "password", "value": "a help desk reset 0123"}]));
    let done = call(
        server,
        Method::PATCH,
        &format!("/admin/v1/Users/{plain_id}"),
        &helen,
        Some(reset),
    )
    .await;
    assert_eq!(done.status.as_u16(), 200, "{}", done.json);
}

/// Finding 4: a role revoked after the token was issued keeps working.
async fn a_revoked_role_stops_working_at_once(server: &TestServer) {
    prepare(server).await;
    let uma = bearer(server, "uma").await;
    assert_eq!(
        call(server, Method::GET, "/admin/v1/Users", &uma, None)
            .await
            .status
            .as_u16(),
        200
    );
    let ctx = server.context().await;
    let uma_id = id_of(server, "uma").await;
    ctx.directory()
        .revoke_role(
            latchkey_core::admin::Actor::Cli,
            &uma_id,
            latchkey_core::model::AppRole::UserAdministrator,
        )
        .await
        .unwrap();
    ctx.store.close().await;
    denied(&call(server, Method::GET, "/admin/v1/Users", &uma, None).await);

    // An app's token the same way: a role taken from the app.
    let robot = client_token(server, "robot", "robot-secret-0123456789").await;
    let robot = robot.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(server, Method::GET, "/admin/v1/AuditEvents", &robot, None)
            .await
            .status
            .as_u16(),
        200
    );
    let root = bearer(server, "root").await;
    let stripped = json!({"name": "Robot", "type": "trusted", "grant_types": ["client_credentials"], "scopes": [MY_SCOPES]});
    let put = call(
        server,
        Method::PUT,
        "/admin/v1/Apps/robot",
        &root,
        Some(stripped),
    )
    .await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.json);
    denied(&call(server, Method::GET, "/admin/v1/AuditEvents", &robot, None).await);
}

/// Finding 5: /Me's current-password check answered 30 guesses at full
/// speed. It is the sign-in gate now: throttled after the pair threshold
/// (5), so even the right password waits, and every refusal is audited.
async fn the_me_password_check_is_throttled_like_a_sign_in(server: &TestServer) {
    prepare(server).await;
    let token = grant(
        server,
        "plain",
        "plain password 0123",
        &format!("openid {ME_SCOPE}"),
    )
    .await;
    let token = token.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |current: &'static str| {
        let token = token.clone();
        async move {
            call(
                server,
                Method::PATCH,
                "/admin/v1/Me",
                &token,
                Some(patch(json!([
                    {"op": "replace", "path": "password", "value": "plain's next password 0123"},
                    {"op": "add", "path": format!("{EXTENSION}:currentPassword"), "value": current},
                ]))),
            )
            .await
        }
    };
    for _ in 0..6 {
        let wrong = change("a wrong guess").await;
        assert_eq!(wrong.status.as_u16(), 400, "{}", wrong.json);
    }
    // Throttled: the right current password is refused too, for now.
    let right = change("plain password 0123").await;
    assert_eq!(right.status.as_u16(), 400, "{}", right.json);
    assert_eq!(right.json["scimType"], "invalidValue");
    // And the sign-in from the same address waits as well: one counter.
    grant(server, "plain", "plain password 0123", "openid")
        .await
        .assert_error(400, "invalid_grant");
    let refused = server
        .audit_events(latchkey_core::audit::AuditQuery {
            event_type: Some("user.password_change_refused".into()),
            start_index: 1,
            count: 100,
            ..Default::default()
        })
        .await;
    let attempts: u64 = refused
        .iter()
        .map(|e| u64::from(e.occurrences.max(1)))
        .sum();
    assert!(attempts >= 6, "{refused:?}");
}

/// Finding 6: a deactivated app's client_credentials token came back to
/// life after reactivation, a secret rotation, or delete-and-recreate.
async fn an_app_token_dies_for_good_with_its_deactivation_or_its_app(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let robot = client_token(server, "robot", "robot-secret-0123456789").await;
    let old = robot.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let works = |token: String| async move {
        call(server, Method::GET, "/admin/v1/AuditEvents", &token, None)
            .await
            .status
            .as_u16()
            == 200
    };
    assert!(works(old.clone()).await);
    let set_active = |active: bool| {
        let root = root.clone();
        async move {
            let answer = call(
                server,
                Method::PUT,
                "/admin/v1/Apps/robot",
                &root,
                Some(json!({"name": "Robot", "type": "trusted", "grant_types": ["client_credentials"], "scopes": [MY_SCOPES], "app_roles": ["Audit Administrator"], "active": active})),
            )
            .await;
            assert_eq!(answer.status.as_u16(), 200, "{}", answer.json);
        }
    };
    set_active(false).await;
    assert!(!works(old.clone()).await);
    set_active(true).await;
    assert!(!works(old.clone()).await, "reactivation revived the token");
    let rotated = call(
        server,
        Method::POST,
        "/admin/v1/Apps/robot/secret",
        &root,
        Some(json!({})),
    )
    .await;
    assert_eq!(rotated.status.as_u16(), 200, "{}", rotated.json);
    assert!(!works(old.clone()).await, "rotation revived the token");
    // Introspection agrees.
    let introspected = post_form(
        server,
        "/oauth2/v1/introspect",
        Some(&basic("hr-mobile", latchkey_testkit::HR_SECRET)),
        &[("token", &old)],
    )
    .await;
    assert_eq!(introspected.json["active"], false, "{}", introspected.json);

    // A new token (a second later than the deactivation) works; then the
    // app is deleted and made again with the same client_id.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let secret = rotated.json["client_secret"].as_str().unwrap().to_owned();
    let fresh = client_token(server, "robot", &secret).await;
    let fresh = fresh.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(works(fresh.clone()).await);
    let gone = call(server, Method::DELETE, "/admin/v1/Apps/robot", &root, None).await;
    assert!(gone.status.is_success(), "{}", gone.json);
    let again = call(
        server,
        Method::POST,
        "/admin/v1/Apps",
        &root,
        Some(json!({"name": "Robot", "client_id": "robot", "type": "trusted", "grant_types": ["client_credentials"], "scopes": [MY_SCOPES], "app_roles": ["Audit Administrator"]})),
    )
    .await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.json);
    assert!(
        !works(fresh).await,
        "a token of the deleted app works for its successor"
    );
}

/// Finding 12: a public client (client_id only) learned what any app's
/// access token holds.
async fn introspection_needs_a_confidential_client(server: &TestServer) {
    prepare(server).await;
    let alice = alice_grant(server, latchkey_testkit::READ).await;
    let token = alice.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let public = post_form(
        server,
        "/oauth2/v1/introspect",
        None,
        &[("token", &token), ("client_id", "kiosk")],
    )
    .await;
    public.assert_error(401, "invalid_client");
    assert!(public.json.get("active").is_none(), "{}", public.json);
    let confidential = post_form(
        server,
        "/oauth2/v1/introspect",
        Some(&basic("reports:app", latchkey_testkit::REPORTS_SECRET)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(confidential.json["active"], true, "{}", confidential.json);
}

/// Finding 13: an `openid` token handed to any app could rewrite /Me.
async fn me_writes_need_the_self_service_scope(server: &TestServer) {
    prepare(server).await;
    let rename = patch(json!([{"op": "replace", "path": "displayName", "value": "Someone Else"}]));
    let openid = grant(server, "plain", "plain password 0123", "openid").await;
    let openid = openid.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(server, Method::GET, "/admin/v1/Me", &openid, None)
            .await
            .status
            .as_u16(),
        200
    );
    let refused = call(
        server,
        Method::PATCH,
        "/admin/v1/Me",
        &openid,
        Some(rename.clone()),
    )
    .await;
    denied(&refused);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(ME_SCOPE),
        "{:?}",
        refused.headers
    );
    let me = grant(
        server,
        "plain",
        "plain password 0123",
        &format!("openid {ME_SCOPE}"),
    )
    .await;
    let me = me.assert_ok()["access_token"].as_str().unwrap().to_owned();
    let done = call(server, Method::PATCH, "/admin/v1/Me", &me, Some(rename)).await;
    assert_eq!(done.status.as_u16(), 200, "{}", done.json);
}
