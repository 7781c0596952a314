//! The console (`/console`) over real HTTP: sign-in through the password
//! grant, the session cookie and its storage, CSRF and origin checks,
//! refresh, timeouts, sign-out, the permission table, and the user pages.

use std::time::Duration;

use latchkey_core::console::{CONSOLE_CLIENT_ID, ConsolePolicy};
use latchkey_core::model::{AppRole, AppType};
use latchkey_core::secrets::sha256_hex;
use latchkey_testkit::{DOMAIN, Engine, Options, TestServer};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::support::on_both_engines;

mod groups;
mod privilege;
mod user_sessions;

const ADMIN: &str = "admin";

/// A browser, reduced to what the console needs: one cookie jar entry
/// per cookie, no redirects followed.
struct Browser {
    base: String,
    http: reqwest::Client,
    session: Option<String>,
    sign_in_nonce: Option<String>,
    csrf: String,
}

struct Page {
    status: StatusCode,
    location: String,
    headers: HeaderMap,
    body: String,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<Option<String>> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_owned();
            Some(value).filter(|v| !v.is_empty())
        })
}

fn csrf_of(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[at..].split('"').next()?.to_owned())
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            base: server.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: None,
            sign_in_nonce: None,
            csrf: String::new(),
        }
    }

    fn cookies(&self) -> String {
        let mut out = Vec::new();
        if let Some(s) = &self.session {
            out.push(format!("latchkey_console={s}"));
        }
        if let Some(n) = &self.sign_in_nonce {
            out.push(format!("latchkey_console_signin={n}"));
        }
        out.join("; ")
    }

    async fn absorb(&mut self, response: reqwest::Response) -> Page {
        {
            let status = response.status();
            let headers = response.headers().clone();
            if let Some(value) = cookie_value(&headers, "latchkey_console") {
                self.session = value;
            }
            if let Some(value) = cookie_value(&headers, "latchkey_console_signin") {
                self.sign_in_nonce = value;
            }
            let body = response.text().await.unwrap();
            if let Some(csrf) = csrf_of(&body) {
                self.csrf = csrf;
            }
            Page {
                status,
                location: headers
                    .get(LOCATION)
                    .map(|l| l.to_str().unwrap().to_owned())
                    .unwrap_or_default(),
                headers,
                body,
            }
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .send()
            .await
            .unwrap();
        self.absorb(response).await
    }

    /// Posts a form with the current CSRF token, from this origin.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form, Some(&self.base.clone())).await
    }

    async fn post_raw(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        self.absorb(response).await
    }

    async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/console/signin").await;
        assert_eq!(form.status, StatusCode::OK);
        self.post(
            "/console/signin",
            &[("username", username), ("password", password)],
        )
        .await
    }
}

async fn admin(server: &TestServer) -> Browser {
    let mut browser = Browser::new(server);
    let page = browser.sign_in(ADMIN, &server.admin_password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/console");
    browser
}

async fn user_id(server: &TestServer, username: &str) -> String {
    let ctx = server.context().await;
    let user = ctx
        .store
        .repos
        .users
        .find_by_username(username)
        .await
        .unwrap()
        .expect("the user exists");
    ctx.store.close().await;
    user.id
}

async fn live_sessions(server: &TestServer, username: &str) -> usize {
    let id = user_id(server, username).await;
    let ctx = server.context().await;
    let sessions = ctx.store.repos.tokens.list_sessions(&id).await.unwrap();
    ctx.store.close().await;
    sessions.iter().filter(|s| s.revoked_at.is_none()).count()
}

on_both_engines!(
    sign_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash,
    wrong_passwords_get_one_answer_and_count_at_the_shared_throttle,
    forms_need_the_sessions_csrf_token_and_this_origin,
    an_admin_creates_locks_and_unlocks_a_user,
    a_user_without_admin_roles_sees_only_their_profile,
    changing_your_own_password_needs_the_current_one_and_signs_you_out,
    sign_out_revokes_the_tokens_and_the_old_cookie_stops_working,
    sign_out_everywhere_ends_the_users_sessions,
    an_expired_access_token_is_refreshed_once_under_concurrency,
    the_console_app_is_trusted_holds_every_role_and_keeps_no_plain_secret,
    pages_carry_the_console_csp_and_are_not_cached,
    audit_events_are_filtered_and_bad_dates_are_shown_beside_their_field,
    audit_events_name_users_by_username_and_filter_by_either,
    an_admin_creates_a_trusted_app_whose_shown_secret_gets_a_token,
    application_pages_follow_the_permission_table_and_spare_the_console_app,
    resource_servers_and_signing_keys_pages,
    an_admin_edits_an_app_its_keys_and_token_lifetimes,
    an_admin_renames_a_resource_server_and_replaces_its_scopes,
    only_an_identity_domain_administrator_grants_and_revokes_roles,
    an_admin_creates_a_group_adds_and_removes_members_and_deletes_it,
    a_nul_in_a_search_or_an_address_is_a_400_page,
);

/// The database cannot hold a NUL (PostgreSQL text refuses it): refused
/// before it, as a page, alike on both engines.
async fn a_nul_in_a_search_or_an_address_is_a_400_page(server: &TestServer) {
    let mut browser = admin(server).await;
    for path in [
        "/console/users?q=%00",
        "/console/users?q=a%00b&page=2",
        "/console/apps?q=%00",
        "/console/users/a%00b",
        "/console/groups/%00",
        "/console/audit?subject=%00",
    ] {
        let page = browser.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains("<html"), "{path}: a page, not JSON");
    }
    let page = browser.get("/console/users?q=alice").await;
    assert_eq!(page.status, StatusCode::OK);
}

