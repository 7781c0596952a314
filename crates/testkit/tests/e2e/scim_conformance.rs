//! What SCIM clients and the scim2-tester conformance checker tripped
//! over: the attributes that guard sign-in under PUT and PATCH, SCIM
//! bodies for every answer under the SCIM base, `.search`, what /Schemas
//! says of derived attributes, PATCH of the extension as a whole, group
//! externalId, and the forms Entra and Okta send.

use reqwest::Method;
use serde_json::{Value, json};

use latchkey_testkit::TestServer;

use crate::escalation::{bearer, call, id_of, prepare};
use crate::support::*;

on_both_engines!(
    removing_or_leaving_out_a_sign_in_guard_never_enables_an_account,
    every_answer_under_the_scim_base_is_a_scim_body,
    search_requests_are_lists_sent_as_a_body,
    schemas_say_what_the_server_does_with_derived_attributes,
    the_extension_can_be_patched_as_a_whole,
    a_groups_external_id_is_kept,
    the_forms_provisioning_clients_send_are_understood,
);

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User";

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

fn scim_error(answer: &Answer, status: u16) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.json);
    assert_eq!(
        answer.json["schemas"],
        json!([ERROR_SCHEMA]),
        "{}",
        answer.json
    );
    assert_eq!(answer.json["status"], status.to_string(), "{}", answer.json);
}

async fn signs_in(server: &TestServer) -> bool {
    token_basic(
        server,
        "attack-console",
        "attack-console-secret-0123",
        &[
            ("grant_type", "password"),
            ("username", "plain"),
            ("password", "plain password 0123"),
            ("scope", "openid"),
        ],
    )
    .await
    .status
    .is_success()
}

