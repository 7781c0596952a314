//! The admin API: bearer protection (RFC 6750), the role permission table
//! and the role intersection, and SCIM 2.0 Users, Groups and Me
//! (RFC 7643/7644) through the real server.

use latchkey_testkit::{ALICE_PASSWORD, Engine, HR_SECRET, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const CONSOLE_SECRET: &str = "console-secret-0123456789";
const LATCHKEY_USER: &str = "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User";

/// Users holding each kind of role, and an app allowed all six.
const ADMIN_DOMAIN: &str = r#"
[[users]]
username = "root"
password = "root password 0123"
app_roles = ["Identity Domain Administrator"]

[[users]]
username = "helen"
password = "helen password 0123"
app_roles = ["Help Desk Administrator"]

[[users]]
username = "sam"
password = "sam password 0123"
app_roles = ["Security Administrator"]

[[users]]
username = "plain"
password = "plain password 0123"

[[apps]]
name = "Console"
type = "trusted"
client_secret = "console-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["urn:opc:idm:__myscopes__", "urn:opc:idm:t.user.me", "openid", "offline_access", "https://hr.example.com/employees.read"]
app_roles = ["Identity Domain Administrator", "User Administrator", "Help Desk Administrator", "Application Administrator", "Security Administrator", "Audit Administrator"]

[[apps]]
name = "Blink Console"
type = "trusted"
client_secret = "blink-console-secret-0123"
grant_types = ["password"]
scopes = ["urn:opc:idm:__myscopes__"]
app_roles = ["Identity Domain Administrator"]
access_token_ttl = "1s"
"#;

async fn admin_server(engine: Engine) -> Option<TestServer> {
    let server = domain_server(engine).await?;
    server
        .apply(ADMIN_DOMAIN)
        .await
        .expect("the admin domain applies");
    Some(server)
}

/// An openid token for `username` with an explicit password.
async fn token_for_password(server: &TestServer, username: &str, password: &str) -> String {
    token_basic(
        server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", "openid"),
        ],
    )
    .await
    .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A token for `username` through the console app.
async fn token_for(server: &TestServer, username: &str, scope: &str) -> Value {
    let password = format!("{username} password 0123");
    token_basic(
        server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", &password),
            ("scope", scope),
        ],
    )
    .await
    .assert_ok()
    .clone()
}

async fn bearer_for(server: &TestServer, username: &str) -> String {
    token_for(server, username, MY_SCOPES).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// One admin API call.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, server.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    Answer::read(request.send().await.expect("the server answers")).await
}

async fn get(server: &TestServer, path: &str, token: &str) -> Answer {
    call(server, Method::GET, path, Some(token), None, None).await
}

#[track_caller]
fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.json);
    assert_eq!(
        answer.json["schemas"],
        json!([ERROR_SCHEMA]),
        "{}",
        answer.json
    );
    assert_eq!(answer.json["status"], status.to_string());
    assert_eq!(
        answer.json["scimType"].as_str(),
        scim_type,
        "{}",
        answer.json
    );
    assert!(answer.json["detail"].is_string());
}

