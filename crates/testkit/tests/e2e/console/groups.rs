//! The console's group pages beyond members: a group's own application
//! roles (granted and revoked by an Identity Domain Administrator only,
//! audited, reaching the members' tokens), renaming with errors beside
//! the name, and the user page telling roles held directly from roles
//! held through a group.

use latchkey_core::model::AppRole;
use latchkey_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

use super::{
    Browser, RoleForm, admin, effective_roles, grant_through, group_named, revoke_through, user_id,
};
use crate::support::{alice_grant, on_both_engines, verify_jwt};

on_both_engines!(
    an_admin_grants_a_group_roles_that_reach_its_members_tokens,
    an_admin_renames_a_group_with_errors_beside_the_name,
    the_user_page_tells_direct_roles_from_roles_held_through_a_group,
);

const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";

/// The roles in alice's admin token through hr-mobile (which holds User
/// and Security Administrator).
async fn alice_token_roles(server: &TestServer) -> Value {
    let answer = alice_grant(server, MY_SCOPES).await;
    let token = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    verify_jwt(server, &token, server.issuer()).await.1["roles"].clone()
}

/// A new group named `name` with alice in it; its id.
async fn group_with_alice(browser: &mut Browser, server: &TestServer, name: &str) -> String {
    browser.get("/console/groups").await; // the session's CSRF token
    let created = browser.post("/console/groups", &[("name", name)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let (id, _) = group_named(server, name).await.expect("created");
    let added = browser
        .post(
            &format!("/console/groups/{id}/members"),
            &[("username", "alice")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    id
}

async fn an_admin_grants_a_group_roles_that_reach_its_members_tokens(server: &TestServer) {
    let mut browser = admin(server).await;
    let id = group_with_alice(&mut browser, server, "Security team").await;
    let path = format!("/console/groups/{id}/roles");
    assert_eq!(
        alice_token_roles(server).await,
        serde_json::json!(["User Administrator"])
    );
    let page = browser.get(&format!("/console/groups/{id}")).await;
    assert!(page.body.contains("Application roles"), "{}", page.body);
    assert!(
        page.body
            .contains("Grant<span class=\"visually-hidden\"> Security Administrator</span>"),
        "{}",
        page.body
    );

    let page_path = format!("/console/groups/{id}");
    let at = RoleForm {
        form: &path,
        page: &page_path,
        audit: "group",
        confirm: "Revoke this role from the group?",
    };
    grant_through(&mut browser, server, &at, AppRole::SecurityAdministrator).await;
    let roles = alice_token_roles(server).await;
    assert!(
        roles
            .as_array()
            .unwrap()
            .contains(&"Security Administrator".into()),
        "a member's token carries the group's role: {roles}"
    );
    let page = browser
        .get(&format!("/console/groups/{id}?done=role-granted"))
        .await;
    assert!(page.body.contains("The role is granted."));
    assert!(
        page.body
            .contains("Revoke<span class=\"visually-hidden\"> Security Administrator</span>"),
        "{}",
        page.body
    );
    revoke_through(&mut browser, server, &at, AppRole::SecurityAdministrator).await;
    let bogus = browser
        .post(&path, &[("role", "Boss"), ("grant", "true")])
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    let missing = browser
        .post(
            "/console/groups/0190f0f0-0000-7000-8000-000000000000/roles",
            &[("role", "Security Administrator"), ("grant", "true")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert!(missing.body.contains("There is no such group"));

    // alice, a User Administrator, may change groups but not their roles
    // (she is a member: that would make her a Security Administrator).
    let mut alice = Browser::new(server);
    alice
        .sign_in("alice", latchkey_testkit::ALICE_PASSWORD)
        .await;
    let page = alice.get(&format!("/console/groups/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Application roles"));
    assert!(!page.body.contains("/roles\""), "no grant buttons");
    let refused = alice
        .post(
            &path,
            &[("role", "Security Administrator"), ("grant", "true")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        !effective_roles(server, "alice")
            .await
            .contains(&AppRole::SecurityAdministrator)
    );
}

async fn an_admin_renames_a_group_with_errors_beside_the_name(server: &TestServer) {
    let mut browser = admin(server).await;
    let id = group_with_alice(&mut browser, server, "Payroll").await;
    let path = format!("/console/groups/{id}");
    let page = browser.get(&path).await;
    assert!(page.body.contains("Rename group"), "{}", page.body);
    assert!(
        page.body
            .contains("id=\"name\" name=\"name\" type=\"text\" value=\"Payroll\""),
        "{}",
        page.body
    );

    let empty = browser.post(&path, &[("name", "  ")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    assert!(
        empty
            .body
            .contains("<p class=\"field-error\" id=\"name-error\">Enter a name.</p>"),
        "{}",
        empty.body
    );
    // "admins" is the shared domain's.
    let taken = browser.post(&path, &[("name", "admins")]).await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST, "{}", taken.body);
    assert!(
        taken
            .body
            .contains("<p class=\"field-error\" id=\"name-error\">That name is already taken.</p>"),
        "{}",
        taken.body
    );
    assert!(
        taken.body.contains("value=\"admins\""),
        "the refused name is kept in the field"
    );
    assert!(group_named(server, "Payroll").await.is_some());

    let renamed = browser.post(&path, &[("name", "Payroll & Pay")]).await;
    assert_eq!(
        renamed.location,
        format!("/console/groups/{id}?done=renamed"),
        "{}",
        renamed.body
    );
    assert!(group_named(server, "Payroll").await.is_none());
    let (same_id, members) = group_named(server, "Payroll & Pay").await.expect("renamed");
    assert_eq!(same_id, id);
    assert_eq!(members, ["alice"], "members stay");
    let page = browser.get(&format!("{path}?done=renamed")).await;
    assert!(page.body.contains("The group is renamed."));
    assert!(
        page.body.contains("<h1>Payroll &#38; Pay</h1>"),
        "{}",
        page.body
    );
}

async fn the_user_page_tells_direct_roles_from_roles_held_through_a_group(server: &TestServer) {
    // alice: Help Desk Administrator directly, User Administrator through
    // the shared domain's group "admins".
    let alice = user_id(server, "alice").await;
    let (admins, _) = group_named(server, "admins").await.expect("seeded");
    let mut browser = admin(server).await;
    let path = format!("/console/users/{alice}");
    let page = browser.get(&path).await;
    let through = format!("Through <a href=\"/console/groups/{admins}\">admins</a>");
    assert!(page.body.contains(&through), "{}", page.body);
    assert!(
        page.body
            .contains("Revoke<span class=\"visually-hidden\"> Help Desk Administrator</span>")
    );
    assert!(
        !page
            .body
            .contains("Revoke<span class=\"visually-hidden\"> User Administrator</span>"),
        "a role held through a group is not revoked on the user page"
    );
    assert!(
        page.body
            .contains("Grant<span class=\"visually-hidden\"> User Administrator</span>"),
        "it may still be granted directly"
    );
    assert_eq!(
        page.body
            .matches("<span class=\"badge ok\">Directly</span>")
            .count(),
        1
    );

    // Revoking a role held only through the group changes nothing.
    let roles = format!("/console/users/{alice}/roles");
    let not_direct = browser
        .post(
            &roles,
            &[
                ("role", "User Administrator"),
                ("grant", "false"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(
        not_direct.location,
        format!("/console/users/{alice}?done=role-not-direct")
    );
    assert!(
        effective_roles(server, "alice")
            .await
            .contains(&AppRole::UserAdministrator)
    );

    // Granted directly too, it shows both ways and may be revoked here.
    let granted = browser
        .post(&roles, &[("role", "User Administrator"), ("grant", "true")])
        .await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.body);
    let page = browser.get(&path).await;
    assert!(page.body.contains(&through));
    assert_eq!(
        page.body
            .matches("<span class=\"badge ok\">Directly</span>")
            .count(),
        2
    );
    assert!(
        page.body
            .contains("Revoke<span class=\"visually-hidden\"> User Administrator</span>")
    );
}