async fn removing_or_leaving_out_a_sign_in_guard_never_enables_an_account(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let plain = id_of(server, "plain").await;
    let path = format!("/admin/v1/Users/{plain}");
    let set = |ops: Value| {
        let root = root.clone();
        let path = path.clone();
        async move { call(server, Method::PATCH, &path, &root, Some(patch(ops))).await }
    };
    let off = set(json!([{"op": "replace", "path": "active", "value": false}])).await;
    assert_eq!(off.status.as_u16(), 200, "{}", off.json);
    assert!(!signs_in(server).await);

    // remove of active, of password and of locked: refused, nothing changes.
    for target in ["active", "password", &format!("{EXTENSION}:locked")] {
        let removed = set(json!([{"op": "remove", "path": target}])).await;
        scim_error(&removed, 400);
        assert_eq!(removed.json["scimType"], "invalidValue");
    }
    assert!(!signs_in(server).await);

    // A PUT that leaves active out keeps the user deactivated.
    let put = json!({"schemas": [USER_SCHEMA], "userName": "plain", "displayName": "Plain"});
    let replaced = call(server, Method::PUT, &path, &root, Some(put.clone())).await;
    assert_eq!(replaced.status.as_u16(), 200, "{}", replaced.json);
    assert_eq!(replaced.json["active"], false);
    assert!(!signs_in(server).await);

    // A lock survives a remove too.
    let on = set(json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(on.status.as_u16(), 200, "{}", on.json);
    let locked =
        set(json!([{"op": "replace", "path": format!("{EXTENSION}:locked"), "value": true}])).await;
    assert_eq!(locked.json[EXTENSION]["locked"], true, "{}", locked.json);
    scim_error(
        &set(json!([{"op": "remove", "path": format!("{EXTENSION}:locked")}])).await,
        400,
    );
    assert!(!signs_in(server).await);
    // A create without active makes an active user.
    let made = call(
        server,
        Method::POST,
        "/admin/v1/Users",
        &root,
        Some(json!({"schemas": [USER_SCHEMA], "userName": "newcomer"})),
    )
    .await;
    assert_eq!(made.json["active"], true, "{}", made.json);
}

async fn every_answer_under_the_scim_base_is_a_scim_body(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    scim_error(
        &call(server, Method::GET, "/admin/v1/Nope", &root, None).await,
        404,
    );
    scim_error(
        &call(server, Method::GET, "/admin/v1/Users/x/y/z", &root, None).await,
        404,
    );
    let wrong = call(server, Method::DELETE, "/admin/v1/Users", &root, None).await;
    scim_error(&wrong, 405);
    let allow = wrong.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    scim_error(
        &call(server, Method::PATCH, "/admin/v1/Schemas", &root, None).await,
        405,
    );
    // Outside the SCIM base the small JSON body stays.
    let other = call(server, Method::GET, "/nope", &root, None).await;
    assert_eq!(other.status.as_u16(), 404);
    assert_eq!(other.json["error"], "not_found");
}

async fn search_requests_are_lists_sent_as_a_body(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let search = |path: &'static str, body: Value| {
        let root = root.clone();
        async move { call(server, Method::POST, path, &root, Some(body)).await }
    };
    let users = search(
        "/admin/v1/Users/.search",
        json!({"schemas": [SEARCH_SCHEMA], "filter": "userName sw \"he\"", "attributes": ["userName"], "count": 10}),
    )
    .await;
    assert_eq!(users.status.as_u16(), 200, "{}", users.json);
    assert_eq!(users.json["totalResults"], 1);
    assert_eq!(users.json["Resources"][0]["userName"], "helen");
    assert!(users.json["Resources"][0].get("emails").is_none());
    let groups = search(
        "/admin/v1/Groups/.search",
        json!({"schemas": [SEARCH_SCHEMA], "filter": "displayName eq \"domain admins\""}),
    )
    .await;
    assert_eq!(groups.json["totalResults"], 1, "{}", groups.json);
    // At the root: users and groups together, paged as one list.
    let all = search(
        "/admin/v1/.search",
        json!({"schemas": [SEARCH_SCHEMA], "count": 1000}),
    )
    .await;
    assert_eq!(all.status.as_u16(), 200, "{}", all.json);
    let listed = |path: &'static str| {
        let root = root.clone();
        async move {
            call(server, Method::GET, path, &root, None).await.json["totalResults"]
                .as_u64()
                .unwrap()
        }
    };
    let total = listed("/admin/v1/Users").await + listed("/admin/v1/Groups").await;
    assert_eq!(all.json["totalResults"], total);
    assert_eq!(
        all.json["Resources"].as_array().unwrap().len() as u64,
        total
    );
    let second = search(
        "/admin/v1/.search",
        json!({"schemas": [SEARCH_SCHEMA], "startIndex": 2, "count": 1}),
    )
    .await;
    assert_eq!(second.json["Resources"][0], all.json["Resources"][1]);
    // A filter only groups understand finds the groups.
    let by_name = search(
        "/admin/v1/.search",
        json!({"schemas": [SEARCH_SCHEMA], "filter": "displayName eq \"domain admins\""}),
    )
    .await;
    assert_eq!(by_name.status.as_u16(), 200, "{}", by_name.json);
    // A body without the SearchRequest schema, and a bad filter.
    scim_error(
        &search(
            "/admin/v1/Users/.search",
            json!({"filter": "userName eq \"x\""}),
        )
        .await,
        400,
    );
    let bad = search(
        "/admin/v1/Users/.search",
        json!({"schemas": [SEARCH_SCHEMA], "filter": "userName eq"}),
    )
    .await;
    scim_error(&bad, 400);
    assert_eq!(bad.json["scimType"], "invalidFilter");
}