async fn sign_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash(server: &TestServer) {
    let mut browser = Browser::new(server);
    browser.get("/console/signin").await;
    let response = browser
        .post(
            "/console/signin",
            &[("username", ADMIN), ("password", &server.admin_password)],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let set = response
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("latchkey_console="))
        .unwrap();
    for attribute in ["Path=/console", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attribute), "{set}");
    }
    // Plain HTTP issuer: no Secure (browsers would drop the cookie).
    assert!(!set.contains("Secure"), "{set}");
    let cookie = browser.session.clone().unwrap();
    assert_eq!(cookie.len(), 43);

    let ctx = server.context().await;
    let stored = ctx
        .store
        .repos
        .console_sessions
        .find_console_session(&sha256_hex(&cookie))
        .await
        .unwrap()
        .expect("the session is stored under the cookie's hash");
    assert!(
        ctx.store
            .repos
            .console_sessions
            .find_console_session(&cookie)
            .await
            .unwrap()
            .is_none()
    );
    // A JWT's payload starts ".eyJ"; sealed standard base64 never holds a
    // dot (a bare "eyJ" turns up in ~1% of random ciphertexts).
    assert!(!stored.sealed_tokens.contains(".eyJ"), "tokens are sealed");
    ctx.store.close().await;
    assert_eq!(live_sessions(server, ADMIN).await, 1);

    let users = browser.get("/console/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("alice"));
}

async fn wrong_passwords_get_one_answer_and_count_at_the_shared_throttle(server: &TestServer) {
    let mut browser = Browser::new(server);
    let wrong = browser.sign_in("alice", "not her password").await;
    let unknown = browser.sign_in("nobody", "whatever").await;
    let inactive = browser.sign_in("mallory", "mallory's password").await;
    for page in [&wrong, &unknown, &inactive] {
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.body.contains("The username or password is not right"));
        assert!(browser.session.is_none());
    }
    // Four more from this IP reach the pair threshold (5) ...
    for _ in 0..4 {
        browser.sign_in("alice", "still wrong").await;
    }
    // ... and now the right password is refused, here and at the token
    // endpoint: one throttle.
    let page = browser
        .sign_in("alice", latchkey_testkit::ALICE_PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let token = reqwest::Client::new()
        .post(server.token_url())
        .header(
            "authorization",
            crate::support::basic("hr-mobile", latchkey_testkit::HR_SECRET),
        )
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);

    // The audit trail names the console app as the client.
    let ctx = server.context().await;
    let events = ctx
        .store
        .repos
        .audit
        .query(&latchkey_core::audit::AuditQuery {
            event_type: Some("user.signin".into()),
            actor: None,
            subject: None,
            since: None,
            until: None,
            start_index: 1,
            count: 100,
        })
        .await
        .unwrap();
    ctx.store.close().await;
    assert!(
        events
            .items
            .iter()
            .any(|e| e.client_id.as_deref() == Some(CONSOLE_CLIENT_ID) && e.outcome != "success")
    );
}

