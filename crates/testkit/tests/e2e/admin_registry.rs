//! The JSON admin API for apps, resource servers and signing keys: every
//! operation, its refusals, the permission table, and the OpenAPI document
//! that describes it.

use reqwest::Method;
use serde_json::{Value, json};

use latchkey_testkit::{Engine, TestServer};

use crate::support::*;

const DOMAIN: &str = r#"
[[users]]
username = "root"
password = "root password 0123"
app_roles = ["Identity Domain Administrator"]

[[users]]
username = "sam"
password = "sam password 0123"
app_roles = ["Security Administrator"]

[[users]]
username = "apper"
password = "apper password 0123"
app_roles = ["Application Administrator"]

[[users]]
username = "helen"
password = "helen password 0123"
app_roles = ["Help Desk Administrator"]

[[users]]
username = "erin"
password = "erin password 0123"

[[apps]]
name = "Console"
type = "trusted"
client_secret = "console-secret-0123456789"
grant_types = ["password"]
scopes = ["urn:opc:idm:__myscopes__"]
app_roles = ["Identity Domain Administrator", "Security Administrator", "Application Administrator", "Help Desk Administrator"]
"#;

async fn bearer(server: &TestServer, username: &str) -> String {
    token_basic(
        server,
        "console",
        "console-secret-0123456789",
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", &format!("{username} password 0123")),
            ("scope", "urn:opc:idm:__myscopes__"),
        ],
    )
    .await
    .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, server.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    Answer::read(request.send().await.unwrap()).await
}

fn scim_error(answer: &Answer, status: u16, detail_has: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.json);
    assert!(
        answer.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(detail_has),
        "{detail_has:?} not in {}",
        answer.json
    );
}

