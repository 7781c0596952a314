//! The store conformance suite: every case is written once and runs
//! against SQLite always and PostgreSQL whenever one answers (CI requires
//! it with LATCHKEY_REQUIRE_POSTGRES=1). Each run gets its own database.

use std::sync::Arc;

use latchkey_core::domain::{
    AppSpec, ChangeOutcome, DomainPlan, GroupSpec, HashChange, ResourceServerSpec, UserSpec,
};
use latchkey_core::model::{
    AppRole, AppType, GrantType, KeyState, PreviousSecret, RefreshTokenRecord, Session,
    SigningKeyRecord,
};
use latchkey_core::scim::filter::parse_filter;
use latchkey_core::scim::group::GroupSchema;
use latchkey_core::scim::query::{ListQuery, Page, resolve};
use latchkey_core::scim::user::{UserField, UserSchema};
use latchkey_core::store::{
    NewSecret, NewUser, RefreshJudge, RefreshVerdict, Refreshed, Rotation, StoreError, UserRecord,
};
use latchkey_store::testing::TestDatabase;
use latchkey_store::{Store, open};

latchkey_store::conformance!(
    migrations_run_from_empty_and_again,
    apply_creates_then_changes_nothing_and_keeps_ids,
    apply_updates_what_differs_and_touches_nothing_else,
    apply_is_all_or_nothing,
    users_are_found_ignoring_case_and_roles_come_through_groups,
    refresh_rotation_and_reuse_detection,
    concurrent_rotations_of_one_token_let_exactly_one_win,
    concurrent_refreshes_are_each_judged_on_their_own_token,
    activating_a_key_retires_the_previous_one,
    unique_usernames_are_a_conflict,
    the_deny_list_and_ended_sessions_revoke_access_tokens,
    password_changes_and_deactivation_end_sessions,
    a_generated_password_is_remembered_until_changed,
    a_session_cap_ends_the_oldest_sessions,
    housekeeping_purges_only_what_expired,
    scheduled_rotation_lets_one_node_win_and_keys_retire,
    a_staged_key_is_published_then_promoted_once,
    scheduled_staging_lets_one_node_win,
    an_imported_next_key_replaces_the_waiting_one,
    failed_logins_count_decay_and_clear,
    client_assertion_ids_are_accepted_once_and_purged,
    secrets_rotate_with_grace_and_deactivated_apps_lose_their_sessions,
    directory_queries_filter_sort_and_page_in_the_database,
    directory_writes_are_versioned_and_end_sessions,
    audit_events_are_kept_queried_newest_first_and_purged,
    an_audit_subject_names_a_user_by_id_or_username,
    repeated_refused_sign_ins_fold_into_one_event_with_a_count,
    apply_creates_with_given_ids_and_snapshot_reads_everything_back,
    apply_carries_signing_keys_over,
    console_sessions_are_found_by_hash_refreshed_once_and_purged,
);

fn plan() -> DomainPlan {
    DomainPlan {
        resource_servers: vec![ResourceServerSpec {
            name: "HR API".into(),
            audience: "https://hr.example.com/".into(),
            scopes: vec!["employees.read".into(), "employees.write".into()],
        }],
        groups: vec![GroupSpec {
            id: None,
            name: "helpdesk".into(),
            app_roles: vec![AppRole::HelpDeskAdministrator],
        }],
        users: vec![UserSpec {
            id: None,
            username: "Alice".into(),
            password: HashChange::Set("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
            given_name: Some("Alice".into()),
            family_name: Some("Liddell".into()),
            email: Some("alice@example.com".into()),
            active: true,
            locked: None,
            display_name: None,
            external_id: None,
            groups: vec!["helpdesk".into()],
            app_roles: vec![AppRole::UserAdministrator],
        }],
        apps: vec![AppSpec {
            id: None,
            client_id: "hr-mobile".into(),
            name: "HR Mobile".into(),
            app_type: AppType::Trusted,
            active: true,
            secret: HashChange::Set("hmac-sha256$abc".into()),
            sealed_secret: None,
            client_secret_jwt: false,
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            redirect_uris: vec!["https://hr.example.com/cb".into()],
            scopes: vec![
                "https://hr.example.com/employees.read".into(),
                "offline_access".into(),
            ],
            app_roles: vec![AppRole::UserAdministrator],
            jwks: None,
            certificate: None,
            access_token_ttl: 3600,
            refresh_token_ttl: 604_800,
            session_lifetime: Some(30 * 86_400),
            refresh_token_reuse_interval: 30,
        }],
        signing_keys: Vec::new(),
    }
}

async fn migrations_run_from_empty_and_again(store: &Store, db: &TestDatabase) {
    assert!(store.repos.domain.is_empty().await.unwrap());
    store.repos.domain.ping().await.unwrap();
    // Opening again finds every migration applied and changes nothing.
    let again = open(&db.url, 2).await.expect("reopen");
    assert!(again.repos.domain.is_empty().await.unwrap());
    again.close().await;
}

async fn apply_creates_then_changes_nothing_and_keeps_ids(store: &Store, _: &TestDatabase) {
    let first = store.repos.domain.apply(&plan(), 100).await.unwrap();
    assert_eq!(first.count(ChangeOutcome::Created), 4, "{first}");
    let user = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let app = store
        .repos
        .apps
        .find_by_client_id("hr-mobile")
        .await
        .unwrap()
        .unwrap();

    let second = store.repos.domain.apply(&plan(), 200).await.unwrap();
    assert_eq!(second.count(ChangeOutcome::Unchanged), 4, "{second}");
    assert_eq!(second.to_string(), "nothing changed (4 unchanged)");
    let user_again = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let app_again = store
        .repos
        .apps
        .find_by_client_id("hr-mobile")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, user_again, "ids and timestamps are kept");
    assert_eq!(app, app_again);
    assert_eq!(app.scopes, plan().apps[0].scopes);
    assert_eq!(app.app_roles, vec![AppRole::UserAdministrator]);
    assert_eq!(app.session_lifetime, Some(30 * 86_400));
    assert!(!store.repos.domain.is_empty().await.unwrap());
}

async fn apply_updates_what_differs_and_touches_nothing_else(store: &Store, _: &TestDatabase) {
    store.repos.domain.apply(&plan(), 100).await.unwrap();
    let bob = store
        .repos
        .users
        .create(
            NewUser {
                username: "bob".into(),
                password_hash: None,
                given_name: None,
                family_name: None,
                email: None,
                app_roles: vec![],
            },
            100,
        )
        .await
        .unwrap();
    let before = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();

    let mut changed = plan();
    changed.users[0].email = Some("alice@new.example.com".into());
    changed.users[0].password = HashChange::Keep;
    changed.users[0].groups.clear();
    changed.apps[0].secret = HashChange::Keep;
    changed.apps[0].access_token_ttl = 600;
    let summary = store.repos.domain.apply(&changed, 300).await.unwrap();
    assert_eq!(summary.count(ChangeOutcome::Updated), 2, "{summary}");
    assert_eq!(summary.count(ChangeOutcome::Unchanged), 2, "{summary}");

    let after = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.email.as_deref(), Some("alice@new.example.com"));
    assert_eq!(
        after.password_hash, before.password_hash,
        "Keep keeps the hash"
    );
    assert_eq!(after.updated_at, 300);
    assert_eq!(
        store.repos.users.effective_roles(&after.id).await.unwrap(),
        vec![AppRole::UserAdministrator]
    );
    let app = store
        .repos
        .apps
        .find_by_client_id("hr-mobile")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.secret_hash.as_deref(), Some("hmac-sha256$abc"));
    assert_eq!(app.access_token_ttl, 600);
    // A user the file does not name is left alone.
    assert_eq!(
        store
            .repos
            .users
            .find_by_id(&bob.id)
            .await
            .unwrap()
            .unwrap(),
        bob
    );
}

async fn apply_is_all_or_nothing(store: &Store, _: &TestDatabase) {
    let mut broken = plan();
    // A role listed twice violates user_roles' key: the insert fails late,
    // after other rows were written in the transaction.
    broken.users[0].app_roles = vec![AppRole::UserAdministrator, AppRole::UserAdministrator];
    let err = store.repos.domain.apply(&broken, 100).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store.repos.domain.is_empty().await.unwrap(),
        "nothing was written"
    );
    assert!(
        store
            .repos
            .users
            .find_by_username("alice")
            .await
            .unwrap()
            .is_none()
    );
}

