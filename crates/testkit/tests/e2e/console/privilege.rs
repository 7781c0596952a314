//! The privilege boundary through the console's forms: the same three
//! escalations as in `escalation.rs`, tried by a lesser administrator
//! signed in to the console, all refused by the services behind it.

use latchkey_testkit::TestServer;
use reqwest::StatusCode;

use super::{Browser, group_named, user_id};
use crate::escalation::prepare;
use crate::support::on_both_engines;

on_both_engines!(
    a_help_desk_administrator_cannot_reset_an_administrators_password_in_the_console,
    a_user_administrator_cannot_join_an_administrators_group_in_the_console,
    an_application_administrator_cannot_create_an_administrator_app_in_the_console,
);

async fn signed_in(server: &TestServer, username: &str) -> Browser {
    let mut browser = Browser::new(server);
    let page = browser
        .sign_in(username, &format!("{username} password 0123"))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}

async fn still_signs_in(server: &TestServer, username: &str, password: &str) -> bool {
    let mut browser = Browser::new(server);
    browser.sign_in(username, password).await.status == StatusCode::SEE_OTHER
}

async fn a_help_desk_administrator_cannot_reset_an_administrators_password_in_the_console(
    server: &TestServer,
) {
    prepare(server).await;
    let root = user_id(server, "root").await;
    for attacker in ["helen", "uma"] {
        let mut browser = signed_in(server, attacker).await;
        browser.get(&format!("/console/users/{root}")).await;
        let reset = browser
            .post(
                &format!("/console/users/{root}/password"),
                &[
                    ("password", "taken over 0123456"),
                    ("confirm_password", "taken over 0123456"),
                ],
            )
            .await;
        assert_eq!(reset.status, StatusCode::FORBIDDEN, "{}", reset.body);
    }
    assert!(!still_signs_in(server, "root", "taken over 0123456").await);
    assert!(still_signs_in(server, "root", "root password 0123").await);
}

async fn a_user_administrator_cannot_join_an_administrators_group_in_the_console(
    server: &TestServer,
) {
    prepare(server).await;
    let (group, _) = group_named(server, "domain admins").await.expect("exists");
    let mut browser = signed_in(server, "uma").await;
    browser.get(&format!("/console/groups/{group}")).await;
    let joined = browser
        .post(
            &format!("/console/groups/{group}/members"),
            &[("username", "uma")],
        )
        .await;
    assert_eq!(joined.status, StatusCode::FORBIDDEN, "{}", joined.body);
    let (_, members) = group_named(server, "domain admins").await.unwrap();
    assert!(members.is_empty(), "{members:?}");
}

async fn an_application_administrator_cannot_create_an_administrator_app_in_the_console(
    server: &TestServer,
) {
    prepare(server).await;
    let mut browser = signed_in(server, "apper").await;
    browser.get("/console/apps/new").await;
    let created = browser
        .post(
            "/console/apps",
            &[
                ("name", "Evil"),
                ("client_id", "evil"),
                ("type", "trusted"),
                ("grant_types", "client_credentials"),
                ("scopes", "urn:opc:idm:__myscopes__"),
                ("app_roles", "Identity Domain Administrator"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::FORBIDDEN, "{}", created.body);
    let ctx = server.context().await;
    let found = ctx
        .store
        .repos
        .apps
        .find_by_client_id("evil")
        .await
        .unwrap();
    ctx.store.close().await;
    assert!(found.is_none());
}