fn challenge(answer: &Answer) -> String {
    answer.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rfc_6750_answer() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    let users = "/admin/v1/Users";

    // No token: 401 with a bare challenge.
    let answer = call(&server, Method::GET, users, None, None, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        challenge(&answer),
        format!("Bearer realm=\"{}\"", server.issuer())
    );
    // Another scheme counts as no token.
    let basic_answer = Answer::read(
        reqwest::Client::new()
            .get(server.url(users))
            .header("authorization", basic("console", CONSOLE_SECRET))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(basic_answer.status, 401);
    // A token in the query string is refused, not read.
    let token = bearer_for(&server, "root").await;
    let answer = Answer::read(
        reqwest::get(server.url(&format!("{users}?access_token={token}")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(challenge(&answer).contains("error=\"invalid_request\""));

    // Garbage, tampered, wrong type, wrong audience: invalid_token.
    let mut tampered = token.clone();
    // Flip the signature's first character (its last may be padding bits).
    let at = tampered.rfind('.').unwrap() + 1;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let openid = token_for(&server, "root", &format!("{MY_SCOPES} openid")).await;
    let id_token = openid["id_token"].as_str().unwrap().to_owned();
    let hr_only = token_for(&server, "root", latchkey_testkit::READ).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (case, bad) in [
        ("garbage", "not-a-token".to_owned()),
        ("tampered signature", tampered),
        ("an ID token (typ JWT)", id_token),
        ("a token for another audience", hr_only),
    ] {
        let answer = get(&server, users, &bad).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.json);
        assert!(
            challenge(&answer).contains("error=\"invalid_token\""),
            "{case}: {}",
            challenge(&answer)
        );
    }

    // Valid, but without the admin scope: 403 naming the scope needed.
    let openid_only = token_for(&server, "root", "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(&server, users, &openid_only).await;
    assert_eq!(answer.status, 403);
    let c = challenge(&answer);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains(&format!("scope=\"{MY_SCOPES}\"")), "{c}");

    // Expired.
    let blink = token_basic(
        &server,
        "blink-console",
        "blink-console-secret-0123",
        &[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", "root password 0123"),
            ("scope", MY_SCOPES),
        ],
    )
    .await;
    let blink = blink.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let answer = get(&server, users, &blink).await;
    assert_eq!(answer.status, 401, "expired: {}", answer.json);
    assert!(challenge(&answer).contains("invalid_token"));

    // Another issuer (a node of the same database configured with another
    // issuer signs with the same keys): the token is not ours.
    let mut settings = server.settings();
    settings.issuer = Some("https://elsewhere.example.com".into());
    let other = latchkey::server::start(settings).await.unwrap();
    let foreign = Answer::read(
        reqwest::Client::new()
            .post(format!("http://{}/oauth2/v1/token", other.addr))
            .header("authorization", basic("console", CONSOLE_SECRET))
            .header("content-type", FORM_CT)
            .body(form(&[
                ("grant_type", "password"),
                ("username", "root"),
                ("password", "root password 0123"),
                ("scope", MY_SCOPES),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let foreign = foreign.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(&server, users, &foreign).await;
    assert_eq!(answer.status, 401, "another issuer: {}", answer.json);
    assert!(challenge(&answer).contains("invalid_token"));
    other.stop().await.unwrap();

    // Revoked: refused at once.
    assert_eq!(get(&server, users, &token).await.status, 200);
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth2/v1/revoke"))
        .header("authorization", basic("console", CONSOLE_SECRET))
        .header("content-type", FORM_CT)
        .body(form(&[("token", &token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let answer = get(&server, users, &token).await;
    assert_eq!(answer.status, 401);
    assert!(challenge(&answer).contains("invalid_token"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_the_intersection_and_the_table_is_enforced() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    // alice holds User Administrator (through her group) and Help Desk
    // Administrator; hr-mobile holds User and Security Administrator: her
    // token through hr-mobile carries only User Administrator.
    let alice = token_basic(
        &server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("scope", MY_SCOPES),
        ],
    )
    .await;
    let alice = alice.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, claims) = verify_jwt(&server, &alice, server.issuer()).await;
    assert_eq!(claims["roles"], json!(["User Administrator"]));
    assert_eq!(get(&server, "/admin/v1/Users", &alice).await.status, 200);

    let plain_id = get(
        &server,
        "/admin/v1/Users?filter=userName%20eq%20%22plain%22",
        &alice,
    )
    .await
    .json["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_user = json!({"schemas": [USER_SCHEMA], "userName": "temp"});
    let rename = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "displayName", "value": "P"}]});
    let reset = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "password", "value": "plain password 0123"}]});
    let unlock = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User:locked", "value": false}]});
    let plain_path = format!("/admin/v1/Users/{plain_id}");

    struct Case<'a> {
        who: &'a str,
        list: u16,
        create: u16,
        rename: u16,
        reset: u16,
        unlock: u16,
    }
    for case in [
        Case {
            who: "root",
            list: 200,
            create: 201,
            rename: 200,
            reset: 200,
            unlock: 200,
        },
        Case {
            who: "helen",
            list: 200,
            create: 403,
            rename: 403,
            reset: 200,
            unlock: 200,
        },
        Case {
            who: "sam",
            list: 200,
            create: 403,
            rename: 403,
            reset: 403,
            unlock: 403,
        },
        Case {
            who: "plain",
            list: 403,
            create: 403,
            rename: 403,
            reset: 403,
            unlock: 403,
        },
    ] {
        let token = bearer_for(&server, case.who).await;
        let status = |a: Answer| a.status.as_u16();
        assert_eq!(
            status(get(&server, "/admin/v1/Users", &token).await),
            case.list,
            "{} list",
            case.who
        );
        let created = call(
            &server,
            Method::POST,
            "/admin/v1/Users",
            Some(&token),
            Some(new_user.clone()),
            None,
        )
        .await;
        assert_eq!(
            status(created.clone()),
            case.create,
            "{} create: {}",
            case.who,
            created.json
        );
        if created.status == 201 {
            let id = created.json["id"].as_str().unwrap();
            assert_eq!(
                call(
                    &server,
                    Method::DELETE,
                    &format!("/admin/v1/Users/{id}"),
                    Some(&token),
                    None,
                    None
                )
                .await
                .status,
                204
            );
        }
        assert_eq!(
            status(
                call(
                    &server,
                    Method::PATCH,
                    &plain_path,
                    Some(&token),
                    Some(rename.clone()),
                    None
                )
                .await
            ),
            case.rename,
            "{} rename",
            case.who
        );
        assert_eq!(
            status(
                call(
                    &server,
                    Method::PATCH,
                    &plain_path,
                    Some(&token),
                    Some(reset.clone()),
                    None
                )
                .await
            ),
            case.reset,
            "{} reset",
            case.who
        );
        assert_eq!(
            status(
                call(
                    &server,
                    Method::PATCH,
                    &plain_path,
                    Some(&token),
                    Some(unlock.clone()),
                    None
                )
                .await
            ),
            case.unlock,
            "{} unlock",
            case.who
        );
        if case.create == 403 {
            let refused = call(
                &server,
                Method::POST,
                "/admin/v1/Users",
                Some(&token),
                Some(new_user.clone()),
                None,
            )
            .await;
            assert!(challenge(&refused).contains("insufficient_scope"));
        }
    }
    // An administrator's lock stops sign-in until someone unlocks.
    let lock = |locked: bool| json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": format!("{LATCHKEY_USER}:locked"), "value": locked}]});
    let root = bearer_for(&server, "root").await;
    let helen = bearer_for(&server, "helen").await;
    let locked = call(
        &server,
        Method::PATCH,
        &plain_path,
        Some(&root),
        Some(lock(true)),
        None,
    )
    .await;
    assert_eq!(locked.status, 200, "{}", locked.json);
    assert_eq!(locked.json[LATCHKEY_USER]["locked"], true);
    let sign_in = || {
        token_basic(
            &server,
            "console",
            CONSOLE_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "plain"),
                ("password", "plain password 0123"),
            ],
        )
    };
    sign_in().await.assert_error(400, "invalid_grant");
    let refused = call(
        &server,
        Method::PATCH,
        &plain_path,
        Some(&helen),
        Some(lock(true)),
        None,
    )
    .await;
    assert_eq!(refused.status, 403, "a help desk unlocks but does not lock");
    let unlocked = call(
        &server,
        Method::PATCH,
        &plain_path,
        Some(&helen),
        Some(lock(false)),
        None,
    )
    .await;
    assert_eq!(unlocked.json[LATCHKEY_USER]["locked"], false);
    sign_in().await.assert_ok();

    // Every user reads their own profile, whatever their roles.
    let plain = token_for(&server, "plain", "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = get(&server, "/admin/v1/Me", &plain).await;
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json["userName"], "plain");
    server.stop().await;
}

on_both_engines!(
    users_crud_filters_paging_and_etags,
    groups_and_their_members,
    revoking_a_refresh_token_cuts_off_its_access_tokens_at_the_users_api
);

async fn users_crud_filters_paging_and_etags(server: &TestServer) {
    server.apply(ADMIN_DOMAIN).await.unwrap();
    let root = bearer_for(server, "root").await;
    let post = |body: Value| {
        call(
            server,
            Method::POST,
            "/admin/v1/Users",
            Some(&root),
            Some(body),
            None,
        )
    };

    let created = post(json!({
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "externalId": "hr-42",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "password": "barbara's long password",
    }))
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.headers["content-type"], "application/scim+json");
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("{}/admin/v1/Users/{id}", server.issuer())
    );
    assert_eq!(
        created.headers["etag"],
        created.json["meta"]["version"].as_str().unwrap()
    );
    assert!(
        created.json.get("password").is_none(),
        "password is write-only"
    );
    assert_eq!(created.json["name"]["formatted"], "Barbara Jensen");
    // The new user signs in with the password written through SCIM.
    token_basic(
        server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "bjensen"),
            ("password", "barbara's long password"),
        ],
    )
    .await
    .assert_ok();

    assert_scim_error(
        &post(json!({"schemas": [USER_SCHEMA], "userName": "BJENSEN"})).await,
        409,
        Some("uniqueness"),
    );
    assert_scim_error(
        &post(json!({"schemas": [USER_SCHEMA], "userName": "x", "password": "short"})).await,
        400,
        Some("invalidValue"),
    );
    // A breached password is refused however it is capitalised (NIST SP 800-63B).
    let breached =
        post(json!({"schemas": [USER_SCHEMA], "userName": "x", "password": "Sunshine1"})).await;
    assert_scim_error(&breached, 400, Some("invalidValue"));
    assert!(
        breached.json.to_string().contains("breached"),
        "{}",
        breached.json
    );
    assert_scim_error(
        &post(json!({"userName": "noschema"})).await,
        400,
        Some("invalidSyntax"),
    );
    let not_json = Answer::read(
        reqwest::Client::new()
            .post(server.url("/admin/v1/Users"))
            .header("authorization", format!("Bearer {root}"))
            .header("content-type", "application/scim+json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_scim_error(&not_json, 400, Some("invalidSyntax"));
    let wrong_type = Answer::read(
        reqwest::Client::new()
            .post(server.url("/admin/v1/Users"))
            .header("authorization", format!("Bearer {root}"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_scim_error(&wrong_type, 415, None);

    let user_path = format!("/admin/v1/Users/{id}");
    let fetched = get(server, &user_path, &root).await;
    assert_eq!(fetched.json, created.json);
    assert_scim_error(
        &get(server, "/admin/v1/Users/no-such-id", &root).await,
        404,
        None,
    );

    // Lists: filters, sorting, paging, projections.
    let list = |query: &str| {
        let path = format!("/admin/v1/Users?{query}");
        let root = root.clone();
        async move { get(server, &path, &root).await }
    };
    let names = |answer: &Answer| -> Vec<String> {
        answer.json["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = list("filter=userName%20eq%20%22BJensen%22").await;
    assert_eq!(
        found.json["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (found.json["totalResults"].clone(), names(&found)),
        (json!(1), vec!["bjensen".to_owned()])
    );
    let filter = url_encode(
        r#"emails[type eq "work" and value co "@example.com"] and not (userName sw "a")"#,
    );
    assert_eq!(names(&list(&format!("filter={filter}")).await), ["bjensen"]);
    let filter = url_encode(r#"name.familyName co "jens" or externalId eq "hr-42""#);
    assert_eq!(names(&list(&format!("filter={filter}")).await), ["bjensen"]);
    let sorted = list("sortBy=userName&sortOrder=descending&startIndex=2&count=2").await;
    assert_eq!(sorted.json["startIndex"], 2);
    assert_eq!(sorted.json["itemsPerPage"], 2);
    assert_eq!(
        sorted.json["totalResults"], 8,
        "admin, alice, mallory, root, helen, sam, plain, bjensen"
    );
    assert_eq!(names(&sorted), ["root", "plain"]);
    let projected =
        list("filter=userName%20eq%20%22bjensen%22&attributes=userName,name.familyName").await;
    assert_eq!(
        projected.json["Resources"][0],
        json!({"schemas": [USER_SCHEMA, LATCHKEY_USER], "id": id, "userName": "bjensen", "name": {"familyName": "Jensen"}})
    );
    let excluded =
        list("filter=userName%20eq%20%22bjensen%22&excludedAttributes=emails,meta").await;
    assert!(excluded.json["Resources"][0].get("emails").is_none());
    assert!(excluded.json["Resources"][0].get("meta").is_none());
    // Cursor paging (RFC 9865): every user once, following nextCursor.
    let mut cursor = String::new();
    let mut walked = Vec::new();
    loop {
        let page = list(&format!("count=3&cursor={cursor}")).await;
        assert_eq!(page.status, 200, "{}", page.json);
        assert!(page.json.get("startIndex").is_none());
        walked.extend(names(&page));
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked.len(), 8, "{walked:?}");
    assert_scim_error(
        &list("cursor=bm90LWFuLWlk!").await,
        400,
        Some("invalidCursor"),
    );
    assert_scim_error(
        &list("cursor=&startIndex=2").await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &list("filter=userName%20eq").await,
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &list("filter=nickName%20pr").await,
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &list("sortBy=emails[type%20eq%20%22work%22]").await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&list("count=ten").await, 400, Some("invalidValue"));
    assert_scim_error(
        &list("filter=a%20pr&filter=b%20pr").await,
        400,
        Some("invalidValue"),
    );

    // PUT replaces; If-Match guards against lost updates.
    let etag = fetched.headers["etag"].to_str().unwrap().to_owned();
    let replacement = json!({
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen-Smith"},
        "emails": [{"value": "babs@example.org", "primary": true}],
    });
    let put = call(
        server,
        Method::PUT,
        &user_path,
        Some(&root),
        Some(replacement.clone()),
        Some(&etag),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.json);
    assert_ne!(put.headers["etag"].to_str().unwrap(), etag);
    assert!(
        put.json.get("displayName").is_none(),
        "PUT replaces: unset attributes are cleared"
    );
    assert_scim_error(
        &call(
            server,
            Method::PUT,
            &user_path,
            Some(&root),
            Some(replacement),
            Some(&etag),
        )
        .await,
        412,
        None,
    );

    // PATCH: all three operations, a value filter, the password.
    let patched = call(
        server,
        Method::PATCH,
        &user_path,
        Some(&root),
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "add", "path": "displayName", "value": "Babs"},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.net"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "replace", "path": "password", "value": "another long password"},
        ]})),
        None,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(patched.json["displayName"], "Babs");
    assert_eq!(patched.json["emails"][0]["value"], "barbara@example.net");
    assert!(patched.json["name"].get("givenName").is_none());
    assert!(patched.json.get("password").is_none());
    let sign_in = async |password: &'static str| {
        token_basic(
            server,
            "console",
            CONSOLE_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "bjensen"),
                ("password", password),
            ],
        )
        .await
    };
    sign_in("another long password").await.assert_ok();
    sign_in("barbara's long password")
        .await
        .assert_error(400, "invalid_grant");
    for (ops, status, scim_type) in [
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            400,
            Some("mutability"),
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            400,
            Some("mutability"),
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x"}]),
            400,
            Some("noTarget"),
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            400,
            Some("invalidValue"),
        ),
    ] {
        let answer = call(
            server,
            Method::PATCH,
            &user_path,
            Some(&root),
            Some(json!({"schemas": [PATCH_SCHEMA], "Operations": ops})),
            None,
        )
        .await;
        assert_scim_error(&answer, status, scim_type);
    }

    // Deactivation through SCIM ends the user's sessions.
    let session = token_basic(
        server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "bjensen"),
            ("password", "another long password"),
            ("scope", "offline_access"),
        ],
    )
    .await;
    let refresh = session.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = call(
        server,
        Method::PATCH,
        &user_path,
        Some(&root),
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": false}}]})),
        None,
    )
    .await;
    assert_eq!(off.json["active"], false);
    token_basic(
        server,
        "console",
        CONSOLE_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .assert_error(400, "invalid_grant");

    // DELETE.
    let etag = off.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        call(
            server,
            Method::DELETE,
            &user_path,
            Some(&root),
            None,
            Some("W/\"1\"")
        )
        .await
        .status,
        412
    );
    let deleted = call(
        server,
        Method::DELETE,
        &user_path,
        Some(&root),
        None,
        Some(&etag),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_scim_error(&get(server, &user_path, &root).await, 404, None);
}