async fn forms_need_the_sessions_csrf_token_and_this_origin(server: &TestServer) {
    let mut browser = admin(server).await;
    browser.get("/console/users/new").await;
    let fields = [("username", "carol"), ("active", "true")];
    // No token, a wrong token, another session's token, another origin.
    let none = browser
        .post_raw("/console/users", &fields, Some(&server.base))
        .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let wrong = browser
        .post_raw(
            "/console/users",
            &[("csrf", "x"), ("username", "carol")],
            Some(&server.base),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let mut other = admin(server).await;
    other.get("/console/users/new").await;
    let foreign = other.csrf.clone();
    let theirs = browser
        .post_raw(
            "/console/users",
            &[("csrf", &foreign), ("username", "carol")],
            Some(&server.base),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    let csrf = browser.csrf.clone();
    let cross = browser
        .post_raw(
            "/console/users",
            &[("csrf", &csrf), ("username", "carol")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let ctx = server.context().await;
    assert!(
        ctx.store
            .repos
            .users
            .find_by_username("carol")
            .await
            .unwrap()
            .is_none()
    );
    ctx.store.close().await;
    // The sign-in form has its own token, bound to its nonce cookie.
    let mut fresh = Browser::new(server);
    fresh.get("/console/signin").await;
    fresh.sign_in_nonce = Some("another-nonce".into());
    let page = fresh
        .post(
            "/console/signin",
            &[("username", ADMIN), ("password", &server.admin_password)],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("expired"));
    assert!(fresh.session.is_none());

    let ok = browser.post("/console/users", &fields).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
}

async fn an_admin_creates_locks_and_unlocks_a_user(server: &TestServer) {
    let mut browser = admin(server).await;
    browser.get("/console/users/new").await;
    // Errors come back beside their fields, with the values kept.
    let bad = browser
        .post(
            "/console/users",
            &[
                ("username", ""),
                ("given_name", "Carol"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"username-error\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"Carol\""));
    let short = browser
        .post(
            "/console/users",
            &[
                ("username", "carol"),
                ("password", "short"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("id=\"password-error\""),
        "{}",
        short.body
    );
    let taken = browser
        .post(
            "/console/users",
            &[("username", "ALICE"), ("active", "true")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(taken.body.contains("already taken"));

    let created = browser
        .post(
            "/console/users",
            &[
                ("username", "carol"),
                ("given_name", "Carol"),
                ("family_name", "Danvers"),
                ("email", "carol@example.com"),
                ("password", "carol's long password"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id = user_id(server, "carol").await;
    assert_eq!(
        created.location,
        format!("/console/users/{id}?done=created")
    );
    let page = browser.get(&created.location).await;
    assert!(page.body.contains("Carol Danvers") || page.body.contains("value=\"Danvers\""));

    // Carol signs in somewhere; locking asks first, then ends that session.
    let mut carol = Browser::new(server);
    assert_eq!(
        carol.sign_in("carol", "carol's long password").await.status,
        StatusCode::SEE_OTHER
    );
    let ask = browser
        .post(&format!("/console/users/{id}/lock"), &[("locked", "true")])
        .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Lock this user?"));
    assert!(!server_user_locked(server, "carol").await);
    let locked = browser
        .post(
            &format!("/console/users/{id}/lock"),
            &[("locked", "true"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(locked.location, format!("/console/users/{id}?done=locked"));
    assert!(server_user_locked(server, "carol").await);
    assert_eq!(
        carol.get("/console/profile").await.location,
        "/console/signin?done=expired"
    );
    assert_eq!(
        Browser::new(server)
            .sign_in("carol", "carol's long password")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let unlocked = browser
        .post(&format!("/console/users/{id}/lock"), &[("locked", "false")])
        .await;
    assert_eq!(
        unlocked.location,
        format!("/console/users/{id}?done=unlocked")
    );
    assert!(!server_user_locked(server, "carol").await);
    assert_eq!(
        Browser::new(server)
            .sign_in("carol", "carol's long password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // Search finds her by part of her email.
    let found = browser.get("/console/users?q=carol%40example").await;
    assert!(found.body.contains(&format!("/console/users/{id}")));
    let none = browser.get("/console/users?q=nobody-at-all").await;
    assert!(none.body.contains("No user matches"));
}

async fn server_user_locked(server: &TestServer, username: &str) -> bool {
    let ctx = server.context().await;
    let user = ctx
        .store
        .repos
        .users
        .find_by_username(username)
        .await
        .unwrap()
        .unwrap();
    ctx.store.close().await;
    user.locked
}

async fn a_user_without_admin_roles_sees_only_their_profile(server: &TestServer) {
    server
        .apply("[[users]]\nusername = \"bob\"\npassword = \"bob's long password\"\n")
        .await
        .unwrap();
    let mut bob = Browser::new(server);
    assert_eq!(
        bob.sign_in("bob", "bob's long password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(bob.get("/console").await.location, "/console/profile");
    let profile = bob.get("/console/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("bob"));
    assert!(
        !profile.body.contains("href=\"/console/users\""),
        "no Users link"
    );
    for path in ["/console/users", "/console/users/new", "/console/audit"] {
        assert_eq!(bob.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let alice = user_id(server, "alice").await;
    assert_eq!(
        bob.get(&format!("/console/users/{alice}")).await.status,
        StatusCode::FORBIDDEN
    );
    bob.get("/console/profile").await;
    let lock = bob
        .post(
            &format!("/console/users/{alice}/lock"),
            &[("locked", "true"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(lock.status, StatusCode::FORBIDDEN);
    assert!(!server_user_locked(server, "alice").await);
}

async fn changing_your_own_password_needs_the_current_one_and_signs_you_out(server: &TestServer) {
    server
        .apply("[[users]]\nusername = \"bob\"\npassword = \"bob's long password\"\n")
        .await
        .unwrap();
    let mut bob = Browser::new(server);
    bob.sign_in("bob", "bob's long password").await;
    bob.get("/console/profile").await;
    let wrong = bob
        .post(
            "/console/profile/password",
            &[
                ("current_password", "a guess"),
                ("password", "bob's new password"),
                ("confirm_password", "bob's new password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("This is not your current password."),
        "{}",
        wrong.body
    );
    let differ = bob
        .post(
            "/console/profile/password",
            &[
                ("current_password", "bob's long password"),
                ("password", "bob's new password"),
                ("confirm_password", "typo"),
            ],
        )
        .await;
    assert!(differ.body.contains("id=\"confirm_password-error\""));
    let old_cookie = bob.session.clone().unwrap();
    let changed = bob
        .post(
            "/console/profile/password",
            &[
                ("current_password", "bob's long password"),
                ("password", "bob's new password"),
                ("confirm_password", "bob's new password"),
            ],
        )
        .await;
    assert_eq!(changed.location, "/console/signin?done=own-password");
    bob.session = Some(old_cookie);
    assert_eq!(
        bob.get("/console/profile").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Browser::new(server)
            .sign_in("bob", "bob's new password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

async fn sign_out_revokes_the_tokens_and_the_old_cookie_stops_working(server: &TestServer) {
    let mut browser = admin(server).await;
    let cookie = browser.session.clone().unwrap();
    browser.get("/console/users").await;
    assert_eq!(live_sessions(server, ADMIN).await, 1);
    let out = browser.post("/console/signout", &[]).await;
    assert_eq!(out.location, "/console/signin?done=signed-out");
    assert!(browser.session.is_none(), "the cookie is cleared");
    assert_eq!(
        live_sessions(server, ADMIN).await,
        0,
        "the OAuth session is revoked"
    );
    let ctx = server.context().await;
    assert!(
        ctx.store
            .repos
            .console_sessions
            .find_console_session(&sha256_hex(&cookie))
            .await
            .unwrap()
            .is_none()
    );
    ctx.store.close().await;
    browser.session = Some(cookie);
    let page = browser.get("/console/users").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location.starts_with("/console/signin"));
}

async fn sign_out_everywhere_ends_the_users_sessions(server: &TestServer) {
    let mut browser = admin(server).await;
    for _ in 0..2 {
        reqwest::Client::new()
            .post(server.token_url())
            .header(
                "authorization",
                crate::support::basic("hr-mobile", latchkey_testkit::HR_SECRET),
            )
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", latchkey_testkit::ALICE_PASSWORD),
                ("scope", "offline_access"),
            ])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(live_sessions(server, "alice").await, 2);
    let id = user_id(server, "alice").await;
    let page = browser.get(&format!("/console/users/{id}")).await;
    assert!(page.body.contains("hr-mobile"), "sessions are listed");
    let ask = browser
        .post(&format!("/console/users/{id}/signout"), &[])
        .await;
    assert!(ask.body.contains("Sign this user out everywhere?"));
    assert_eq!(live_sessions(server, "alice").await, 2);
    let done = browser
        .post(
            &format!("/console/users/{id}/signout"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(
        done.location,
        format!("/console/users/{id}?done=signed-out-everywhere")
    );
    assert_eq!(live_sessions(server, "alice").await, 0);
    let page = browser.get(&done.location).await;
    assert!(page.body.contains("No live sessions"));
}

async fn an_expired_access_token_is_refreshed_once_under_concurrency(server: &TestServer) {
    let browser = admin(server).await;
    let hash = sha256_hex(browser.session.as_ref().unwrap());
    let ctx = server.context().await;
    let repo = ctx.store.repos.console_sessions.clone();
    let before = repo.find_console_session(&hash).await.unwrap().unwrap();
    // Mark the access token expired (as an hour later would).
    repo.store_refreshed_tokens(&hash, &before.sealed_tokens, 0)
        .await
        .unwrap();
    let cookie = browser.cookies();
    let pages = (0..6).map(|_| {
        let (http, url, cookie) = (
            browser.http.clone(),
            format!("{}/console/users", server.base),
            cookie.clone(),
        );
        tokio::spawn(async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    for page in pages {
        assert_eq!(page.await.unwrap(), StatusCode::OK);
    }
    let after = repo.find_console_session(&hash).await.unwrap().unwrap();
    assert_ne!(after.sealed_tokens, before.sealed_tokens, "new tokens");
    assert!(after.access_expires_at > before.created_at);
    assert_eq!(after.refreshing_since, None);
    ctx.store.close().await;
    // No reuse was detected: the OAuth session lives on.
    assert_eq!(live_sessions(server, ADMIN).await, 1);
    let mut browser = browser;
    assert_eq!(browser.get("/console/users").await.status, StatusCode::OK);
}

async fn the_console_app_is_trusted_holds_every_role_and_keeps_no_plain_secret(
    server: &TestServer,
) {
    let ctx = server.context().await;
    let app = ctx
        .store
        .repos
        .apps
        .find_by_client_id(CONSOLE_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    ctx.store.close().await;
    assert_eq!(app.app_type, AppType::Trusted);
    assert_eq!(app.app_roles.len(), AppRole::ALL.len());
    assert!(
        app.secret_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("hmac-sha256$"))
    );
    assert_eq!(app.secret_sealed, None);
    // A second node on the same database starts and serves the same
    // sessions: nothing about them lives in a node.
    let mut browser = admin(server).await;
    let sibling = server.start_sibling().await;
    browser.base = sibling.base.clone();
    assert_eq!(browser.get("/console/users").await.status, StatusCode::OK);
    sibling.stop().await;
}

async fn pages_carry_the_console_csp_and_are_not_cached(server: &TestServer) {
    let mut browser = admin(server).await;
    for path in ["/console/signin", "/console/users", "/console/profile"] {
        let page = browser.get(path).await;
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("style-src 'self'")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        // Browsers send `Origin: null` under `no-referrer`, which the
        // origin check refuses: the console must name its own origin.
        assert_eq!(page.headers["referrer-policy"], "same-origin", "{path}");
        if page.status == StatusCode::OK {
            assert_eq!(page.headers["cache-control"], "no-store", "{path}");
        }
    }
    let css = browser.get("/console/static/console.css").await;
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    // The API keeps its own policy.
    let api = reqwest::get(server.url("/health/live")).await.unwrap();
    assert_eq!(
        api.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    // Markup in data is escaped, never rendered.
    server
        .apply("[[users]]\nusername = \"<b>x</b>\"\ngiven_name = \"<script>alert(1)</script>\"\n")
        .await
        .unwrap();
    let list = browser.get("/console/users").await;
    assert!(
        list.body.contains("&lt;b&gt;x&lt;/b&gt;") || list.body.contains("&#60;b&#62;x"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script>alert(1)</script>"));
}

async fn audit_events_are_filtered_and_bad_dates_are_shown_beside_their_field(server: &TestServer) {
    let mut browser = admin(server).await;
    let all = browser.get("/console/audit").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("user.signin"));
    let filtered = browser
        .get("/console/audit?type=user.created&subject=&since=&until=")
        .await;
    assert!(!filtered.body.contains("<td>user.signin</td>"));
    let none = browser.get("/console/audit?type=no.such.event").await;
    assert!(none.body.contains("No event matches these filters."));
    let bad = browser.get("/console/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"since-error\""));
    let later = browser.get("/console/audit?since=2999-01-01T00:00").await;
    assert!(later.body.contains("No event matches"));
}

/// Actors and subjects that are users show their usernames (the recorded
/// id in the title); the subject filter takes a username or an id and
/// finds the user's sign-ins (recorded by name) and the changes made to
/// them (recorded by id) alike.
async fn audit_events_name_users_by_username_and_filter_by_either(server: &TestServer) {
    let (admin_id, mallory_id) = (
        user_id(server, ADMIN).await,
        user_id(server, "mallory").await,
    );
    // Mallory (inactive) tries to sign in: recorded under the typed name.
    crate::support::token_basic(
        server,
        "hr-mobile",
        latchkey_testkit::HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "mallory's password"),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    let mut browser = admin(server).await;
    browser.get(&format!("/console/users/{mallory_id}")).await;
    let locked = browser
        .post(
            &format!("/console/users/{mallory_id}/lock"),
            &[("locked", "true"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(locked.status, StatusCode::SEE_OTHER, "{}", locked.body);

    let page = browser.get("/console/audit?type=user.locked").await;
    assert!(
        page.body.contains("Subject (username or id)"),
        "{}",
        page.body
    );
    let row = between(&page.body, "<td>user.locked</td>", "</tr>");
    assert!(
        row.contains(&format!(
            "<td class=\"actor\" data-id=\"{admin_id}\"><span title=\"user id {admin_id}\">admin</span></td>"
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!(
            "<td class=\"subject\" data-id=\"{mallory_id}\"><span title=\"user id {mallory_id}\">mallory</span></td>"
        )),
        "{row}"
    );
    // Actors and subjects that are not users stay as recorded, and an id
    // no user has (a deleted one) as a raw id.
    let ctx = server.context().await;
    latchkey_core::audit::record(
        ctx.store.repos.audit.as_ref(),
        latchkey_core::audit::AuditEvent::new(latchkey_core::audit::kind::KEY_ROTATED, true, 1)
            .actor("cli")
            .subject("01a25000-0000-7000-8000-000000000000"),
    )
    .await;
    ctx.store.close().await;
    let rotated = browser.get("/console/audit?type=key.rotated").await;
    assert!(
        rotated
            .body
            .contains("<td class=\"actor\">cli</td><td class=\"id subject\">01a25000-0000-7000-8000-000000000000</td>"),
        "{}",
        rotated.body
    );

    // (event type, the subject cell's text) of every row.
    let rows = |body: &str| {
        body.split("<td class=\"nowrap\">")
            .skip(1)
            .map(|row| {
                // The cell's text: what follows the last tag opened in it.
                let cell = between(row, "subject\"", "</td>").trim_end_matches("</span>");
                let text = cell.rsplit('>').next().unwrap_or_default();
                (between(row, "<td>", "</td>").to_owned(), text.to_owned())
            })
            .collect::<Vec<_>>()
    };
    for subject in ["mallory", "MALLORY", mallory_id.as_str()] {
        let found = browser
            .get(&format!(
                "/console/audit?subject={}",
                crate::support::url_encode(subject)
            ))
            .await;
        let rows = rows(&found.body);
        let types: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
        assert!(types.contains(&"user.locked"), "{subject}: {rows:?}");
        assert!(types.contains(&"user.signin"), "{subject}: {rows:?}");
        assert!(
            rows.iter().all(|(_, s)| s == "mallory"),
            "{subject}: {rows:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_absolute_timeouts_end_console_sessions() {
    for (policy, pace) in [
        // Idle: one pause longer than the idle timeout.
        (
            ConsolePolicy {
                idle_timeout_secs: 2,
                absolute_timeout_secs: 3600,
            },
            vec![3],
        ),
        // Absolute: steady activity does not keep the session beyond it.
        (
            ConsolePolicy {
                idle_timeout_secs: 60,
                absolute_timeout_secs: 3,
            },
            vec![1, 1, 1, 1],
        ),
    ] {
        let server = TestServer::start_on(
            Engine::Sqlite,
            Options {
                console: policy,
                ..Options::default()
            },
        )
        .await
        .unwrap();
        server.apply(DOMAIN).await.unwrap();
        let mut browser = admin(&server).await;
        let mut last = StatusCode::OK;
        let mut location = String::new();
        for secs in pace {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let page = browser.get("/console/profile").await;
            last = page.status;
            location = page.location;
            if last != StatusCode::OK {
                break;
            }
        }
        assert_eq!(last, StatusCode::SEE_OTHER, "{policy:?}");
        assert_eq!(location, "/console/signin?done=expired");
        assert_eq!(
            live_sessions(&server, ADMIN).await,
            0,
            "the refresh token is revoked too"
        );
        server.stop().await;
    }
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {body}"))
        + start.len();
    &body[at..at + body[at..].find(end).unwrap()]
}

async fn an_admin_creates_a_trusted_app_whose_shown_secret_gets_a_token(server: &TestServer) {
    let mut browser = admin(server).await;
    let form = browser.get("/console/apps/new").await;
    assert!(form.body.contains("Resource Owner (password)"));
    assert!(
        form.body.contains(latchkey_testkit::READ),
        "scopes come from the resource servers"
    );
    // A bad redirect URI comes back beside its field, choices kept.
    let bad = browser
        .post(
            "/console/apps",
            &[
                ("name", "Payroll"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("redirect_uris", "http://example.com/cb"),
                ("scopes", latchkey_testkit::READ),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("id=\"redirect_uris-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("http://example.com/cb"));
    let created = browser
        .post(
            "/console/apps",
            &[
                ("name", "Payroll"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("grant_types", "refresh_token"),
                ("redirect_uris", "https://payroll.example.com/callback"),
                ("scopes", latchkey_testkit::READ),
                ("scopes", "offline_access"),
                ("app_roles", "User Administrator"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    let secret = between(
        &created.body,
        "<code id=\"client-secret\" class=\"secret\">",
        "</code>",
    )
    .to_owned();
    assert_eq!(secret.len(), 43);
    let curl = between(&created.body, "<pre id=\"curl-command\">", "</pre>")
        .replace("&#39;", "'")
        .replace("&#38;", "&");
    assert!(
        curl.starts_with("curl -i -H 'Authorization: Basic "),
        "{curl}"
    );
    assert!(curl.contains("/oauth2/v1/token -d 'grant_type=password&username=USERNAME&password=PASSWORD&scope=https%3A%2F%2Fhr.example.com%2Femployees.read%20offline_access'"), "{curl}");
    // The secret works at the token endpoint.
    let token = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", crate::support::basic("payroll", &secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
            ("scope", latchkey_testkit::READ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);
    // The list can be searched by name or client ID, ignoring case.
    let found = browser.get("/console/apps?q=PAYR").await;
    assert!(
        found.body.contains("<code>payroll</code>"),
        "{}",
        found.body
    );
    let none = browser.get("/console/apps?q=nothing-like-it").await;
    assert!(!none.body.contains("<code>payroll</code>"));
    assert!(
        none.body.contains("No application matches"),
        "{}",
        none.body
    );
    let all = browser.get("/console/apps").await;
    assert!(
        all.body.contains("<code>payroll</code>")
            && all.body.contains("<code>latchkey-console</code>")
    );
    // Shown once: the app's page does not show it again.
    let ctx = server.context().await;
    let app = ctx
        .store
        .repos
        .apps
        .find_by_client_id("payroll")
        .await
        .unwrap()
        .unwrap();
    ctx.store.close().await;
    assert_eq!(app.redirect_uris, ["https://payroll.example.com/callback"]);
    assert_eq!(app.app_roles, [AppRole::UserAdministrator]);
    let page = browser.get(&format!("/console/apps/{}", app.id)).await;
    assert!(page.body.contains("payroll") && !page.body.contains(&secret));
    let list = browser.get("/console/apps").await;
    assert!(list.body.contains("Payroll"));
    // Taken client ids are refused beside the field.
    let again = browser
        .post(
            "/console/apps",
            &[
                ("name", "Payroll"),
                ("type", "confidential"),
                ("grant_types", "password"),
            ],
        )
        .await;
    assert!(
        again.body.contains("id=\"client_id-error\""),
        "{}",
        again.body
    );
    // Deactivation asks first, then ends the app's authentication.
    let ask = browser
        .post(
            &format!("/console/apps/{}/active", app.id),
            &[("active", "false")],
        )
        .await;
    assert!(ask.body.contains("Deactivate this application?"));
    let done = browser
        .post(
            &format!("/console/apps/{}/active", app.id),
            &[("active", "false"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let refused = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", crate::support::basic("payroll", &secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

async fn application_pages_follow_the_permission_table_and_spare_the_console_app(
    server: &TestServer,
) {
    // alice: User Administrator and Help Desk, no application roles.
    let mut alice = Browser::new(server);
    assert_eq!(
        alice
            .sign_in("alice", latchkey_testkit::ALICE_PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let users = alice.get("/console/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(!users.body.contains("href=\"/console/apps\""));
    for path in [
        "/console/apps",
        "/console/apps/new",
        "/console/resource-servers",
        "/console/keys",
        "/console/audit",
    ] {
        assert_eq!(
            alice.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    alice.get("/console/users").await;
    let create = alice
        .post(
            "/console/apps",
            &[
                ("name", "Sneaky"),
                ("type", "public"),
                ("grant_types", "password"),
            ],
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);

    let mut browser = admin(server).await;
    let ctx = server.context().await;
    let console = ctx
        .store
        .repos
        .apps
        .find_by_client_id(CONSOLE_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    ctx.store.close().await;
    let page = browser.get(&format!("/console/apps/{}", console.id)).await;
    assert!(page.body.contains("managed by the server"));
    for action in ["active", "delete", "secret"] {
        let response = browser
            .post(
                &format!("/console/apps/{}/{action}", console.id),
                &[("active", "false"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{action}");
    }
    assert_eq!(
        browser.get("/console/users").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

async fn resource_servers_and_signing_keys_pages(server: &TestServer) {
    let mut browser = admin(server).await;
    let page = browser.get("/console/resource-servers").await;
    assert!(page.body.contains("https://hr.example.com/employees.read"));
    let bad = browser
        .post(
            "/console/resource-servers",
            &[("name", "Pay"), ("audience", ""), ("scopes", "read")],
        )
        .await;
    assert!(bad.body.contains("id=\"audience-error\""));
    let taken = browser
        .post(
            "/console/resource-servers",
            &[
                ("name", "HR again"),
                ("audience", "https://hr.example.com/"),
                ("scopes", "read"),
            ],
        )
        .await;
    assert!(
        taken.body.contains("id=\"audience-error\""),
        "{}",
        taken.body
    );
    let ok = browser
        .post(
            "/console/resource-servers",
            &[
                ("name", "Pay API"),
                ("audience", "https://pay.example.com/"),
                ("scopes", "read write"),
            ],
        )
        .await;
    assert_eq!(
        ok.location, "/console/resource-servers?done=created",
        "{}",
        ok.body
    );
    let page = browser.get("/console/resource-servers").await;
    assert!(page.body.contains("https://pay.example.com/write"));

    let keys = browser.get("/console/keys").await;
    assert_eq!(keys.body.matches("badge ok").count(), 1, "one active key");
    let ask = browser.post("/console/keys/rotate", &[]).await;
    assert!(ask.body.contains("Rotate the signing key?"));
    let done = browser
        .post("/console/keys/rotate", &[("confirm", "yes")])
        .await;
    assert_eq!(done.location, "/console/keys?done=rotated");
    let keys = browser.get("/console/keys").await;
    assert!(
        keys.body.contains(">next<"),
        "published, signing later: {}",
        keys.body
    );
    assert!(ask.body.contains("signs 5m later"), "{}", ask.body);
    // A second rotation while one waits is refused, saying why.
    browser.get("/console/keys").await;
    let twice = browser
        .post("/console/keys/rotate", &[("confirm", "yes")])
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert!(twice.body.contains("already published"), "{}", twice.body);
    // Tokens keep verifying: the console session still works after rotation.
    assert_eq!(browser.get("/console/users").await.status, StatusCode::OK);
}

async fn stored_app(server: &TestServer, client_id: &str) -> latchkey_core::model::App {
    let ctx = server.context().await;
    let app = ctx
        .store
        .repos
        .apps
        .find_by_client_id(client_id)
        .await
        .unwrap()
        .expect("the app exists");
    ctx.store.close().await;
    app
}

async fn an_admin_edits_an_app_its_keys_and_token_lifetimes(server: &TestServer) {
    let mut browser = admin(server).await;
    browser.get("/console/apps/new").await;
    // Lifetimes are set on create too; a bad one comes back beside its field.
    let bad = browser
        .post(
            "/console/apps",
            &[
                ("name", "Ledger"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("scopes", latchkey_testkit::READ),
                ("access_token_ttl", "soon"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("id=\"access_token_ttl-error\""),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"soon\""),
        "what was typed is kept"
    );
    let created = browser
        .post(
            "/console/apps",
            &[
                ("name", "Ledger"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("redirect_uris", "https://ledger.example.com/cb"),
                ("scopes", latchkey_testkit::READ),
                ("access_token_ttl", "10m"),
                ("session_lifetime", "1d"),
                ("refresh_token_reuse_interval", "0"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let secret = between(
        &created.body,
        "<code id=\"client-secret\" class=\"secret\">",
        "</code>",
    )
    .to_owned();
    let app = stored_app(server, "ledger").await;
    assert_eq!(app.access_token_ttl, 600);
    assert_eq!(app.session_lifetime, Some(86_400));
    assert_eq!(
        app.refresh_token_reuse_interval, 0,
        "the reuse interval off"
    );

    // The app's page links to the form, filled in from the stored app.
    let page = browser.get(&format!("/console/apps/{}", app.id)).await;
    assert!(
        page.body
            .contains(&format!("href=\"/console/apps/{}/edit\"", app.id))
    );
    let edit_path = format!("/console/apps/{}/edit", app.id);
    let form = browser.get(&edit_path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("value=\"Ledger\""));
    assert!(form.body.contains("value=\"10m\""));
    assert!(form.body.contains("value=\"1d\""));
    assert!(
        form.body
            .contains("name=\"refresh_token_reuse_interval\" type=\"text\" value=\"0\""),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains("https://ledger.example.com/cb</textarea>")
    );
    assert!(!form.body.contains("name=\"remove_keys\""), "no keys yet");

    // Errors beside their fields: a lifetime over the maximum, a JWK Set
    // that is not one.
    let too_long = browser
        .post(
            &edit_path,
            &[
                ("name", "Ledger"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("access_token_ttl", "30d"),
            ],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert!(
        too_long.body.contains("id=\"access_token_ttl-error\""),
        "{}",
        too_long.body
    );
    let too_lenient = browser
        .post(
            &edit_path,
            &[
                ("name", "Ledger"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("refresh_token_reuse_interval", "2m"),
            ],
        )
        .await;
    assert_eq!(too_lenient.status, StatusCode::BAD_REQUEST);
    assert!(
        too_lenient
            .body
            .contains("id=\"refresh_token_reuse_interval-error\""),
        "{}",
        too_lenient.body
    );
    let bad_keys = browser
        .post(
            &edit_path,
            &[
                ("name", "Ledger"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("keys", "{\"keys\": []}"),
            ],
        )
        .await;
    assert_eq!(bad_keys.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_keys.body.contains("id=\"keys-error\""),
        "{}",
        bad_keys.body
    );
    assert_eq!(
        stored_app(server, "ledger").await.access_token_ttl,
        600,
        "nothing written"
    );

    // A good edit: renamed, new lifetimes, the server's own public JWKS as
    // the app's keys, no redirect URI, another grant.
    let jwks = crate::support::jwks(server).await.to_string();
    let saved = browser
        .post(
            &edit_path,
            &[
                ("name", "Ledger II"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("grant_types", "refresh_token"),
                ("scopes", latchkey_testkit::READ),
                ("scopes", "offline_access"),
                ("keys", &jwks),
                ("access_token_ttl", "15m"),
                ("refresh_token_ttl", ""),
                ("session_lifetime", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        saved.location,
        format!("/console/apps/{}?done=saved", app.id)
    );
    let edited = stored_app(server, "ledger").await;
    assert_eq!(edited.id, app.id);
    assert_eq!(edited.name, "Ledger II");
    assert_eq!(edited.access_token_ttl, 900);
    assert_eq!(edited.refresh_token_ttl, 7 * 86_400, "blank is the default");
    assert_eq!(edited.session_lifetime, None);
    assert!(edited.redirect_uris.is_empty());
    assert!(edited.jwks.is_some() && edited.certificate.is_none());
    assert_eq!(edited.secret_hash, app.secret_hash, "the secret is kept");
    // The new lifetime is what the token endpoint gives.
    let token: serde_json::Value = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", crate::support::basic("ledger", &secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
            ("scope", latchkey_testkit::READ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 900, "{token}");

    // Remove keys.
    let form = browser.get(&edit_path).await;
    assert!(form.body.contains("name=\"remove_keys\""));
    let removed = browser
        .post(
            &edit_path,
            &[
                ("name", "Ledger II"),
                ("type", "trusted"),
                ("grant_types", "password"),
                ("keys", &jwks),
                ("remove_keys", "yes"),
                ("access_token_ttl", "15m"),
            ],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let edited = stored_app(server, "ledger").await;
    assert_eq!((edited.jwks, edited.certificate), (None, None));

    // The built-in console app is not edited here.
    let console = stored_app(server, CONSOLE_CLIENT_ID).await;
    let path = format!("/console/apps/{}/edit", console.id);
    assert_eq!(browser.get(&path).await.status, StatusCode::CONFLICT);
    browser.get("/console/apps").await;
    let refused = browser
        .post(&path, &[("name", "Mine"), ("type", "public")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        stored_app(server, CONSOLE_CLIENT_ID).await.name,
        console.name
    );
}

async fn an_admin_renames_a_resource_server_and_replaces_its_scopes(server: &TestServer) {
    let mut browser = admin(server).await;
    browser.get("/console/resource-servers").await;
    let created = browser
        .post(
            "/console/resource-servers",
            &[
                ("name", "Pay API"),
                ("audience", "https://pay.example.com/"),
                ("scopes", "read write"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let ctx = server.context().await;
    let servers = ctx.store.repos.resource_servers.list().await.unwrap();
    ctx.store.close().await;
    let pay = servers
        .iter()
        .find(|s| s.audience == "https://pay.example.com/")
        .unwrap()
        .clone();
    let list = browser.get("/console/resource-servers").await;
    let edit_path = format!("/console/resource-servers/{}/edit", pay.id);
    assert!(list.body.contains(&format!("href=\"{edit_path}\"")));
    let form = browser.get(&edit_path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("value=\"read write\""), "{}", form.body);
    // An app may be granted pay/read: removing it is refused beside the scopes.
    browser.get("/console/apps/new").await;
    let app = browser
        .post(
            "/console/apps",
            &[
                ("name", "Pay client"),
                ("type", "confidential"),
                ("grant_types", "password"),
                ("scopes", "https://pay.example.com/read"),
            ],
        )
        .await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);
    browser.get(&edit_path).await;
    let refused = browser
        .post(&edit_path, &[("name", "Pay API"), ("scopes", "write")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"scopes-error\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"write\""),
        "what was typed is kept"
    );
    let empty = browser
        .post(&edit_path, &[("name", " "), ("scopes", "read")])
        .await;
    assert!(empty.body.contains("id=\"name-error\""));
    // Renamed, a scope added and an unused one removed.
    let saved = browser
        .post(
            &edit_path,
            &[("name", "Payments"), ("scopes", "read refunds")],
        )
        .await;
    assert_eq!(
        saved.location, "/console/resource-servers?done=saved",
        "{}",
        saved.body
    );
    let ctx = server.context().await;
    let servers = ctx.store.repos.resource_servers.list().await.unwrap();
    ctx.store.close().await;
    let edited = servers.iter().find(|s| s.id == pay.id).unwrap();
    assert_eq!(edited.name, "Payments");
    assert_eq!(edited.audience, pay.audience);
    assert_eq!(edited.scopes, ["read", "refunds"]);
}

async fn effective_roles(server: &TestServer, username: &str) -> Vec<AppRole> {
    let id = user_id(server, username).await;
    let ctx = server.context().await;
    let roles = ctx.store.repos.users.effective_roles(&id).await.unwrap();
    ctx.store.close().await;
    roles
}

/// A console page with a role table: the form's path, the page it
/// returns to, the audit events' prefix and the question asked before a
/// revocation.
struct RoleForm<'a> {
    form: &'a str,
    page: &'a str,
    audit: &'a str,
    confirm: &'a str,
}

/// Grants `role` through `at`: the page comes back, alice holds the role,
/// the grant is audited.
async fn grant_through(
    browser: &mut Browser,
    server: &TestServer,
    at: &RoleForm<'_>,
    role: AppRole,
) {
    let name = role.to_string();
    let granted = browser
        .post(at.form, &[("role", name.as_str()), ("grant", "true")])
        .await;
    assert_eq!(
        granted.location,
        format!("{}?done=role-granted", at.page),
        "{}",
        granted.body
    );
    assert!(effective_roles(server, "alice").await.contains(&role));
    let audit = browser
        .get(&format!("/console/audit?type={}.role_granted", at.audit))
        .await;
    assert!(audit.body.contains(&name), "{}", audit.body);
}

/// Revokes `role` through `at`: asked first (nothing changes then), then
/// confirmed, alice no longer holds it, audited.
async fn revoke_through(
    browser: &mut Browser,
    server: &TestServer,
    at: &RoleForm<'_>,
    role: AppRole,
) {
    let name = role.to_string();
    let ask = browser
        .post(at.form, &[("role", name.as_str()), ("grant", "false")])
        .await;
    assert!(ask.body.contains(at.confirm), "{}", ask.body);
    assert!(effective_roles(server, "alice").await.contains(&role));
    let revoked = browser
        .post(
            at.form,
            &[
                ("role", name.as_str()),
                ("grant", "false"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(revoked.location, format!("{}?done=role-revoked", at.page));
    assert!(!effective_roles(server, "alice").await.contains(&role));
    let audit = browser
        .get(&format!("/console/audit?type={}.role_revoked", at.audit))
        .await;
    assert!(audit.body.contains(&name), "{}", audit.body);
}

async fn only_an_identity_domain_administrator_grants_and_revokes_roles(server: &TestServer) {
    let alice_id = user_id(server, "alice").await;
    let path = format!("/console/users/{alice_id}/roles");
    let mut browser = admin(server).await;
    let page = browser.get(&format!("/console/users/{alice_id}")).await;
    assert!(page.body.contains("Application roles"));
    assert!(
        page.body
            .contains("Grant<span class=\"visually-hidden\"> Application Administrator</span>"),
        "{}",
        page.body
    );
    // alice holds Help Desk Administrator directly (revoked here) and
    // User Administrator through the group "admins" (changed there).
    assert!(
        page.body
            .contains("Revoke<span class=\"visually-hidden\"> Help Desk Administrator</span>")
    );
    let page_path = format!("/console/users/{alice_id}");
    let at = RoleForm {
        form: &path,
        page: &page_path,
        audit: "user",
        confirm: "Revoke this role?",
    };
    grant_through(&mut browser, server, &at, AppRole::ApplicationAdministrator).await;
    revoke_through(&mut browser, server, &at, AppRole::ApplicationAdministrator).await;
    let bogus = browser
        .post(&path, &[("role", "Boss"), ("grant", "true")])
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);

    // alice is a User Administrator: she may change users, not roles —
    // not even her own, which would make her an Identity Domain Administrator.
    let mut alice = Browser::new(server);
    alice
        .sign_in("alice", latchkey_testkit::ALICE_PASSWORD)
        .await;
    let own = alice.get(&format!("/console/users/{alice_id}")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Application roles"));
    assert!(!own.body.contains("/roles\""), "no grant buttons");
    let refused = alice
        .post(
            &path,
            &[("role", "Identity Domain Administrator"), ("grant", "true")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        !effective_roles(server, "alice")
            .await
            .contains(&AppRole::IdentityDomainAdministrator)
    );
}

async fn group_named(server: &TestServer, name: &str) -> Option<(String, Vec<String>)> {
    let ctx = server.context().await;
    let query = latchkey_core::scim::query::ListQuery {
        filter: None,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 1000,
        cursor: None,
    };
    let groups = ctx
        .store
        .repos
        .directory
        .query_groups(&query)
        .await
        .unwrap();
    let found = match groups.items.iter().find(|g| g.name == name) {
        Some(g) => {
            let members = ctx
                .store
                .repos
                .directory
                .members_of(std::slice::from_ref(&g.id))
                .await
                .unwrap();
            let names = members
                .get(&g.id)
                .map(|m| m.iter().map(|m| m.username.clone()).collect())
                .unwrap_or_default();
            Some((g.id.clone(), names))
        }
        None => None,
    };
    ctx.store.close().await;
    found
}

async fn an_admin_creates_a_group_adds_and_removes_members_and_deletes_it(server: &TestServer) {
    let mut browser = admin(server).await;
    let list = browser.get("/console/groups").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("href=\"/console/groups\""),
        "in the navigation"
    );
    let empty = browser.post("/console/groups", &[("name", " ")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("id=\"name-error\""));
    let created = browser
        .post("/console/groups", &[("name", "Payroll team")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let (id, members) = group_named(server, "Payroll team").await.expect("created");
    assert!(members.is_empty());
    assert_eq!(
        created.location,
        format!("/console/groups/{id}?done=created")
    );
    let taken = browser
        .post("/console/groups", &[("name", "Payroll team")])
        .await;
    assert!(taken.body.contains("id=\"name-error\""), "{}", taken.body);
    let list = browser.get("/console/groups").await;
    assert!(list.body.contains("Payroll team"));

    let page = browser.get(&format!("/console/groups/{id}")).await;
    assert!(page.body.contains("No members yet."));
    let members_path = format!("/console/groups/{id}/members");
    let unknown = browser
        .post(&members_path, &[("username", "nobody-here")])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("id=\"username-error\""),
        "{}",
        unknown.body
    );
    let added = browser.post(&members_path, &[("username", "alice")]).await;
    assert_eq!(
        added.location,
        format!("/console/groups/{id}?done=member-added"),
        "{}",
        added.body
    );
    assert_eq!(
        group_named(server, "Payroll team").await.unwrap().1,
        ["alice"]
    );
    let page = browser.get(&format!("/console/groups/{id}")).await;
    assert!(page.body.contains(">alice</a>"), "{}", page.body);

    // Removing a member and deleting the group ask first.
    let alice = user_id(server, "alice").await;
    let remove_path = format!("/console/groups/{id}/members/remove");
    let ask = browser.post(&remove_path, &[("user", &alice)]).await;
    assert!(ask.body.contains("Remove this member?"));
    assert_eq!(
        group_named(server, "Payroll team").await.unwrap().1,
        ["alice"]
    );
    let removed = browser
        .post(&remove_path, &[("user", &alice), ("confirm", "yes")])
        .await;
    assert_eq!(
        removed.location,
        format!("/console/groups/{id}?done=member-removed")
    );
    assert!(
        group_named(server, "Payroll team")
            .await
            .unwrap()
            .1
            .is_empty()
    );

    let delete_path = format!("/console/groups/{id}/delete");
    let ask = browser.post(&delete_path, &[]).await;
    assert!(ask.body.contains("Delete this group?"));
    assert!(group_named(server, "Payroll team").await.is_some());
    let deleted = browser.post(&delete_path, &[("confirm", "yes")]).await;
    assert_eq!(deleted.location, "/console/groups?done=deleted");
    assert!(group_named(server, "Payroll team").await.is_none());
    let gone = browser.get(&format!("/console/groups/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(
        gone.body.contains("There is no such group"),
        "{}",
        gone.body
    );
}