async fn users_are_found_ignoring_case_and_roles_come_through_groups(
    store: &Store,
    _: &TestDatabase,
) {
    store.repos.domain.apply(&plan(), 100).await.unwrap();
    let alice = store
        .repos
        .users
        .find_by_username("ALICE")
        .await
        .unwrap()
        .expect("case-insensitive");
    assert_eq!(alice.username, "Alice");
    assert_eq!(
        store.repos.users.effective_roles(&alice.id).await.unwrap(),
        vec![AppRole::UserAdministrator, AppRole::HelpDeskAdministrator]
    );
    assert!(
        store
            .repos
            .users
            .exists_with_role(AppRole::HelpDeskAdministrator)
            .await
            .unwrap()
    );
    assert!(
        !store
            .repos
            .users
            .exists_with_role(AppRole::IdentityDomainAdministrator)
            .await
            .unwrap()
    );

    store
        .repos
        .users
        .set_active(&alice.id, false, 150)
        .await
        .unwrap();
    assert!(
        !store
            .repos
            .users
            .find_by_id(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    store
        .repos
        .users
        .set_password_hash(&alice.id, "$argon2id$new", 160)
        .await
        .unwrap();
    assert_eq!(
        store
            .repos
            .users
            .find_by_id(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$new")
    );
    assert!(matches!(
        store.repos.users.set_active("nobody", true, 1).await,
        Err(StoreError::NotFound)
    ));
    store.repos.users.delete(&alice.id).await.unwrap();
    assert!(
        store
            .repos
            .users
            .find_by_id(&alice.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn seed_session(store: &Store) -> (Session, RefreshTokenRecord) {
    seed_session_named(store, "h0").await
}

/// Applies the plan (idempotent) and starts a session of Alice's on the
/// mobile app whose first refresh token has the hash `first_hash`.
async fn seed_session_named(store: &Store, first_hash: &str) -> (Session, RefreshTokenRecord) {
    store.repos.domain.apply(&plan(), 100).await.unwrap();
    let user = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let app = store
        .repos
        .apps
        .find_by_client_id("hr-mobile")
        .await
        .unwrap()
        .unwrap();
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        app_id: app.id.clone(),
        auth_time: 100,
        created_at: 100,
        revoked_at: None,
        generation: 0,
    };
    let first = refresh(&session, first_hash);
    store
        .repos
        .tokens
        .start_session(&session, Some(&first), None)
        .await
        .unwrap();
    (session, first)
}

fn refresh(session: &Session, hash: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        session_id: session.id.clone(),
        app_id: session.app_id.clone(),
        user_id: session.user_id.clone(),
        scope: "offline_access".into(),
        issued_at: 100,
        expires_at: 10_000,
        rotated_at: None,
        generation: 0,
    }
}

/// `refresh`, in a given generation.
fn refresh_in(session: &Session, hash: &str, generation: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        generation,
        ..refresh(session, hash)
    }
}

async fn refresh_rotation_and_reuse_detection(store: &Store, _: &TestDatabase) {
    let (session, first) = seed_session(store).await;
    // One read brings the token with its session and user.
    let found = store
        .repos
        .tokens
        .find_refresh("h0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session, session);
    assert_eq!(found.user.username, "Alice");
    assert!(found.user.active);
    assert_eq!(
        store
            .repos
            .tokens
            .find_refresh("h0")
            .await
            .unwrap()
            .map(|c| c.token),
        Some(first.clone())
    );

    let second = refresh_in(&session, "h1", 1);
    assert_eq!(
        store
            .repos
            .tokens
            .rotate_refresh(&first, &second, 110)
            .await
            .unwrap(),
        Rotation::Stored
    );
    let rotated = store
        .repos
        .tokens
        .find_refresh("h0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.token.rotated_at, Some(110));
    assert_eq!(rotated.session.generation, 1, "the session moved on");
    assert_eq!(
        store
            .repos
            .tokens
            .find_refresh("h1")
            .await
            .unwrap()
            .map(|c| c.token),
        Some(second.clone())
    );

    // h0 rotating again: its generation is gone; nothing is written (the
    // grant judges it again and decides), and the session stays.
    let stale = refresh_in(&session, "h-stale", 1);
    assert_eq!(
        store
            .repos
            .tokens
            .rotate_refresh(&first, &stale, 120)
            .await
            .unwrap(),
        Rotation::Lost
    );
    assert!(
        store
            .repos
            .tokens
            .find_refresh("h-stale")
            .await
            .unwrap()
            .is_none()
    );
    // A sibling of h1 (h0 redeemed) joins generation 1; one for the
    // generation before is refused.
    let sibling = refresh_in(&session, "h1-sibling", 1);
    assert_eq!(
        store.repos.tokens.redeem_refresh(&sibling).await.unwrap(),
        Rotation::Stored
    );
    let late = refresh_in(&session, "h-late-sibling", 0);
    assert_eq!(
        store.repos.tokens.redeem_refresh(&late).await.unwrap(),
        Rotation::Lost
    );
    // The sibling rotates; h1, of the same generation, then cannot.
    let third = refresh_in(&session, "h2", 2);
    assert_eq!(
        store
            .repos
            .tokens
            .rotate_refresh(&sibling, &third, 130)
            .await
            .unwrap(),
        Rotation::Stored
    );
    let fourth = refresh_in(&session, "h3", 2);
    assert_eq!(
        store
            .repos
            .tokens
            .rotate_refresh(&second, &fourth, 130)
            .await
            .unwrap(),
        Rotation::Lost
    );
    // Once the session ends, nothing rotates or is redeemed.
    store
        .repos
        .tokens
        .revoke_session(&session.id, 140)
        .await
        .unwrap();
    let after = refresh_in(&session, "h-after", 3);
    assert_eq!(
        store
            .repos
            .tokens
            .rotate_refresh(&third, &after, 150)
            .await
            .unwrap(),
        Rotation::Lost
    );
    assert_eq!(
        store
            .repos
            .tokens
            .redeem_refresh(&refresh_in(&session, "h-after-2", 2))
            .await
            .unwrap(),
        Rotation::Lost
    );
    // Revocation keeps its first time.
    store
        .repos
        .tokens
        .revoke_session(&session.id, 999)
        .await
        .unwrap();
    assert_eq!(
        store
            .repos
            .tokens
            .find_session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(140)
    );
}

async fn concurrent_rotations_of_one_token_let_exactly_one_win(store: &Store, _: &TestDatabase) {
    let (session, first) = seed_session(store).await;
    let tokens = store.repos.tokens.clone();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let tokens = tokens.clone();
        let first = first.clone();
        let next = refresh_in(&session, &format!("next-{i}"), 1);
        tasks.push(tokio::spawn(async move {
            tokens.rotate_refresh(&first, &next, 110).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let winners = outcomes.iter().filter(|o| **o == Rotation::Stored).count();
    assert_eq!(winners, 1, "{outcomes:?}");
}

/// The grant's rules, as a test judge (the grant's own judge is tested
/// in core and end to end): the newest token rotates to `next`; the one
/// rotated out last is redeemed with `next` as its sibling (any reuse
/// interval); anything else, or `refuse`, is refused, ending the session
/// when `end_session`.
fn judge_to(next: Option<RefreshTokenRecord>, end_session: bool) -> RefreshJudge {
    Arc::new(move |found| {
        let (token, session) = (&found.token, &found.session);
        let Some(next) = next.clone() else {
            return RefreshVerdict::Refuse { end_session };
        };
        if session.revoked_at.is_some() {
            return RefreshVerdict::Refuse { end_session: true };
        }
        match token.rotated_at {
            None if token.generation == session.generation => {
                RefreshVerdict::Rotate(RefreshTokenRecord {
                    generation: session.generation + 1,
                    ..next
                })
            }
            Some(_) if token.generation + 1 == session.generation => {
                RefreshVerdict::Redeem(RefreshTokenRecord {
                    generation: session.generation,
                    ..next
                })
            }
            _ => RefreshVerdict::Refuse { end_session: true },
        }
    })
}

/// Many refreshes at once (one batch on SQLite): each is judged on its
/// own token, seeing what the refreshes before it wrote; of many
/// presentations of one token one rotates and the others are redeemed as
/// siblings; a refusal that ends the session ends it.
async fn concurrent_refreshes_are_each_judged_on_their_own_token(store: &Store, _: &TestDatabase) {
    let mut sessions = Vec::new();
    for i in 0..8 {
        sessions.push(seed_session_named(store, &format!("own-{i}")).await.0);
    }
    let tokens = store.repos.tokens.clone();
    let mut tasks = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        // Sessions 0-5 rotate; 6 is refused and ended; 7 is presented
        // twenty times at once.
        let presentations = if i == 7 { 20 } else { 1 };
        for copy in 0..presentations {
            let tokens = tokens.clone();
            let next = (i != 6).then(|| refresh(session, &format!("own-{i}-next-{copy}")));
            tasks.push(tokio::spawn(async move {
                let outcome = tokens
                    .refresh(&format!("own-{i}"), 120, judge_to(next, i == 6))
                    .await
                    .unwrap();
                (i, copy, outcome)
            }));
        }
    }
    let unknown = {
        let tokens = tokens.clone();
        tokio::spawn(async move { tokens.refresh("missing", 120, judge_to(None, true)).await })
    };
    let (mut rotated, mut redeemed) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (i, copy, Refreshed::Rotated(found)) => {
                assert_eq!(found.token.token_hash, format!("own-{i}"));
                assert_eq!(found.session.id, sessions[i].id);
                rotated.push((i, copy));
            }
            (7, copy, Refreshed::Redeemed(found)) => {
                assert_eq!(found.session.id, sessions[7].id);
                assert!(
                    found.token.rotated_at.is_some(),
                    "judged on the rotated token"
                );
                redeemed.push(copy);
            }
            (6, _, Refreshed::Refused(found)) => assert_eq!(found.session.id, sessions[6].id),
            other => panic!("unexpected {other:?}"),
        }
    }
    rotated.sort();
    let winner = rotated
        .iter()
        .find(|(i, _)| *i == 7)
        .expect("one of 7 rotates")
        .1;
    assert_eq!(
        rotated.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5, 7]
    );
    assert_eq!(redeemed.len(), 19, "every other presentation is redeemed");
    assert_eq!(unknown.await.unwrap().unwrap(), Refreshed::Unknown);
    let session_of = |i: usize| {
        let tokens = tokens.clone();
        let id = sessions[i].id.clone();
        async move { tokens.find_session(&id).await.unwrap().unwrap() }
    };
    assert_eq!(session_of(6).await.revoked_at, Some(120));
    assert_eq!(session_of(0).await.revoked_at, None);
    let seven = session_of(7).await;
    assert_eq!(seven.revoked_at, None, "redemptions keep the session");
    assert_eq!(seven.generation, 1, "one rotation");
    // Every answer is a distinct live token of generation 1.
    for copy in 0..20 {
        let found = tokens
            .find_refresh(&format!("own-7-next-{copy}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.token.generation, found.token.rotated_at), (1, None));
    }
    let next = tokens.find_refresh("own-0-next-0").await.unwrap().unwrap();
    assert_eq!(next.token.session_id, sessions[0].id);
    assert_eq!(
        tokens
            .find_refresh("own-0")
            .await
            .unwrap()
            .unwrap()
            .token
            .rotated_at,
        Some(120)
    );

    // Going on with one sibling (not the winner's) works; the others,
    // the winner's included, are then dead: presenting one ends the
    // session, and the branch that went on with it.
    let keep = redeemed[0];
    let kept = format!("own-7-next-{keep}");
    let on = refresh(&sessions[7], "own-7-on");
    assert!(matches!(
        tokens
            .refresh(&kept, 130, judge_to(Some(on), false))
            .await
            .unwrap(),
        Refreshed::Rotated(_)
    ));
    let dead = format!("own-7-next-{winner}");
    let late = refresh(&sessions[7], "own-7-late");
    assert!(matches!(
        tokens
            .refresh(&dead, 131, judge_to(Some(late), false))
            .await
            .unwrap(),
        Refreshed::Refused(_)
    ));
    assert_eq!(session_of(7).await.revoked_at, Some(131));
    let after = refresh(&sessions[7], "own-7-after");
    assert!(matches!(
        tokens
            .refresh("own-7-on", 132, judge_to(Some(after), false))
            .await
            .unwrap(),
        Refreshed::Refused(_)
    ));
}

async fn activating_a_key_retires_the_previous_one(store: &Store, _: &TestDatabase) {
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        encrypted_private_key: vec![1, 2, 3, 0, 255],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        state: KeyState::Active,
        created_at: at,
        activates_at: None,
        retiring_at: None,
        retired_at: None,
    };
    store.repos.keys.activate(&key("k1", 100)).await.unwrap();
    store.repos.keys.activate(&key("k2", 200)).await.unwrap();
    let published = store.repos.keys.list_published().await.unwrap();
    assert_eq!(
        published
            .iter()
            .map(|k| (k.kid.as_str(), k.state))
            .collect::<Vec<_>>(),
        vec![("k2", KeyState::Active), ("k1", KeyState::Retiring)]
    );
    assert_eq!(published[1].encrypted_private_key, vec![1, 2, 3, 0, 255]);
    assert_eq!(store.repos.keys.list_all().await.unwrap().len(), 2);
}

async fn unique_usernames_are_a_conflict(store: &Store, _: &TestDatabase) {
    let new = |name: &str| NewUser {
        username: name.into(),
        password_hash: None,
        given_name: None,
        family_name: None,
        email: None,
        app_roles: vec![AppRole::IdentityDomainAdministrator],
    };
    store.repos.users.create(new("admin"), 1).await.unwrap();
    assert!(matches!(
        store.repos.users.create(new("Admin"), 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .repos
            .users
            .exists_with_role(AppRole::IdentityDomainAdministrator)
            .await
            .unwrap()
    );
}

#[test]
fn migrations_stay_in_step() {
    let names = |engine: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let (sqlite, postgres) = (names("sqlite"), names("postgres"));
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "every migration must exist for both engines, with the same number and name"
    );
    // Same tables and indexes on both sides.
    for name in &sqlite {
        let objects = |engine: &str| {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(engine)
                    .join(name),
            )
            .unwrap();
            text.lines()
                .filter(|l| l.starts_with("CREATE ") || l.starts_with("ALTER "))
                .map(|l| l.split(['(', ' ']).take(6).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        };
        assert_eq!(objects("sqlite"), objects("postgres"), "{name}");
    }
}

#[allow(dead_code)]
fn assert_send_sync(_: Arc<dyn latchkey_core::store::UserRepo>) {}

async fn the_deny_list_and_ended_sessions_revoke_access_tokens(store: &Store, _: &TestDatabase) {
    let (session, _) = seed_session(store).await;
    let tokens = &store.repos.tokens;
    assert!(
        !tokens
            .access_token_revoked("jti-1", Some(&session.id))
            .await
            .unwrap()
    );
    assert!(!tokens.access_token_revoked("jti-1", None).await.unwrap());
    tokens.revoke_access_token("jti-1", 500).await.unwrap();
    tokens.revoke_access_token("jti-1", 500).await.unwrap(); // idempotent
    assert!(tokens.access_token_revoked("jti-1", None).await.unwrap());
    assert!(
        !tokens
            .access_token_revoked("jti-2", Some(&session.id))
            .await
            .unwrap()
    );
    tokens.revoke_session(&session.id, 200).await.unwrap();
    assert!(
        tokens
            .access_token_revoked("jti-2", Some(&session.id))
            .await
            .unwrap(),
        "an ended session revokes its access tokens"
    );
    assert!(
        tokens
            .access_token_revoked("jti-3", Some("no-such-session"))
            .await
            .unwrap(),
        "so does a deleted one"
    );
}

/// The first admin's generated password: remembered by a digest of its
/// hash, carried over a rehash of the same password, and no longer
/// matching once any door sets a new one.
async fn a_generated_password_is_remembered_until_changed(store: &Store, _: &TestDatabase) {
    use latchkey_core::secrets::sha256_hex;
    let users = &store.repos.users;
    let admin = users
        .create(
            NewUser {
                username: "admin".into(),
                password_hash: Some("$argon2id$generated".into()),
                given_name: None,
                family_name: None,
                email: None,
                app_roles: vec![AppRole::IdentityDomainAdministrator],
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        users.generated_password_digest(&admin.id).await.unwrap(),
        None
    );
    users
        .remember_generated_password(&admin.id, &sha256_hex("$argon2id$generated"))
        .await
        .unwrap();
    assert!(matches!(
        users.remember_generated_password("no-such-user", "x").await,
        Err(StoreError::NotFound)
    ));
    let digest = || async { users.generated_password_digest(&admin.id).await.unwrap() };
    assert_eq!(digest().await, Some(sha256_hex("$argon2id$generated")));
    // Rehashed with current parameters: the same password, still generated.
    users
        .upgrade_password_hash(&admin.id, "$argon2id$generated", "$argon2id$rehashed", 110)
        .await
        .unwrap();
    assert_eq!(digest().await, Some(sha256_hex("$argon2id$rehashed")));
    // A new password: the digest no longer matches the hash.
    users
        .set_password_hash(&admin.id, "$argon2id$chosen", 120)
        .await
        .unwrap();
    assert_ne!(digest().await, Some(sha256_hex("$argon2id$chosen")));
    // A rehash of a chosen password never makes it look generated.
    users
        .upgrade_password_hash(
            &admin.id,
            "$argon2id$chosen",
            "$argon2id$chosen-rehashed",
            130,
        )
        .await
        .unwrap();
    assert_ne!(
        digest().await,
        Some(sha256_hex("$argon2id$chosen-rehashed"))
    );
}

async fn password_changes_and_deactivation_end_sessions(store: &Store, _: &TestDatabase) {
    let (session, _) = seed_session(store).await;
    let users = &store.repos.users;
    let tokens = &store.repos.tokens;
    let user_id = session.user_id.clone();
    assert_eq!(
        tokens.list_sessions(&user_id).await.unwrap(),
        vec![session.clone()]
    );
    // An upgrade of the same password's hash keeps sessions.
    let old = users
        .find_by_id(&user_id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    users
        .upgrade_password_hash(&user_id, &old, "$argon2id$upgraded", 150)
        .await
        .unwrap();
    assert_eq!(tokens.list_sessions(&user_id).await.unwrap().len(), 1);
    // An upgrade racing an administrator's reset loses.
    users
        .upgrade_password_hash(&user_id, &old, "$argon2id$stale-upgrade", 155)
        .await
        .unwrap();
    assert_eq!(
        users
            .find_by_id(&user_id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$upgraded")
    );
    // A new password ends them.
    users
        .set_password_hash(&user_id, "$argon2id$new", 160)
        .await
        .unwrap();
    assert!(tokens.list_sessions(&user_id).await.unwrap().is_empty());

    let second = Session {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: 170,
        ..session.clone()
    };
    tokens.start_session(&second, None, None).await.unwrap();
    users.set_active(&user_id, false, 180).await.unwrap();
    assert!(
        tokens.list_sessions(&user_id).await.unwrap().is_empty(),
        "deactivation ends sessions"
    );
    users.set_active(&user_id, true, 190).await.unwrap();

    // Through the domain file: a changed password ends sessions too.
    let third = Session {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: 200,
        ..session.clone()
    };
    tokens.start_session(&third, None, None).await.unwrap();
    let mut changed = plan();
    changed.users[0].password = HashChange::Set("$argon2id$from-the-file".into());
    store.repos.domain.apply(&changed, 210).await.unwrap();
    assert!(tokens.list_sessions(&user_id).await.unwrap().is_empty());

    let fourth = Session {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: 220,
        ..session
    };
    tokens.start_session(&fourth, None, None).await.unwrap();
    assert_eq!(tokens.revoke_user_sessions(&user_id, 230).await.unwrap(), 1);
    assert!(tokens.list_sessions(&user_id).await.unwrap().is_empty());
}

async fn a_session_cap_ends_the_oldest_sessions(store: &Store, _: &TestDatabase) {
    let (first, _) = seed_session(store).await;
    let tokens = &store.repos.tokens;
    let mut ids = vec![first.id.clone()];
    for at in [110, 120, 130] {
        let next = Session {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: at,
            ..first.clone()
        };
        ids.push(next.id.clone());
        tokens.start_session(&next, None, Some(2)).await.unwrap();
    }
    let live: Vec<String> = tokens
        .list_sessions(&first.user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        live,
        vec![ids[3].clone(), ids[2].clone()],
        "the two newest stay"
    );
}

async fn housekeeping_purges_only_what_expired(store: &Store, _: &TestDatabase) {
    let (session, _) = seed_session(store).await; // h0 expires at 10_000
    let tokens = &store.repos.tokens;
    let mut later = refresh_in(&session, "h-late", 1);
    later.expires_at = 50_000;
    let first = tokens.find_refresh("h0").await.unwrap().unwrap().token;
    assert_eq!(
        tokens.rotate_refresh(&first, &later, 200).await.unwrap(),
        Rotation::Stored
    );
    for i in 0..5 {
        tokens
            .revoke_access_token(&format!("old-{i}"), 1_000)
            .await
            .unwrap();
    }
    tokens.revoke_access_token("fresh", 90_000).await.unwrap();

    // Batches of 2: callers loop; each call deletes at most 2.
    assert_eq!(tokens.purge_denied_tokens(20_000, 2).await.unwrap(), 2);
    assert_eq!(tokens.purge_denied_tokens(20_000, 10).await.unwrap(), 3);
    assert!(tokens.access_token_revoked("fresh", None).await.unwrap());
    assert_eq!(
        tokens.purge_refresh_tokens(20_000, 10).await.unwrap(),
        1,
        "only h0 expired"
    );
    assert!(tokens.find_refresh("h-late").await.unwrap().is_some());
    // The session still holds a token: kept.
    assert_eq!(tokens.purge_sessions(20_000, 20_000, 10).await.unwrap(), 0);
    // Ended sessions go once their horizon passed.
    tokens.revoke_session(&session.id, 30_000).await.unwrap();
    assert_eq!(tokens.purge_sessions(29_999, 0, 10).await.unwrap(), 0);
    assert_eq!(tokens.purge_sessions(30_001, 0, 10).await.unwrap(), 1);
    assert!(tokens.find_session(&session.id).await.unwrap().is_none());
    assert!(
        tokens.find_refresh("h-late").await.unwrap().is_none(),
        "its tokens went with it"
    );
}

async fn scheduled_rotation_lets_one_node_win_and_keys_retire(store: &Store, _: &TestDatabase) {
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        encrypted_private_key: vec![1],
        public_jwk: "{}".into(),
        state: KeyState::Active,
        created_at: at,
        activates_at: None,
        retiring_at: None,
        retired_at: None,
    };
    let keys = store.repos.keys.clone();
    keys.activate(&key("k1", 100)).await.unwrap();
    // Not due yet.
    assert!(!keys.activate_if_due(&key("early", 150), 50).await.unwrap());
    // Due: of several racing nodes, one wins.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let keys = keys.clone();
        let candidate = key(&format!("k2-{i}"), 200);
        tasks.push(tokio::spawn(async move {
            keys.activate_if_due(&candidate, 100).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    let published = keys.list_published().await.unwrap();
    assert_eq!(published.len(), 2);
    let old = published.iter().find(|k| k.kid == "k1").unwrap();
    assert_eq!(
        (old.state, old.retiring_at),
        (KeyState::Retiring, Some(200))
    );
    // Retired once its tokens are gone.
    assert_eq!(keys.retire_keys(199, 300).await.unwrap(), 0);
    assert_eq!(keys.retire_keys(200, 300).await.unwrap(), 1);
    let published = keys.list_published().await.unwrap();
    assert_eq!(published.len(), 1);
    let all = keys.list_all().await.unwrap();
    let k1 = all.iter().find(|k| k.kid == "k1").unwrap();
    assert_eq!((k1.state, k1.retired_at), (KeyState::Retired, Some(300)));
}

fn staged_key(kid: &str, at: i64, activates_at: Option<i64>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        encrypted_private_key: vec![4, 2],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        state: if activates_at.is_some() {
            KeyState::Next
        } else {
            KeyState::Active
        },
        created_at: at,
        activates_at,
        retiring_at: None,
        retired_at: None,
    }
}

/// Key roll-over: a next key is published (listed) without signing, one
/// at a time; promoting it retires the active key, and of several nodes
/// promoting at once exactly one does it; an emergency activation drops
/// a waiting key.
async fn a_staged_key_is_published_then_promoted_once(store: &Store, _: &TestDatabase) {
    use latchkey_core::store::Staging;
    let keys = store.repos.keys.clone();
    keys.activate(&staged_key("k1", 100, None)).await.unwrap();
    assert_eq!(
        keys.stage(&staged_key("k2", 110, Some(410)), None)
            .await
            .unwrap(),
        Staging::Staged
    );
    assert_eq!(
        keys.stage(&staged_key("k3", 120, Some(420)), None)
            .await
            .unwrap(),
        Staging::AlreadyStaged("k2".into()),
        "one key waits at a time"
    );
    let states = |list: Vec<SigningKeyRecord>| {
        list.into_iter()
            .map(|k| (k.kid, k.state, k.activates_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(keys.list_published().await.unwrap()),
        [
            ("k2".to_owned(), KeyState::Next, Some(410)),
            ("k1".to_owned(), KeyState::Active, None),
        ],
        "published, newest first"
    );
    assert!(!keys.promote("k1", 400).await.unwrap(), "only a next key");
    assert!(!keys.promote("nobody", 400).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            keys.promote("k2", 410).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one node promotes");
    let published = keys.list_published().await.unwrap();
    let k1 = published.iter().find(|k| k.kid == "k1").unwrap();
    assert_eq!((k1.state, k1.retiring_at), (KeyState::Retiring, Some(410)));
    let k2 = published.iter().find(|k| k.kid == "k2").unwrap();
    assert_eq!((k2.state, k2.activates_at), (KeyState::Active, Some(410)));

    // The emergency path: a waiting key never signs, and goes.
    keys.stage(&staged_key("k3", 500, Some(800)), None)
        .await
        .unwrap();
    keys.activate(&staged_key("k4", 510, None)).await.unwrap();
    let all = keys.list_all().await.unwrap();
    let k3 = all.iter().find(|k| k.kid == "k3").unwrap();
    assert_eq!((k3.state, k3.retired_at), (KeyState::Retired, Some(510)));
    assert!(!keys.promote("k3", 800).await.unwrap());
    assert_eq!(
        states(keys.list_published().await.unwrap())
            .into_iter()
            .map(|(kid, state, _)| (kid, state))
            .collect::<Vec<_>>(),
        [
            ("k4".to_owned(), KeyState::Active),
            ("k2".to_owned(), KeyState::Retiring),
            ("k1".to_owned(), KeyState::Retiring),
        ]
    );
}

/// Scheduled staging: not before the active key has signed long enough
/// (counted from its promotion), and of several racing nodes one stages.
async fn scheduled_staging_lets_one_node_win(store: &Store, _: &TestDatabase) {
    use latchkey_core::store::Staging;
    let keys = store.repos.keys.clone();
    keys.activate(&staged_key("k1", 100, None)).await.unwrap();
    keys.stage(&staged_key("k2", 150, Some(200)), None)
        .await
        .unwrap();
    keys.promote("k2", 200).await.unwrap();
    // k2 signs from 200, though made at 150.
    assert_eq!(
        keys.stage(&staged_key("early", 300, Some(600)), Some(199))
            .await
            .unwrap(),
        Staging::NotDue
    );
    let mut tasks = Vec::new();
    for i in 0..4 {
        let keys = keys.clone();
        let candidate = staged_key(&format!("k3-{i}"), 300, Some(600));
        tasks.push(tokio::spawn(async move {
            keys.stage(&candidate, Some(200)).await.unwrap()
        }));
    }
    let mut staged = 0;
    for t in tasks {
        staged += usize::from(t.await.unwrap() == Staging::Staged);
    }
    assert_eq!(staged, 1);
    let next: Vec<_> = keys
        .list_published()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == KeyState::Next)
        .collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].activates_at, Some(600));
}

/// `apply` carries a next key over with its activation time; it replaces
/// a key waiting in this database (which never signed).
async fn an_imported_next_key_replaces_the_waiting_one(store: &Store, _: &TestDatabase) {
    let keys = store.repos.keys.clone();
    keys.activate(&staged_key("local", 100, None))
        .await
        .unwrap();
    keys.stage(&staged_key("local-next", 110, Some(400)), None)
        .await
        .unwrap();
    let carried = DomainPlan {
        signing_keys: vec![staged_key("carried-next", 120, Some(500))],
        ..DomainPlan::default()
    };
    store.repos.domain.apply(&carried, 130).await.unwrap();
    let all = store.repos.domain.snapshot().await.unwrap().signing_keys;
    let find = |kid: &str| all.iter().find(|k| k.kid == kid).unwrap();
    assert_eq!(
        (
            find("carried-next").state,
            find("carried-next").activates_at
        ),
        (KeyState::Next, Some(500))
    );
    assert_eq!(find("local-next").state, KeyState::Retired);
    assert_eq!(find("local").state, KeyState::Active);
    let again = store.repos.domain.apply(&carried, 140).await.unwrap();
    assert_eq!(again.to_string(), "nothing changed (1 unchanged)");
}

async fn failed_logins_count_decay_and_clear(store: &Store, _: &TestDatabase) {
    let throttle = store.repos.throttle.clone();
    let keys = vec!["pair:al_ce:1.1.1.1".to_string(), "user:al_ce".to_string()];
    // Concurrent failures all count.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (throttle, keys) = (throttle.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            throttle.record_failure(&keys, 1_000, 0).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut found = throttle.failures(&keys, 0).await.unwrap();
    found.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        found
            .iter()
            .map(|f| (f.failures, f.last_failure))
            .collect::<Vec<_>>(),
        vec![(6, 1_000), (6, 1_000)]
    );
    // Outside the window they are forgotten, and a new failure starts over.
    assert!(throttle.failures(&keys, 1_000).await.unwrap().is_empty());
    throttle
        .record_failure(&keys[..1], 5_000, 1_000)
        .await
        .unwrap();
    assert_eq!(
        throttle.failures(&keys[..1], 1_000).await.unwrap()[0].failures,
        1
    );
    // Clearing one name leaves others alone; LIKE wildcards in names are literal.
    throttle
        .record_failure(
            &["pair:alice:2.2.2.2".to_string(), "user:alice".to_string()],
            5_000,
            0,
        )
        .await
        .unwrap();
    throttle.clear_username("al_ce").await.unwrap();
    assert!(throttle.failures(&keys, 0).await.unwrap().is_empty());
    assert_eq!(
        throttle
            .failures(&["user:alice".to_string()], 0)
            .await
            .unwrap()
            .len(),
        1
    );
    throttle.clear(&["user:alice".to_string()]).await.unwrap();
    assert!(
        throttle
            .failures(&["user:alice".to_string()], 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Housekeeping forgets idle records (pair:alice:2.2.2.2 failed at 5_000).
    assert_eq!(throttle.purge_failures(5_000, 10).await.unwrap(), 0);
    assert_eq!(throttle.purge_failures(5_001, 10).await.unwrap(), 1);

    // Known addresses.
    store.repos.domain.apply(&plan(), 100).await.unwrap();
    let alice = store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(!throttle.is_known_ip(&alice.id, "1.1.1.1").await.unwrap());
    throttle
        .remember_ip(&alice.id, "1.1.1.1", 10)
        .await
        .unwrap();
    throttle
        .remember_ip(&alice.id, "1.1.1.1", 20)
        .await
        .unwrap();
    assert!(throttle.is_known_ip(&alice.id, "1.1.1.1").await.unwrap());
    assert!(!throttle.is_known_ip(&alice.id, "1.1.1.2").await.unwrap());
}

async fn client_assertion_ids_are_accepted_once_and_purged(store: &Store, _: &TestDatabase) {
    let replay = &store.repos.assertions;
    assert!(
        replay
            .record_assertion("app-a", "jti-1", 500)
            .await
            .unwrap()
    );
    assert!(
        !replay
            .record_assertion("app-a", "jti-1", 900)
            .await
            .unwrap(),
        "a jti is accepted once"
    );
    assert!(
        replay
            .record_assertion("app-b", "jti-1", 500)
            .await
            .unwrap(),
        "jti values are per client"
    );
    // Two nodes racing with one assertion: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let replay = replay.clone();
            tokio::spawn(async move { replay.record_assertion("app-a", "jti-race", 700).await })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        wins += usize::from(racer.await.unwrap().unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(replay.purge_assertions(600, 100).await.unwrap(), 2);
    assert!(
        !replay
            .record_assertion("app-a", "jti-race", 700)
            .await
            .unwrap(),
        "unexpired entries survive the purge"
    );
    assert!(
        replay
            .record_assertion("app-a", "jti-1", 900)
            .await
            .unwrap()
    );
}

async fn secrets_rotate_with_grace_and_deactivated_apps_lose_their_sessions(
    store: &Store,
    _: &TestDatabase,
) {
    let (session, _) = seed_session(store).await;
    let apps = &store.repos.apps;
    let app = apps.find_by_client_id("hr-mobile").await.unwrap().unwrap();
    assert!(app.active);
    assert_eq!(app.previous_secret, None);
    let previous = PreviousSecret {
        hash: app.secret_hash.clone().unwrap(),
        sealed: Some("sealed-old".into()),
        expires_at: 5000,
    };
    apps.set_secret(
        &app.id,
        &NewSecret {
            hash: "hmac-sha256$new".into(),
            sealed: Some("sealed-new".into()),
            previous: Some(previous.clone()),
        },
        200,
    )
    .await
    .unwrap();
    let app = apps.find_by_client_id("hr-mobile").await.unwrap().unwrap();
    assert_eq!(app.secret_hash.as_deref(), Some("hmac-sha256$new"));
    assert_eq!(app.secret_sealed.as_deref(), Some("sealed-new"));
    assert_eq!(app.previous_secret, Some(previous));
    assert!(app.previous_secret_at(4999).is_some());
    assert!(app.previous_secret_at(5000).is_none());

    // Re-applying the domain (which keeps the secret) keeps the grace
    // period, but drops sealed secrets once client_secret_jwt is off.
    let mut plan = plan();
    plan.apps[0].secret = HashChange::Keep;
    let summary = store.repos.domain.apply(&plan, 300).await.unwrap();
    assert_eq!(summary.count(ChangeOutcome::Updated), 1, "{summary}");
    let app = apps.find_by_client_id("hr-mobile").await.unwrap().unwrap();
    assert_eq!(app.secret_sealed, None);
    assert_eq!(
        app.previous_secret.as_ref().map(|p| p.sealed.clone()),
        Some(None)
    );
    let summary = store.repos.domain.apply(&plan, 310).await.unwrap();
    assert_eq!(summary.count(ChangeOutcome::Unchanged), 4, "{summary}");
    // A secret written by the administrator ends the grace period.
    store.repos.domain.apply(&self::plan(), 320).await.unwrap();
    let app = apps.find_by_client_id("hr-mobile").await.unwrap().unwrap();
    assert_eq!(app.secret_hash.as_deref(), Some("hmac-sha256$abc"));
    assert_eq!(app.previous_secret, None);

    // Deactivation ends the app's sessions; activation does not revive them.
    apps.set_active(&app.id, false, 400).await.unwrap();
    let app = apps.find_by_client_id("hr-mobile").await.unwrap().unwrap();
    assert!(!app.active);
    assert!(
        store
            .repos
            .tokens
            .list_sessions(&session.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    apps.set_active(&app.id, true, 410).await.unwrap();
    assert!(
        apps.find_by_client_id("hr-mobile")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert!(matches!(
        apps.set_active("no-such-app", true, 420).await,
        Err(StoreError::NotFound)
    ));
}

fn record(username: &str, given: &str, family: &str, email: &str) -> UserRecord {
    UserRecord {
        username: username.into(),
        external_id: None,
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        display_name: None,
        email: Some(email.into()),
        active: true,
    }
}

fn users_matching(filter: &str) -> ListQuery<UserField> {
    ListQuery {
        filter: Some(resolve::<UserSchema>(&parse_filter(filter).unwrap()).unwrap()),
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100,
        cursor: None,
    }
}

async fn directory_queries_filter_sort_and_page_in_the_database(store: &Store, _: &TestDatabase) {
    let dir = &store.repos.directory;
    let mut ids = Vec::new();
    for (i, (user, given, family, email)) in [
        ("Alice", "Alice", "Liddell", "Alice@Example.com"),
        ("bob", "Bob", "O'Malley", "bob@example.org"),
        ("carol_1", "Carol", "Zimmer", "carol@example.com"),
        ("dave%", "Dave", "adams", "dave@elsewhere.net"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(user, given, family, email);
        r.active = i != 3;
        ids.push(dir.create_user(&r, None, 100 + i as i64).await.unwrap().id);
    }
    let group = dir
        .create_group("Admins", None, &[ids[0].clone(), ids[2].clone()], 200)
        .await
        .unwrap();
    let names = |page: Page<latchkey_core::model::User>| {
        page.items
            .into_iter()
            .map(|u| u.username)
            .collect::<Vec<_>>()
    };
    let query = |f: &str| {
        let q = users_matching(f);
        async move { names(dir.query_users(&q).await.unwrap()) }
    };
    assert_eq!(query(r#"userName eq "ALICE""#).await, ["Alice"]);
    assert_eq!(
        query(r#"emails co "EXAMPLE.COM""#).await,
        ["Alice", "carol_1"]
    );
    assert_eq!(query(r#"emails.value ew ".org""#).await, ["bob"]);
    assert_eq!(query(r#"name.familyName co "'m""#).await, ["bob"]);
    // LIKE metacharacters in values are literal.
    assert_eq!(query(r#"userName co "_""#).await, ["carol_1"]);
    assert_eq!(query(r#"userName ew "%""#).await, ["dave%"]);
    assert_eq!(query(r#"userName sw "%""#).await, Vec::<String>::new());
    assert_eq!(query("active eq false").await, ["dave%"]);
    assert_eq!(
        query(r#"not (active eq false) and (name.givenName sw "a" or name.givenName sw "c")"#)
            .await,
        ["Alice", "carol_1"]
    );
    assert_eq!(
        query(r#"groups[display eq "admins"]"#).await,
        ["Alice", "carol_1"]
    );
    assert_eq!(
        query(&format!(
            r#"groups.value eq "{}" and userName ne "alice""#,
            group.id
        ))
        .await,
        ["carol_1"]
    );
    assert_eq!(query("groups pr").await, ["Alice", "carol_1"]);
    assert_eq!(query("externalId pr").await, Vec::<String>::new());
    assert_eq!(
        query(r#"meta.created ge "1970-01-01T00:01:42Z""#).await,
        ["carol_1", "dave%"]
    );
    assert_eq!(
        query(r#"emails[type eq "work" and value sw "bob"]"#).await,
        ["bob"]
    );

    // Sorting (case-insensitive where the attribute is) and paging.
    let mut q = users_matching("userName pr");
    q.sort_by = Some(UserField::FamilyName);
    assert_eq!(
        names(dir.query_users(&q).await.unwrap()),
        ["dave%", "Alice", "bob", "carol_1"]
    );
    q.descending = true;
    q.start_index = 2;
    q.count = 2;
    let page = dir.query_users(&q).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(names(page), ["bob", "Alice"]);
    q.count = 0;
    let page = dir.query_users(&q).await.unwrap();
    assert_eq!((page.total, page.items.len()), (4, 0));
    q.filter = None;
    q.sort_by = None;
    q.descending = false;
    q.start_index = 1;
    q.count = 3;
    assert_eq!(
        dir.query_users(&q)
            .await
            .unwrap()
            .items
            .iter()
            .map(|u| u.id.clone())
            .collect::<Vec<_>>(),
        ids[..3],
        "by default, in creation order"
    );

    let groups = dir.groups_of_users(&ids).await.unwrap();
    assert_eq!(groups[&ids[0]][0].name, "Admins");
    assert!(!groups.contains_key(&ids[1]));
    let members = dir
        .members_of(std::slice::from_ref(&group.id))
        .await
        .unwrap();
    assert_eq!(
        members[&group.id]
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["Alice", "carol_1"]
    );
    let gq = ListQuery {
        filter: Some(
            resolve::<GroupSchema>(&parse_filter(r#"members[display eq "carol_1"]"#).unwrap())
                .unwrap(),
        ),
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 10,
        cursor: None,
    };
    assert_eq!(dir.query_groups(&gq).await.unwrap().items, vec![group]);

    // Cursor paging (RFC 9865) walks every match once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut q = users_matching("userName pr");
        q.count = 2;
        q.cursor = Some(cursor.clone());
        let page = dir.query_users(&q).await.unwrap();
        assert_eq!(page.total, 4);
        seen.extend(page.items.iter().map(|u| u.id.clone()));
        if !page.more {
            break;
        }
        cursor = page.items.last().unwrap().id.clone();
    }
    assert_eq!(seen, ids, "every user once, in creation order");
}

async fn directory_writes_are_versioned_and_end_sessions(store: &Store, _: &TestDatabase) {
    let (session, _) = seed_session(store).await;
    let dir = &store.repos.directory;
    let alice = store
        .repos
        .users
        .find_by_id(&session.user_id)
        .await
        .unwrap()
        .unwrap();
    let mut r = record("alice", "Alice", "Liddell", "alice@example.com");
    r.display_name = Some("Alice L.".into());
    let updated = dir
        .replace_user(&alice.id, &r, None, Some(alice.version), 300)
        .await
        .unwrap();
    assert_eq!(updated.version, alice.version + 1);
    assert_eq!(updated.display_name.as_deref(), Some("Alice L."));
    assert_eq!(
        updated.password_hash, alice.password_hash,
        "no password: kept"
    );
    assert_eq!(
        store
            .repos
            .tokens
            .list_sessions(&alice.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        dir.replace_user(&alice.id, &r, None, Some(alice.version), 310)
            .await,
        Err(StoreError::VersionMismatch)
    ));
    let updated = dir
        .replace_user(&alice.id, &r, Some("$argon2id$new"), None, 320)
        .await
        .unwrap();
    assert_eq!(updated.password_hash.as_deref(), Some("$argon2id$new"));
    assert!(
        store
            .repos
            .tokens
            .list_sessions(&alice.id)
            .await
            .unwrap()
            .is_empty(),
        "a new password ends sessions"
    );
    assert!(matches!(
        dir.create_user(&record("ALICE", "x", "y", "z@x"), None, 330)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let bob = dir
        .create_user(&record("bob", "B", "C", "b@x"), None, 330)
        .await
        .unwrap();
    assert!(matches!(
        dir.replace_user(&bob.id, &record("Alice", "x", "y", "z"), None, None, 340)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        dir.replace_user("missing", &r, None, None, 340).await,
        Err(StoreError::NotFound)
    ));

    let group = dir
        .create_group("ops", None, std::slice::from_ref(&bob.id), 400)
        .await
        .unwrap();
    assert!(matches!(
        dir.create_group("ops", None, &[], 400).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        dir.create_group("ghosts", None, &["no-such-user".into()], 400)
            .await
            .is_err()
    );
    assert!(dir.find_group("whatever").await.unwrap().is_none());
    let renamed = dir
        .replace_group(
            &group.id,
            "operators",
            None,
            &[alice.id.clone(), bob.id.clone()],
            Some(1),
            410,
        )
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version), ("operators", 2));
    assert_eq!(
        dir.members_of(std::slice::from_ref(&group.id))
            .await
            .unwrap()[&group.id]
            .len(),
        2
    );
    assert!(matches!(
        dir.delete_group(&group.id, Some(1)).await,
        Err(StoreError::VersionMismatch)
    ));
    dir.delete_group(&group.id, Some(2)).await.unwrap();
    assert!(dir.find_group(&group.id).await.unwrap().is_none());
    dir.delete_user(&bob.id, None).await.unwrap();
    assert!(matches!(
        dir.delete_user(&bob.id, None).await,
        Err(StoreError::NotFound)
    ));
}

async fn audit_events_are_kept_queried_newest_first_and_purged(store: &Store, _: &TestDatabase) {
    use latchkey_core::audit::{AuditEvent, AuditQuery, kind};
    let audit = &store.repos.audit;
    for (i, (event, ok, subject)) in [
        (kind::SIGN_IN, false, "alice"),
        (kind::SIGN_IN, true, "alice"),
        (kind::USER_LOCKED, true, "bob"),
        (kind::SIGN_IN, false, "bob"),
    ]
    .into_iter()
    .enumerate()
    {
        audit
            .record(
                &AuditEvent::new(event, ok, 100 + i as i64)
                    .subject(subject)
                    .client("hr-mobile")
                    .detail("x".repeat(1000)),
            )
            .await
            .unwrap();
    }
    let query = |q: AuditQuery| {
        let audit = audit.clone();
        async move { audit.query(&q).await.unwrap() }
    };
    let all = query(AuditQuery {
        start_index: 1,
        count: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(all.total, 4);
    assert_eq!(
        all.items.iter().map(|e| e.at).collect::<Vec<_>>(),
        [103, 102, 101, 100],
        "newest first"
    );
    assert_eq!(
        all.items[0].detail.as_ref().unwrap().len(),
        256,
        "fields are capped"
    );
    let sign_ins = query(AuditQuery {
        event_type: Some(kind::SIGN_IN.into()),
        subject: Some("alice".into()),
        start_index: 1,
        count: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(
        sign_ins
            .items
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["success", "failure"]
    );
    let window = query(AuditQuery {
        since: Some(101),
        until: Some(103),
        start_index: 2,
        count: 1,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!((window.total, window.items[0].at), (2, 101));
    assert_eq!(audit.purge_audit(102, 10).await.unwrap(), 2);
    assert_eq!(
        query(AuditQuery {
            start_index: 1,
            count: 10,
            ..AuditQuery::default()
        })
        .await
        .total,
        2
    );
}

/// The audit queue in front of each engine: a refused sign-in repeated
/// from one address is one row with a count, another address or reason is
/// another row, and the next window starts a new row.
async fn repeated_refused_sign_ins_fold_into_one_event_with_a_count(
    store: &Store,
    _: &TestDatabase,
) {
    use latchkey_core::audit::{
        AuditEvent, AuditQuery, AuditQueue, AuditQueueConfig, AuditRepo, kind,
    };
    let clock = Arc::new(latchkey_core::clock::FixedClock::new(1_000));
    let queue = AuditQueue::start(
        store.repos.audit.clone(),
        AuditQueueConfig {
            fold_window_secs: 60,
            ..AuditQueueConfig::default()
        },
        clock.clone(),
    );
    let refused = |at: i64, ip: &str, reason: &str| {
        AuditEvent::new(kind::SIGN_IN, false, at)
            .subject("alice")
            .client("hr-mobile")
            .ip(Some(ip.parse().unwrap()))
            .detail(reason)
    };
    for i in 0..50 {
        queue
            .record(&refused(1_000 + i / 2, "10.0.0.1", "wrong password"))
            .await
            .unwrap();
    }
    queue
        .record(&refused(1_010, "10.0.0.2", "wrong password"))
        .await
        .unwrap();
    queue
        .record(&refused(1_020, "10.0.0.1", "throttled (this IP)"))
        .await
        .unwrap();
    // Past the window: a new event.
    queue
        .record(&refused(1_061, "10.0.0.1", "wrong password"))
        .await
        .unwrap();
    queue
        .record(&AuditEvent::new(kind::SIGN_IN, true, 1_062).subject("alice"))
        .await
        .unwrap();
    let page = queue
        .query(&AuditQuery {
            event_type: Some(kind::SIGN_IN.into()),
            start_index: 1,
            count: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    // (at, outcome, ip, occurrences, last_at)
    type Row = (i64, String, Option<String>, u32, Option<i64>);
    let rows: Vec<Row> = page
        .items
        .iter()
        .map(|e| {
            (
                e.at,
                e.outcome.clone(),
                e.ip.clone(),
                e.occurrences,
                e.last_at,
            )
        })
        .collect();
    let ip = |s: &str| Some(s.to_owned());
    assert_eq!(
        rows,
        [
            (1_062, "success".into(), None, 1, None),
            (1_061, "failure".into(), ip("10.0.0.1"), 1, None),
            (1_020, "failure".into(), ip("10.0.0.1"), 1, None),
            (1_010, "failure".into(), ip("10.0.0.2"), 1, None),
            (1_000, "failure".into(), ip("10.0.0.1"), 50, Some(1_024)),
        ]
    );
    queue.close(std::time::Duration::from_secs(5)).await;
}

/// What `export` reads and a carried-over domain file writes: given ids,
/// the lock and SCIM attributes (kept when the file is silent on them).
async fn apply_creates_with_given_ids_and_snapshot_reads_everything_back(
    store: &Store,
    _: &TestDatabase,
) {
    const USER: &str = "0192d4e6-7b1c-7cc3-9a2e-3f5d8e1b2a40";
    const GROUP: &str = "0192d4e6-7b1c-7cc3-9a2e-3f5d8e1b2a41";
    const APP: &str = "0192d4e6-7b1c-7cc3-9a2e-3f5d8e1b2a42";
    let mut with_ids = plan();
    with_ids.groups[0].id = Some(GROUP.into());
    with_ids.users[0].id = Some(USER.into());
    with_ids.users[0].locked = Some(true);
    with_ids.users[0].display_name = Some("Alice L.".into());
    with_ids.users[0].external_id = Some("hr-1".into());
    with_ids.apps[0].id = Some(APP.into());
    store.repos.domain.apply(&with_ids, 100).await.unwrap();

    let snapshot = store.repos.domain.snapshot().await.unwrap();
    assert_eq!(snapshot.groups[0].group.id, GROUP);
    assert_eq!(
        snapshot.groups[0].app_roles,
        [AppRole::HelpDeskAdministrator]
    );
    let alice = &snapshot.users[0];
    assert_eq!(alice.user.id, USER);
    assert!(alice.user.locked);
    assert_eq!(alice.user.display_name.as_deref(), Some("Alice L."));
    assert_eq!(alice.user.external_id.as_deref(), Some("hr-1"));
    assert_eq!(alice.groups, ["helpdesk"]);
    assert_eq!(
        alice.app_roles,
        [AppRole::UserAdministrator],
        "direct roles only"
    );
    assert_eq!(snapshot.apps[0].id, APP);
    assert_eq!(
        snapshot.resource_servers[0].audience,
        "https://hr.example.com/"
    );

    // A file silent on lock and SCIM attributes keeps them.
    let silent = plan();
    let summary = store.repos.domain.apply(&silent, 200).await.unwrap();
    assert_eq!(summary.count(ChangeOutcome::Unchanged), 4, "{summary}");
    let mut unlocked = plan();
    unlocked.users[0].locked = Some(false);
    store.repos.domain.apply(&unlocked, 300).await.unwrap();
    let again = store.repos.domain.snapshot().await.unwrap();
    assert!(!again.users[0].user.locked);
    assert_eq!(
        again.users[0].user.display_name.as_deref(),
        Some("Alice L.")
    );
}

async fn apply_carries_signing_keys_over(store: &Store, _: &TestDatabase) {
    let key = |kid: &str, state: KeyState, retiring_at: Option<i64>| SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        encrypted_private_key: vec![9, 8, 7, 0, 255],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        state,
        created_at: 50,
        activates_at: None,
        retiring_at,
        retired_at: None,
    };
    // This database made its own key before the import.
    store
        .repos
        .keys
        .activate(&SigningKeyRecord {
            created_at: 90,
            ..key("local", KeyState::Active, None)
        })
        .await
        .unwrap();
    let carried = DomainPlan {
        signing_keys: vec![
            key("old", KeyState::Retiring, Some(60)),
            key("new", KeyState::Active, None),
        ],
        ..DomainPlan::default()
    };
    let summary = store.repos.domain.apply(&carried, 100).await.unwrap();
    assert_eq!(summary.count(ChangeOutcome::Created), 2, "{summary}");
    let keys = store.repos.domain.snapshot().await.unwrap().signing_keys;
    let state = |kid: &str| {
        keys.iter()
            .find(|k| k.kid == kid)
            .map(|k| (k.state, k.retiring_at))
            .unwrap()
    };
    assert_eq!(
        state("new"),
        (KeyState::Active, None),
        "the imported key signs"
    );
    assert_eq!(
        state("local"),
        (KeyState::Retiring, Some(100)),
        "the local key retires"
    );
    assert_eq!(state("old"), (KeyState::Retiring, Some(60)));
    assert_eq!(
        keys.iter()
            .find(|k| k.kid == "new")
            .unwrap()
            .encrypted_private_key,
        vec![9, 8, 7, 0, 255],
        "stored exactly as carried"
    );
    let again = store.repos.domain.apply(&carried, 200).await.unwrap();
    assert_eq!(again.to_string(), "nothing changed (2 unchanged)");
}

async fn console_sessions_are_found_by_hash_refreshed_once_and_purged(
    store: &Store,
    _db: &TestDatabase,
) {
    use latchkey_core::console::ConsoleSessionRecord;
    let repo = store.repos.console_sessions.clone();
    let session = |id_hash: &str, created_at: i64, last_seen_at: i64| ConsoleSessionRecord {
        id_hash: id_hash.into(),
        user_id: "user-1".into(),
        sealed_tokens: "sealed-1".into(),
        access_expires_at: 1_300,
        created_at,
        last_seen_at,
        refreshing_since: None,
    };
    repo.create_console_session(&session("h1", 1_000, 1_000))
        .await
        .unwrap();
    assert_eq!(
        repo.find_console_session("h1").await.unwrap(),
        Some(session("h1", 1_000, 1_000))
    );
    assert_eq!(repo.find_console_session("h2").await.unwrap(), None);
    assert!(matches!(
        repo.create_console_session(&session("h1", 1_000, 1_000))
            .await,
        Err(StoreError::Conflict(_))
    ));

    // Activity moves forward only.
    repo.touch_console_session("h1", 1_100).await.unwrap();
    repo.touch_console_session("h1", 1_050).await.unwrap();
    assert_eq!(
        repo.find_console_session("h1")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        1_100
    );

    // Of many concurrent claims to refresh, exactly one wins.
    let claims = futures_join_all(
        (0..8)
            .map(|_| {
                let repo = repo.clone();
                tokio::spawn(async move { repo.claim_console_refresh("h1", 1_200, 1_170).await })
            })
            .collect(),
    )
    .await;
    assert_eq!(claims.iter().filter(|won| **won).count(), 1);
    // A claim younger than the stale limit holds; an older one is taken over.
    assert!(
        !repo
            .claim_console_refresh("h1", 1_210, 1_180)
            .await
            .unwrap()
    );
    assert!(
        repo.claim_console_refresh("h1", 1_240, 1_230)
            .await
            .unwrap()
    );
    repo.store_refreshed_tokens("h1", "sealed-2", 1_600)
        .await
        .unwrap();
    let refreshed = repo.find_console_session("h1").await.unwrap().unwrap();
    assert_eq!(
        (
            refreshed.sealed_tokens.as_str(),
            refreshed.access_expires_at,
            refreshed.refreshing_since
        ),
        ("sealed-2", 1_600, None)
    );
    assert!(
        repo.claim_console_refresh("h1", 1_250, 1_220)
            .await
            .unwrap()
    );

    // Purge: idle too long, or too old however active.
    repo.create_console_session(&session("idle", 1_000, 1_010))
        .await
        .unwrap();
    repo.create_console_session(&session("old", 500, 1_500))
        .await
        .unwrap();
    assert_eq!(
        repo.purge_console_sessions(1_050, 900, 100).await.unwrap(),
        2
    );
    assert!(repo.find_console_session("idle").await.unwrap().is_none());
    assert!(repo.find_console_session("old").await.unwrap().is_none());
    assert!(repo.find_console_session("h1").await.unwrap().is_some());

    repo.delete_console_session("h1").await.unwrap();
    assert!(repo.find_console_session("h1").await.unwrap().is_none());
    repo.delete_console_session("h1").await.unwrap();
}

async fn futures_join_all(
    handles: Vec<tokio::task::JoinHandle<latchkey_core::store::StoreResult<bool>>>,
) -> Vec<bool> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap().unwrap());
    }
    out
}

/// Sign-ins record the username, changes record the user id: a subject
/// filter naming the user either way finds both, and nobody else's.
async fn an_audit_subject_names_a_user_by_id_or_username(store: &Store, _: &TestDatabase) {
    use latchkey_core::audit::{AuditEvent, AuditQuery, kind};
    let alice = store
        .repos
        .users
        .create(
            NewUser {
                username: "Alice".into(),
                password_hash: None,
                given_name: None,
                family_name: None,
                email: None,
                app_roles: vec![],
            },
            1,
        )
        .await
        .unwrap();
    let audit = &store.repos.audit;
    for (i, (event, subject)) in [
        (kind::SIGN_IN, "Alice"),
        (kind::USER_LOCKED, alice.id.as_str()),
        (kind::SIGN_IN, "bob"),
        (kind::APP_CREATED, "hr-mobile"),
    ]
    .into_iter()
    .enumerate()
    {
        audit
            .record(&AuditEvent::new(event, true, 100 + i as i64).subject(subject))
            .await
            .unwrap();
    }
    let types = |subject: &str| {
        let q = AuditQuery {
            subject: Some(subject.into()),
            start_index: 1,
            count: 10,
            ..AuditQuery::default()
        };
        async move {
            let page = audit.query(&q).await.unwrap();
            assert_eq!(page.total as usize, page.items.len());
            page.items
                .into_iter()
                .map(|e| e.event_type)
                .collect::<Vec<_>>()
        }
    };
    let both = [kind::USER_LOCKED, kind::SIGN_IN];
    assert_eq!(types("Alice").await, both);
    assert_eq!(types("alice").await, both, "usernames ignore case");
    assert_eq!(types(&alice.id).await, both);
    assert_eq!(
        types("bob").await,
        [kind::SIGN_IN],
        "an unknown user, as typed"
    );
    assert_eq!(types("hr-mobile").await, [kind::APP_CREATED]);
    assert!(types("nobody").await.is_empty());
}