async fn password_grant(server: &TestServer, client_id: &str, secret: &str) -> Answer {
    token_basic(
        server,
        client_id,
        secret,
        &[
            ("grant_type", "password"),
            ("username", "erin"),
            ("password", "erin password 0123"),
            ("scope", "https://payroll.example.com/run"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_resource_servers_and_keys_through_the_json_admin_api() {
    let server = TestServer::start_on(Engine::Sqlite, Default::default())
        .await
        .unwrap();
    server.apply(DOMAIN).await.unwrap();
    let root = bearer(&server, "root").await;
    let root = Some(root.as_str());

    // A resource server, then a duplicate of it.
    let payroll = json!({"name": "Payroll", "audience": "https://payroll.example.com/", "scopes": ["run", "read"]});
    let created = call(
        &server,
        Method::POST,
        "/admin/v1/ResourceServers",
        root,
        Some(payroll.clone()),
    )
    .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.json);
    assert_eq!(
        created.json["qualified_scopes"],
        json!([
            "https://payroll.example.com/run",
            "https://payroll.example.com/read"
        ])
    );
    let rs_id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("{}/admin/v1/ResourceServers/{rs_id}", server.issuer()).as_str()
    );
    scim_error(
        &call(
            &server,
            Method::POST,
            "/admin/v1/ResourceServers",
            root,
            Some(payroll),
        )
        .await,
        409,
        "exists",
    );
    scim_error(
        &call(&server, Method::POST, "/admin/v1/ResourceServers", root,
              Some(json!({"name": "Bad", "audience": "https://bad.example.com/", "scopes": ["has space"]}))).await,
        400, "scopes",
    );

    // A trusted app with the Resource Owner (password) grant: its secret is
    // in the answer once, and works at the token endpoint at once.
    let app = json!({
        "name": "Payroll Runner", "type": "trusted",
        "grant_types": ["password", "refresh_token"],
        "redirect_uris": ["https://payroll.example.com/callback"],
        "scopes": ["https://payroll.example.com/run", "offline_access"],
        "refresh_token_reuse_interval": "10s",
    });
    let created = call(
        &server,
        Method::POST,
        "/admin/v1/Apps",
        root,
        Some(app.clone()),
    )
    .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.json);
    assert_eq!(created.json["client_id"], "payroll-runner");
    assert_eq!(created.json["refresh_token_reuse_interval"], 10);
    let secret = created.json["client_secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    let app_id = created.json["id"].as_str().unwrap().to_owned();
    password_grant(&server, "payroll-runner", &secret)
        .await
        .assert_ok();
    scim_error(
        &call(&server, Method::POST, "/admin/v1/Apps", root, Some(app)).await,
        409,
        "exists",
    );

    // Read back: by id or client_id, never a secret or its hash.
    let listed = call(&server, Method::GET, "/admin/v1/Apps", root, None).await;
    assert_eq!(listed.status.as_u16(), 200);
    // The two made here, and the built-in console app (created at start).
    assert_eq!(listed.json["totalResults"], 3);
    for path in [
        format!("/admin/v1/Apps/{app_id}"),
        "/admin/v1/Apps/payroll-runner".to_owned(),
    ] {
        let one = call(&server, Method::GET, &path, root, None).await;
        assert_eq!(one.json["id"], app_id.as_str());
        assert!(one.json.get("client_secret").is_none());
        assert!(!one.json.to_string().contains(&secret));
        assert!(!one.json.to_string().contains("hmac-sha256"));
    }
    scim_error(
        &call(&server, Method::GET, "/admin/v1/Apps/nope", root, None).await,
        404,
        "nope",
    );

    // Refused input names the field.
    for (body, field) in [
        (
            json!({"name": "X", "type": "trusted", "scopes": ["https://nowhere.example.com/x"]}),
            "scopes",
        ),
        (json!({"name": "X", "type": "sideways"}), "type"),
        (
            json!({"name": "X", "type": "trusted", "grant_types": ["implicit"]}),
            "grant_types",
        ),
        (
            json!({"name": "X", "type": "trusted", "colour": "red"}),
            "colour",
        ),
    ] {
        scim_error(
            &call(&server, Method::POST, "/admin/v1/Apps", root, Some(body)).await,
            400,
            field,
        );
    }

    // Replace: rename and deactivate (its authentication then fails), then
    // reactivate; the client_id never changes.
    let mut replaced = json!({
        "name": "Payroll Runner 2", "type": "trusted", "active": false,
        "grant_types": ["password", "refresh_token"],
        "redirect_uris": ["https://payroll.example.com/callback"],
        "scopes": ["https://payroll.example.com/run", "offline_access"],
    });
    let put = call(
        &server,
        Method::PUT,
        &format!("/admin/v1/Apps/{app_id}"),
        root,
        Some(replaced.clone()),
    )
    .await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.json);
    assert_eq!(
        (put.json["name"].as_str(), put.json["active"].as_bool()),
        (Some("Payroll Runner 2"), Some(false))
    );
    assert_eq!(
        put.json["has_secret"], true,
        "a replace without a secret keeps it"
    );
    password_grant(&server, "payroll-runner", &secret)
        .await
        .assert_error(401, "invalid_client");
    replaced["active"] = json!(true);
    call(
        &server,
        Method::PUT,
        &format!("/admin/v1/Apps/{app_id}"),
        root,
        Some(replaced.clone()),
    )
    .await;
    password_grant(&server, "payroll-runner", &secret)
        .await
        .assert_ok();
    replaced["client_id"] = json!("renamed");
    scim_error(
        &call(
            &server,
            Method::PUT,
            &format!("/admin/v1/Apps/{app_id}"),
            root,
            Some(replaced),
        )
        .await,
        400,
        "client_id",
    );

    // Secret rotation with a grace period: both work; without: only the new.
    let rotated = call(
        &server,
        Method::POST,
        &format!("/admin/v1/Apps/{app_id}/secret"),
        root,
        Some(json!({"grace": "1h"})),
    )
    .await;
    assert_eq!(rotated.status.as_u16(), 200, "{}", rotated.json);
    let second = rotated.json["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated.json["previous_secret_expires_at"].is_number());
    password_grant(&server, "payroll-runner", &second)
        .await
        .assert_ok();
    password_grant(&server, "payroll-runner", &secret)
        .await
        .assert_ok();
    let rotated = call(
        &server,
        Method::POST,
        &format!("/admin/v1/Apps/{app_id}/secret"),
        root,
        None,
    )
    .await;
    let third = rotated.json["client_secret"].as_str().unwrap().to_owned();
    password_grant(&server, "payroll-runner", &second)
        .await
        .assert_error(401, "invalid_client");
    password_grant(&server, "payroll-runner", &third)
        .await
        .assert_ok();
    scim_error(
        &call(
            &server,
            Method::POST,
            &format!("/admin/v1/Apps/{app_id}/secret"),
            root,
            Some(json!({"grace": "90d"})),
        )
        .await,
        400,
        "grace",
    );

    // A scope an app may be granted cannot be taken away, nor its server.
    scim_error(
        &call(&server, Method::PUT, &format!("/admin/v1/ResourceServers/{rs_id}"), root,
              Some(json!({"name": "Payroll", "audience": "https://payroll.example.com/", "scopes": ["read"]}))).await,
        409, "payroll-runner",
    );
    let renamed = call(&server, Method::PUT, &format!("/admin/v1/ResourceServers/{rs_id}"), root,
        Some(json!({"name": "Payroll API", "audience": "https://payroll.example.com/", "scopes": ["run", "read", "write"]}))).await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.json);
    assert_eq!(renamed.json["scopes"], json!(["run", "read", "write"]));
    scim_error(
        &call(
            &server,
            Method::PUT,
            &format!("/admin/v1/ResourceServers/{rs_id}"),
            root,
            Some(json!({"name": "Payroll", "audience": "https://elsewhere.example.com/"})),
        )
        .await,
        400,
        "audience",
    );
    scim_error(
        &call(
            &server,
            Method::DELETE,
            &format!("/admin/v1/ResourceServers/{rs_id}"),
            root,
            None,
        )
        .await,
        409,
        "payroll-runner",
    );
    let deleted = call(
        &server,
        Method::DELETE,
        &format!("/admin/v1/Apps/{app_id}"),
        root,
        None,
    )
    .await;
    assert_eq!(deleted.status.as_u16(), 204);
    password_grant(&server, "payroll-runner", &third)
        .await
        .assert_error(401, "invalid_client");
    let deleted = call(
        &server,
        Method::DELETE,
        &format!("/admin/v1/ResourceServers/{rs_id}"),
        root,
        None,
    )
    .await;
    assert_eq!(deleted.status.as_u16(), 204);
    scim_error(
        &call(
            &server,
            Method::GET,
            &format!("/admin/v1/ResourceServers/{rs_id}"),
            root,
            None,
        )
        .await,
        404,
        "",
    );

    // Signing keys: a Security Administrator lists and rotates; the new
    // key is in the JWKS at once and signs `publish_ahead` later; no
    // private part is ever shown.
    let sam = bearer(&server, "sam").await;
    let keys = call(
        &server,
        Method::GET,
        "/admin/v1/SigningKeys",
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(keys.status.as_u16(), 200, "{}", keys.json);
    assert_eq!(keys.json["totalResults"], 1);
    let rotated = call(
        &server,
        Method::POST,
        "/admin/v1/SigningKeys",
        Some(&sam),
        Some(json!({"alg": "EdDSA"})),
    )
    .await;
    assert_eq!(rotated.status.as_u16(), 201, "{}", rotated.json);
    assert_eq!(
        (rotated.json["alg"].as_str(), rotated.json["state"].as_str()),
        (Some("EdDSA"), Some("next"))
    );
    assert_eq!(
        rotated.json["activates_at"].as_i64().unwrap()
            - rotated.json["created_at"].as_i64().unwrap(),
        300
    );
    let kid = rotated.json["kid"].as_str().unwrap();
    // One waits at a time.
    let twice = call(
        &server,
        Method::POST,
        "/admin/v1/SigningKeys",
        Some(&sam),
        Some(json!({"alg": "EdDSA"})),
    )
    .await;
    assert_eq!(twice.status.as_u16(), 409, "{}", twice.json);
    assert!(
        twice.json["detail"].as_str().unwrap().contains(kid),
        "{}",
        twice.json
    );
    let published = jwks(&server).await;
    assert!(
        published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    );
    let keys = call(
        &server,
        Method::GET,
        "/admin/v1/SigningKeys",
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(
        keys.json["Resources"][0]["state"], "active",
        "the active key first"
    );
    assert_eq!(
        (
            keys.json["Resources"][1]["kid"].as_str(),
            keys.json["Resources"][1]["state"].as_str()
        ),
        (Some(kid), Some("next"))
    );
    // The emergency path signs at once, and drops the waiting key.
    let now = call(
        &server,
        Method::POST,
        "/admin/v1/SigningKeys",
        Some(&sam),
        Some(json!({"now": true})),
    )
    .await;
    assert_eq!(now.status.as_u16(), 201, "{}", now.json);
    assert_eq!(now.json["state"], "active");
    let keys = call(
        &server,
        Method::GET,
        "/admin/v1/SigningKeys",
        Some(&sam),
        None,
    )
    .await;
    let states: Vec<&str> = keys.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "retiring", "retired"], "{}", keys.json);
    assert_eq!(keys.json["Resources"][0]["kid"], now.json["kid"]);
    for key in keys.json["Resources"].as_array().unwrap() {
        assert!(key["public_jwk"].get("d").is_none() && key.get("encrypted_private_key").is_none());
    }
    scim_error(
        &call(
            &server,
            Method::POST,
            "/admin/v1/SigningKeys",
            Some(&sam),
            Some(json!({"alg": "HS256"})),
        )
        .await,
        400,
        "alg",
    );

    // Every change is an audit event naming who made it.
    let events = call(
        &server,
        Method::GET,
        "/admin/v1/AuditEvents?eventType=app.created",
        root,
        None,
    )
    .await;
    assert_eq!(events.json["totalResults"], 1, "{}", events.json);
    let events = call(
        &server,
        Method::GET,
        "/admin/v1/AuditEvents?eventType=resource_server.deleted",
        root,
        None,
    )
    .await;
    assert_eq!(events.json["totalResults"], 1, "{}", events.json);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_table_holds_for_apps_and_keys() {
    let server = TestServer::start_on(Engine::Sqlite, Default::default())
        .await
        .unwrap();
    server.apply(DOMAIN).await.unwrap();
    let app = json!({"name": "Nope", "type": "public", "grant_types": ["password"]});
    let (sam, apper, helen) = (
        bearer(&server, "sam").await,
        bearer(&server, "apper").await,
        bearer(&server, "helen").await,
    );
    let status = |a: Answer| a.status.as_u16();
    // Security Administrator: read apps, read and rotate keys, change no app.
    assert_eq!(
        status(call(&server, Method::GET, "/admin/v1/Apps", Some(&sam), None).await),
        200
    );
    assert_eq!(
        status(
            call(
                &server,
                Method::POST,
                "/admin/v1/Apps",
                Some(&sam),
                Some(app.clone())
            )
            .await
        ),
        403
    );
    // Application Administrator: apps and resource servers, no keys.
    assert_eq!(
        status(
            call(
                &server,
                Method::POST,
                "/admin/v1/Apps",
                Some(&apper),
                Some(app)
            )
            .await
        ),
        201
    );
    assert_eq!(
        status(
            call(
                &server,
                Method::GET,
                "/admin/v1/ResourceServers",
                Some(&apper),
                None
            )
            .await
        ),
        200
    );
    let denied = call(
        &server,
        Method::GET,
        "/admin/v1/SigningKeys",
        Some(&apper),
        None,
    )
    .await;
    assert_eq!(denied.status.as_u16(), 403);
    assert!(
        denied.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // Help Desk Administrator: none of it.
    for path in [
        "/admin/v1/Apps",
        "/admin/v1/ResourceServers",
        "/admin/v1/SigningKeys",
    ] {
        assert_eq!(
            status(call(&server, Method::GET, path, Some(&helen), None).await),
            403,
            "{path}"
        );
    }
    assert_eq!(
        status(call(&server, Method::GET, "/admin/v1/Apps", None, None).await),
        401
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_operation() {
    let server = TestServer::start_on(Engine::Sqlite, Default::default())
        .await
        .unwrap();
    let doc = call(&server, Method::GET, "/admin/v1/openapi.json", None, None).await;
    assert_eq!(
        doc.status.as_u16(),
        200,
        "public, like the discovery documents"
    );
    assert_eq!(doc.json["openapi"], "3.1.0");
    assert_eq!(doc.json["servers"][0]["url"], server.issuer());
    let paths = doc.json["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue; // "parameters"
            }
            let method: Method = method.to_uppercase().parse().unwrap();
            operations += 1;
            // Every $ref resolves.
            for reference in refs(op) {
                let name = reference.trim_start_matches("#/components/");
                let (kind, name) = name.split_once('/').unwrap();
                assert!(
                    doc.json["components"][kind][name].is_object(),
                    "{reference} in {path}"
                );
            }
            let concrete = path.replace("{id}", "some-id");
            let answer = call(&server, method.clone(), &concrete, None, None).await;
            let expected = if op.get("security") == Some(&json!([])) {
                200
            } else {
                401
            };
            assert_eq!(
                answer.status.as_u16(),
                expected,
                "{method} {path} is routed and protected as documented"
            );
        }
    }
    assert_eq!(operations, 14, "every operation is documented once");
    server.stop().await;
}

fn refs(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => vec![r.clone()],
                _ => refs(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}