async fn groups_and_their_members(server: &TestServer) {
    server.apply(ADMIN_DOMAIN).await.unwrap();
    let root = bearer_for(server, "root").await;
    let id_of = |name: &'static str| {
        let root = root.clone();
        async move {
            get(
                server,
                &format!("/admin/v1/Users?filter=userName%20eq%20%22{name}%22"),
                &root,
            )
            .await
            .json["Resources"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (plain, sam) = (id_of("plain").await, id_of("sam").await);
    let created = call(
        server,
        Method::POST,
        "/admin/v1/Groups",
        Some(&root),
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": plain, "type": "User"}]})),
        None,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let group_path = format!("/admin/v1/Groups/{}", created.json["id"].as_str().unwrap());
    assert_eq!(created.json["members"][0]["display"], "plain");
    let patched = call(
        server,
        Method::PATCH,
        &group_path,
        Some(&root),
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": sam}]},
            {"op": "remove", "path": format!("members[value eq \"{plain}\"]")},
            {"op": "replace", "path": "displayName", "value": "Operations"},
        ]})),
        None,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(patched.json["displayName"], "Operations");
    assert_eq!(patched.json["members"].as_array().unwrap().len(), 1);
    assert_eq!(patched.json["members"][0]["value"], sam.as_str());
    let listed = get(
        server,
        &format!(
            "/admin/v1/Groups?filter={}",
            url_encode(&format!("members.value eq \"{sam}\""))
        ),
        &root,
    )
    .await;
    assert_eq!(listed.json["totalResults"], 1);
    // The user's groups show on the user.
    let sam_doc = get(server, &format!("/admin/v1/Users/{sam}"), &root).await;
    assert_eq!(sam_doc.json["groups"][0]["display"], "Operations");
    assert_scim_error(
        &call(server, Method::POST, "/admin/v1/Groups", Some(&root), Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Bad", "members": [{"value": "nobody"}]})), None).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &call(
            server,
            Method::POST,
            "/admin/v1/Groups",
            Some(&root),
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Operations"})),
            None,
        )
        .await,
        409,
        Some("uniqueness"),
    );
    assert_eq!(
        call(server, Method::DELETE, &group_path, Some(&root), None, None)
            .await
            .status,
        204
    );
    assert!(
        get(server, &format!("/admin/v1/Users/{sam}"), &root)
            .await
            .json
            .get("groups")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_and_the_discovery_documents() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    let plain = token_for(&server, "plain", "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = get(&server, "/admin/v1/Me", &plain).await;
    let etag = me.headers["etag"].to_str().unwrap().to_owned();
    let rename = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "displayName", "value": "Plain Jane"}]});
    // An openid token reads /Me but may not change it: self-service
    // writes need the scope meant for them.
    let refused = call(
        &server,
        Method::PATCH,
        "/admin/v1/Me",
        Some(&plain),
        Some(rename.clone()),
        Some(&etag),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    let plain = token_for(&server, "plain", "openid urn:opc:idm:t.user.me").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = call(
        &server,
        Method::PATCH,
        "/admin/v1/Me",
        Some(&plain),
        Some(rename),
        Some(&etag),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(patched.json["displayName"], "Plain Jane");
    let deactivate = call(
        &server,
        Method::PATCH,
        "/admin/v1/Me",
        Some(&plain),
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": false}]})),
        None,
    )
    .await;
    assert_scim_error(&deactivate, 400, Some("mutability"));

    // A new password through /Me needs the current one.
    let change = |ops: Value| {
        call(
            &server,
            Method::PATCH,
            "/admin/v1/Me",
            Some(&plain),
            Some(json!({"schemas": [PATCH_SCHEMA], "Operations": ops})),
            None,
        )
    };
    let new_password =
        json!({"op": "replace", "path": "password", "value": "plain's new password"});
    let proof = |p: &str| json!({"op": "add", "path": format!("{LATCHKEY_USER}:currentPassword"), "value": p});
    assert_scim_error(
        &change(json!([new_password])).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &change(json!([new_password, proof("a wrong guess")])).await,
        400,
        Some("invalidValue"),
    );
    let changed = change(json!([proof("plain password 0123"), new_password])).await;
    assert_eq!(changed.status, 200, "{}", changed.json);
    assert!(changed.json.to_string().find("currentPassword").is_none());
    token_basic(
        &server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "plain"),
            ("password", "plain's new password"),
        ],
    )
    .await
    .assert_ok();
    // The change ended the session the token belonged to.
    assert_eq!(get(&server, "/admin/v1/Me", &plain).await.status, 401);
    let plain = token_for_password(&server, "plain", "plain's new password").await;

    let spc = get(&server, "/admin/v1/ServiceProviderConfig", &plain).await;
    assert_eq!(spc.json["patch"]["supported"], true);
    assert_eq!(spc.json["etag"]["supported"], true);
    assert_eq!(spc.json["pagination"]["cursor"], true);
    let types = get(&server, "/admin/v1/ResourceTypes", &plain).await;
    assert_eq!(types.json["totalResults"], 2);
    assert_eq!(
        get(&server, "/admin/v1/ResourceTypes/User", &plain)
            .await
            .json["endpoint"],
        "/Users"
    );
    let schema = get(&server, &format!("/admin/v1/Schemas/{USER_SCHEMA}"), &plain).await;
    assert_eq!(schema.json["id"], USER_SCHEMA);
    assert_eq!(
        call(&server, Method::GET, "/admin/v1/Schemas", None, None, None)
            .await
            .status,
        401,
        "discovery needs a token too"
    );
    // The JWKS under /admin/v1 stays public.
    assert_eq!(
        reqwest::get(server.url("/admin/v1/SigningCert/jwk"))
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

/// Checks attributes against their definitions (RFC 7643 §2, §7): every
/// attribute is defined, of its type and multiplicity; required ones are
/// present; `returned: never` ones are absent.
fn check_attrs(value: &Value, defs: &[Value], at: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{at} is not an object"));
    for def in defs {
        let name = def["name"].as_str().unwrap();
        let present = object.keys().any(|k| k.eq_ignore_ascii_case(name));
        if def["required"] == true {
            assert!(present, "{at}.{name} is required");
        }
        if def["returned"] == "never" {
            assert!(!present, "{at}.{name} must never be returned");
        }
    }
    for (key, v) in object {
        let def = defs
            .iter()
            .find(|d| d["name"].as_str().unwrap().eq_ignore_ascii_case(key))
            .unwrap_or_else(|| panic!("{at}.{key} is not in the schema"));
        let values: Vec<&Value> = if def["multiValued"] == true {
            v.as_array()
                .unwrap_or_else(|| panic!("{at}.{key} must be an array"))
                .iter()
                .collect()
        } else {
            vec![v]
        };
        for v in values {
            match def["type"].as_str().unwrap() {
                "string" | "reference" | "dateTime" => assert!(v.is_string(), "{at}.{key}: {v}"),
                "boolean" => assert!(v.is_boolean(), "{at}.{key}: {v}"),
                "complex" => check_attrs(
                    v,
                    def["subAttributes"].as_array().unwrap(),
                    &format!("{at}.{key}"),
                ),
                other => panic!("unexpected type {other}"),
            }
        }
    }
}

/// A resource against its core schema and extensions; `schemas`, `id`
/// and `meta` are the common attributes of RFC 7643 §3.1.
fn check_resource(resource: &Value, schemas: &[&Value]) {
    let mut core = resource.as_object().unwrap().clone();
    let declared = core.remove("schemas").expect("schemas");
    assert!(core.remove("id").is_some_and(|id| id.is_string()));
    let meta = core.remove("meta").expect("meta");
    for key in [
        "resourceType",
        "created",
        "lastModified",
        "version",
        "location",
    ] {
        assert!(meta[key].is_string(), "meta.{key}");
    }
    for schema in schemas {
        let id = schema["id"].as_str().unwrap();
        assert!(declared.as_array().unwrap().iter().any(|s| s == id) || core.get(id).is_none());
        let defs = schema["attributes"].as_array().unwrap();
        match core.remove(id) {
            Some(extension) => check_attrs(&extension, defs, id),
            None if schemas[0]["id"] == id => {}
            None => continue,
        }
    }
    core.retain(|k, _| !k.starts_with("urn:"));
    check_attrs(
        &Value::Object(core),
        schemas[0]["attributes"].as_array().unwrap(),
        "resource",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_follow_the_published_schemas() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    let root = bearer_for(&server, "root").await;
    let mut published = Vec::new();
    for id in [USER_SCHEMA, GROUP_SCHEMA, LATCHKEY_USER] {
        published.push(
            get(&server, &format!("/admin/v1/Schemas/{id}"), &root)
                .await
                .json,
        );
    }
    let users = get(&server, "/admin/v1/Users", &root).await;
    let group = call(
        &server,
        Method::POST,
        "/admin/v1/Groups",
        Some(&root),
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Checked", "members": [{"value": users.json["Resources"][0]["id"]}]})),
        None,
    )
    .await;
    assert_eq!(group.status, 201);
    for user in users.json["Resources"].as_array().unwrap() {
        check_resource(user, &[&published[0], &published[2]]);
    }
    check_resource(&group.json, &[&published[1]]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_ended_through_the_admin_api() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    let root = bearer_for(&server, "root").await;
    let sam = bearer_for(&server, "sam").await;
    let signed_in = token_for(&server, "plain", &format!("{MY_SCOPES} offline_access")).await;
    let plain = signed_in["access_token"].as_str().unwrap().to_owned();
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_owned();
    let me = get(&server, "/admin/v1/Me", &plain).await;
    let id = me.json["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/Users/{id}/Sessions");

    let listed = get(&server, &path, &root).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json["totalResults"], 1);
    assert_eq!(listed.json["Resources"][0]["clientId"], "console");
    let sid = listed.json["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&server, &path, &plain).await.status,
        200,
        "one's own sessions"
    );
    let (_, claims) = verify_jwt(&server, &plain, server.issuer()).await;
    assert_eq!(claims["sid"], sid.as_str());

    let session_path = format!("/admin/v1/Sessions/{sid}");
    let refused = call(
        &server,
        Method::DELETE,
        &session_path,
        Some(&sam),
        None,
        None,
    )
    .await;
    assert_eq!(
        refused.status, 403,
        "reading users is not ending their sessions"
    );
    let ended = call(
        &server,
        Method::DELETE,
        &session_path,
        Some(&root),
        None,
        None,
    )
    .await;
    assert_eq!(ended.status, 204);
    // Every token of the session stops working.
    token_basic(
        &server,
        "console",
        CONSOLE_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .assert_error(400, "invalid_grant");
    assert_eq!(get(&server, "/admin/v1/Me", &plain).await.status, 401);
    assert_scim_error(
        &call(
            &server,
            Method::DELETE,
            &session_path,
            Some(&root),
            None,
            None,
        )
        .await,
        404,
        None,
    );
    // A user ends their own session.
    let again = token_for(&server, "plain", MY_SCOPES).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, claims) = verify_jwt(&server, &again, server.issuer()).await;
    let own = format!("/admin/v1/Sessions/{}", claims["sid"].as_str().unwrap());
    assert_eq!(
        call(&server, Method::DELETE, &own, Some(&again), None, None)
            .await
            .status,
        204
    );
    assert_eq!(get(&server, "/admin/v1/Me", &again).await.status, 401);
    server.stop().await;
}

/// The cascade: refresh token → session → access tokens, as the protected
/// API sees it.
async fn revoking_a_refresh_token_cuts_off_its_access_tokens_at_the_users_api(server: &TestServer) {
    server.apply(ADMIN_DOMAIN).await.unwrap();
    let signed_in = token_for(server, "root", &format!("{MY_SCOPES} offline_access")).await;
    let access = signed_in["access_token"].as_str().unwrap().to_owned();
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(get(server, "/admin/v1/Users", &access).await.status, 200);
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth2/v1/revoke"))
        .header("authorization", basic("console", CONSOLE_SECRET))
        .header("content-type", FORM_CT)
        .body(form(&[
            ("token", &refresh),
            ("token_type_hint", "refresh_token"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let answer = get(server, "/admin/v1/Users", &access).await;
    assert_eq!(answer.status, 401, "{}", answer.json);
    assert!(challenge(&answer).contains("invalid_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_changes_are_audited() {
    let server = admin_server(Engine::Sqlite).await.unwrap();
    let root = bearer_for(&server, "root").await;
    token_basic(
        &server,
        "console",
        CONSOLE_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "plain"),
            ("password", "a wrong password"),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    let plain_id = get(
        &server,
        "/admin/v1/Users?filter=userName%20eq%20%22plain%22",
        &root,
    )
    .await
    .json["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let locked = call(
        &server,
        Method::PATCH,
        &format!("/admin/v1/Users/{plain_id}"),
        Some(&root),
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": format!("{LATCHKEY_USER}:locked"), "value": true}]})),
        None,
    )
    .await;
    assert_eq!(locked.status, 200);

    let sam = bearer_for(&server, "sam").await;
    let failures = get(
        &server,
        "/admin/v1/AuditEvents?eventType=user.signin&subject=plain",
        &sam,
    )
    .await;
    assert_eq!(failures.status, 200, "{}", failures.json);
    let event = &failures.json["Resources"][0];
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["clientId"], "console");
    assert_eq!(event["detail"], "wrong password");
    assert_eq!(event["ip"], "127.0.0.1");
    assert!(
        !failures.json.to_string().contains("a wrong password"),
        "never a password"
    );
    let lock = get(&server, "/admin/v1/AuditEvents?eventType=user.locked", &sam).await;
    assert_eq!(lock.json["Resources"][0]["subject"], plain_id.as_str());
    let successes = get(
        &server,
        "/admin/v1/AuditEvents?eventType=user.signin&count=100",
        &root,
    )
    .await;
    assert!(
        successes.json["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "success")
    );
    // A help desk may not read the audit trail.
    let helen = bearer_for(&server, "helen").await;
    let refused = get(&server, "/admin/v1/AuditEvents", &helen).await;
    assert_eq!(refused.status, 403);
    assert_scim_error(
        &get(&server, "/admin/v1/AuditEvents?since=yesterday", &root).await,
        400,
        Some("invalidValue"),
    );
    server.stop().await;
}
