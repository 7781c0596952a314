//! The user page's console sign-ins: each live console session of the
//! user, the asker's own marked, and none whose OAuth session ended.

use latchkey_core::console::CONSOLE_CLIENT_ID;
use latchkey_testkit::TestServer;
use reqwest::StatusCode;

use super::{ADMIN, Browser, admin, user_id};
use crate::support::{alice_grant, on_both_engines};

on_both_engines!(the_user_page_lists_live_console_sign_ins,);

const THIS_BROWSER: &str = "<span class=\"badge ok\">This browser</span>";

/// The console sign-ins table of a user page ("" when there is none).
fn console_rows(body: &str) -> &str {
    let start = body.find("<h3>Console sign-ins</h3>").unwrap_or(body.len());
    let end = body[start..]
        .find("</table>")
        .map_or(body.len(), |at| start + at);
    &body[start..end]
}

async fn the_user_page_lists_live_console_sign_ins(server: &TestServer) {
    let admin_id = user_id(server, ADMIN).await;
    let alice_id = user_id(server, "alice").await;
    let mut browser = admin(server).await;
    let mut second = admin(server).await;
    let mut alice = Browser::new(server);
    let signed = alice
        .sign_in("alice", latchkey_testkit::ALICE_PASSWORD)
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    alice_grant(server, "offline_access").await.assert_ok();

    // Two browsers of the admin: this one is marked.
    let page = browser.get(&format!("/console/users/{admin_id}")).await;
    let rows = console_rows(&page.body);
    assert_eq!(rows.matches("<tr><td>").count(), 2, "{}", page.body);
    assert_eq!(rows.matches(THIS_BROWSER).count(), 1);
    let page = second.get(&format!("/console/users/{admin_id}")).await;
    assert_eq!(console_rows(&page.body).matches(THIS_BROWSER).count(), 1);

    // alice's one console sign-in, not this browser's.
    let path = format!("/console/users/{alice_id}");
    let page = browser.get(&path).await;
    let rows = console_rows(&page.body);
    assert_eq!(rows.matches("<tr><td>").count(), 1, "{}", page.body);
    assert!(!rows.contains(THIS_BROWSER));

    // Her console's OAuth session ends (as a revocation elsewhere would
    // end it): the sign-in is no longer listed, though its row stays
    // until her browser's next request; her other session still is.
    let ctx = server.context().await;
    let console_app = ctx
        .store
        .repos
        .apps
        .find_by_client_id(CONSOLE_CLIENT_ID)
        .await
        .unwrap()
        .expect("the console app");
    let sessions = ctx
        .store
        .repos
        .tokens
        .list_sessions(&alice_id)
        .await
        .unwrap();
    let console = sessions
        .iter()
        .find(|s| s.app_id == console_app.id && s.revoked_at.is_none())
        .expect("alice's console session");
    ctx.store
        .repos
        .tokens
        .revoke_session(&console.id, 1)
        .await
        .unwrap();
    let rows_left = ctx
        .store
        .repos
        .console_sessions
        .list_console_sessions(&alice_id)
        .await
        .unwrap()
        .len();
    ctx.store.close().await;
    assert_eq!(rows_left, 1);
    let page = browser.get(&path).await;
    assert!(page.body.contains("hr-mobile"), "{}", page.body);
    assert!(
        page.body.contains("Not signed in to the console."),
        "{}",
        page.body
    );
    assert!(console_rows(&page.body).matches("<tr><td>").count() == 0);
}