async fn schemas_say_what_the_server_does_with_derived_attributes(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let schema = call(
        server,
        Method::GET,
        &format!("/admin/v1/Schemas/{USER_SCHEMA}"),
        &root,
        None,
    )
    .await;
    let attribute = |name: &str, sub: &str| -> Value {
        schema.json["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["subAttributes"].as_array())
            .and_then(|subs| subs.iter().find(|s| s["name"] == sub).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(attribute("name", "formatted")["mutability"], "readOnly");
    assert_eq!(attribute("emails", "primary")["mutability"], "readOnly");
    assert_eq!(attribute("name", "givenName")["mutability"], "readWrite");
}

async fn the_extension_can_be_patched_as_a_whole(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let plain = id_of(server, "plain").await;
    let path = format!("/admin/v1/Users/{plain}");
    let set = |ops: Value| {
        let root = root.clone();
        let path = path.clone();
        async move { call(server, Method::PATCH, &path, &root, Some(patch(ops))).await }
    };
    let locked =
        set(json!([{"op": "replace", "path": EXTENSION, "value": {"locked": true}}])).await;
    assert_eq!(locked.status.as_u16(), 200, "{}", locked.json);
    assert_eq!(locked.json[EXTENSION]["locked"], true);
    assert!(!signs_in(server).await);
    let unlocked = set(
        json!([{"op": "replace", "value": {EXTENSION: {"locked": false}, "displayName": "Plain"}}]),
    )
    .await;
    assert_eq!(unlocked.status.as_u16(), 200, "{}", unlocked.json);
    assert_eq!(unlocked.json[EXTENSION]["locked"], false);
    assert_eq!(unlocked.json["displayName"], "Plain");
    assert!(signs_in(server).await);
    // A help desk unlocks in the same form: it is still only an unlock.
    let helen = bearer(server, "helen").await;
    set(json!([{"op": "replace", "path": format!("{EXTENSION}:locked"), "value": true}])).await;
    let by_help_desk = call(
        server,
        Method::PATCH,
        &path,
        &helen,
        Some(patch(
            json!([{"op": "replace", "path": EXTENSION, "value": {"locked": false}}]),
        )),
    )
    .await;
    assert_eq!(by_help_desk.status.as_u16(), 200, "{}", by_help_desk.json);
    scim_error(
        &set(json!([{"op": "replace", "path": EXTENSION, "value": true}])).await,
        400,
    );
}

async fn a_groups_external_id_is_kept(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let made = call(
        server,
        Method::POST,
        "/admin/v1/Groups",
        &root,
        Some(
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Finance", "externalId": "entra-42"}),
        ),
    )
    .await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.json);
    assert_eq!(made.json["externalId"], "entra-42");
    let path = format!("/admin/v1/Groups/{}", made.json["id"].as_str().unwrap());
    let patched = call(
        server,
        Method::PATCH,
        &path,
        &root,
        Some(patch(
            json!([{"op": "replace", "path": "externalId", "value": "entra-43"}]),
        )),
    )
    .await;
    assert_eq!(patched.json["externalId"], "entra-43", "{}", patched.json);
    let read = call(server, Method::GET, &path, &root, None).await;
    assert_eq!(read.json["externalId"], "entra-43");
    let put = call(
        server,
        Method::PUT,
        &path,
        &root,
        Some(
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Finance", "externalId": "entra-44"}),
        ),
    )
    .await;
    assert_eq!(put.json["externalId"], "entra-44", "{}", put.json);
}

async fn the_forms_provisioning_clients_send_are_understood(server: &TestServer) {
    prepare(server).await;
    let root = bearer(server, "root").await;
    let plain = id_of(server, "plain").await;
    // Entra writes operation names capitalised and sends scim+json.
    let answer = reqwest::Client::new()
        .patch(server.url(&format!("/admin/v1/Users/{plain}")))
        .header("authorization", format!("Bearer {root}"))
        .header("content-type", "application/scim+json")
        .body(patch(json!([{"op": "Replace", "path": "displayName", "value": "Entra"}, {"op": "ADD", "path": "externalId", "value": "entra-7"}])).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/scim+json")
    );
    let answer = Answer::read(answer).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.json);
    assert_eq!(answer.json["displayName"], "Entra");
    assert_eq!(answer.json["externalId"], "entra-7");
    let removed = call(
        server,
        Method::PATCH,
        &format!("/admin/v1/Users/{plain}"),
        &root,
        Some(patch(json!([{"op": "Remove", "path": "externalId"}]))),
    )
    .await;
    assert!(removed.json.get("externalId").is_none(), "{}", removed.json);
    // Discovery both as a ListResponse and by id.
    for (list, id) in [("Schemas", USER_SCHEMA), ("ResourceTypes", "User")] {
        let all = call(
            server,
            Method::GET,
            &format!("/admin/v1/{list}"),
            &root,
            None,
        )
        .await;
        assert_eq!(
            all.json["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
        let one = call(
            server,
            Method::GET,
            &format!("/admin/v1/{list}/{id}"),
            &root,
            None,
        )
        .await;
        assert_eq!(one.status.as_u16(), 200, "{}", one.json);
        assert_eq!(one.json["id"], id);
    }
}
