//! Store conformance for what the console's group and user pages need
//! beyond `conformance.rs`: a group's own application roles (read,
//! grant, revoke), where a user's roles come from, and a user's console
//! sessions. On SQLite always and PostgreSQL whenever one answers
//! (required with LATCHKEY_REQUIRE_POSTGRES=1); kept apart from
//! `conformance.rs` so the two suites can grow independently. Each run
//! gets its own database.

use latchkey_core::model::AppRole;
use latchkey_core::scim::user::GroupRef;
use latchkey_core::store::{HeldRole, NewUser, StoreError};
use latchkey_store::Store;
use latchkey_store::testing::TestDatabase;

latchkey_store::conformance!(
    group_roles_are_granted_revoked_and_reach_the_members,
    held_roles_say_where_each_role_comes_from,
    console_sessions_are_listed_per_user_newest_first,
);

const NOW: i64 = 1_700_000_000;

async fn user(store: &Store, username: &str, roles: Vec<AppRole>) -> String {
    store
        .repos
        .users
        .create(
            NewUser {
                username: username.into(),
                password_hash: None,
                given_name: None,
                family_name: None,
                email: None,
                app_roles: roles,
            },
            NOW,
        )
        .await
        .expect("create user")
        .id
}

async fn group_roles_are_granted_revoked_and_reach_the_members(store: &Store, _: &TestDatabase) {
    let dir = &store.repos.directory;
    let alice = user(store, "alice", vec![]).await;
    let group = dir
        .create_group("auditors", None, std::slice::from_ref(&alice), NOW)
        .await
        .unwrap();
    let other = dir.create_group("others", None, &[], NOW).await.unwrap();
    assert!(dir.group_roles(&group.id).await.unwrap().is_empty());
    assert!(
        !store
            .repos
            .users
            .exists_with_role(AppRole::AuditAdministrator)
            .await
            .unwrap()
    );

    assert!(
        dir.grant_group_role(&group.id, AppRole::AuditAdministrator)
            .await
            .unwrap()
    );
    assert!(
        !dir.grant_group_role(&group.id, AppRole::AuditAdministrator)
            .await
            .unwrap(),
        "granting again changes nothing"
    );
    assert!(
        dir.grant_group_role(&group.id, AppRole::SecurityAdministrator)
            .await
            .unwrap()
    );
    assert_eq!(
        dir.group_roles(&group.id).await.unwrap(),
        [AppRole::SecurityAdministrator, AppRole::AuditAdministrator]
    );
    assert!(dir.group_roles(&other.id).await.unwrap().is_empty());
    // A member holds the group's roles.
    assert_eq!(
        store.repos.users.effective_roles(&alice).await.unwrap(),
        [AppRole::SecurityAdministrator, AppRole::AuditAdministrator]
    );
    assert!(
        store
            .repos
            .users
            .exists_with_role(AppRole::AuditAdministrator)
            .await
            .unwrap()
    );

    assert!(
        dir.revoke_group_role(&group.id, AppRole::AuditAdministrator)
            .await
            .unwrap()
    );
    assert!(
        !dir.revoke_group_role(&group.id, AppRole::AuditAdministrator)
            .await
            .unwrap(),
        "revoking what is not held changes nothing"
    );
    assert_eq!(
        store.repos.users.effective_roles(&alice).await.unwrap(),
        [AppRole::SecurityAdministrator]
    );
    // A group's roles do not touch the group's SCIM version.
    assert_eq!(
        dir.find_group(&group.id).await.unwrap().unwrap().version,
        group.version
    );

    let missing = "0190f0f0-0000-7000-8000-000000000000";
    assert!(matches!(
        dir.grant_group_role(missing, AppRole::AuditAdministrator)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        dir.revoke_group_role(missing, AppRole::AuditAdministrator)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(dir.group_roles(missing).await.unwrap().is_empty());

    // Deleting the group takes its roles away from the members.
    dir.delete_group(&group.id, None).await.unwrap();
    assert!(
        store
            .repos
            .users
            .effective_roles(&alice)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn held_roles_say_where_each_role_comes_from(store: &Store, _: &TestDatabase) {
    let dir = &store.repos.directory;
    let alice = user(store, "alice", vec![AppRole::UserAdministrator]).await;
    let bob = user(store, "bob", vec![]).await;
    let members = [alice.clone(), bob.clone()];
    let zeta = dir.create_group("zeta", None, &members, NOW).await.unwrap();
    let alpha = dir
        .create_group("alpha", None, &members[..1], NOW)
        .await
        .unwrap();
    for (group, role) in [
        (&zeta, AppRole::UserAdministrator),
        (&alpha, AppRole::UserAdministrator),
        (&zeta, AppRole::IdentityDomainAdministrator),
    ] {
        assert!(dir.grant_group_role(&group.id, role).await.unwrap());
    }
    let via = |g: &latchkey_core::model::Group| {
        Some(GroupRef {
            id: g.id.clone(),
            name: g.name.clone(),
        })
    };
    let held = |role, via| HeldRole { role, via };
    assert_eq!(
        dir.held_roles(&alice).await.unwrap(),
        [
            held(AppRole::IdentityDomainAdministrator, via(&zeta)),
            held(AppRole::UserAdministrator, None),
            held(AppRole::UserAdministrator, via(&alpha)),
            held(AppRole::UserAdministrator, via(&zeta)),
        ]
    );
    assert_eq!(
        dir.held_roles(&bob).await.unwrap(),
        [
            held(AppRole::IdentityDomainAdministrator, via(&zeta)),
            held(AppRole::UserAdministrator, via(&zeta)),
        ]
    );
    // Revoking the direct grant leaves the roles held through groups.
    assert!(
        store
            .repos
            .users
            .revoke_role(&alice, AppRole::UserAdministrator)
            .await
            .unwrap()
    );
    assert_eq!(
        dir.held_roles(&alice).await.unwrap()[1..],
        [
            held(AppRole::UserAdministrator, via(&alpha)),
            held(AppRole::UserAdministrator, via(&zeta)),
        ]
    );
    assert!(dir.held_roles(&bob).await.unwrap().len() == 2);
    assert!(
        dir.held_roles("0190f0f0-0000-7000-8000-000000000000")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn console_sessions_are_listed_per_user_newest_first(store: &Store, _: &TestDatabase) {
    use latchkey_core::console::ConsoleSessionRecord;
    let repo = &store.repos.console_sessions;
    let session = |id_hash: &str, user_id: &str, created_at: i64| ConsoleSessionRecord {
        id_hash: id_hash.into(),
        user_id: user_id.into(),
        sealed_tokens: format!("sealed-{id_hash}"),
        access_expires_at: created_at + 300,
        created_at,
        last_seen_at: created_at,
        refreshing_since: None,
    };
    for s in [
        session("h1", "user-1", 1_000),
        session("h2", "user-2", 1_100),
        session("h3", "user-1", 1_200),
    ] {
        repo.create_console_session(&s).await.unwrap();
    }
    repo.touch_console_session("h1", 1_250).await.unwrap();
    let mut touched = session("h1", "user-1", 1_000);
    touched.last_seen_at = 1_250;
    assert_eq!(
        repo.list_console_sessions("user-1").await.unwrap(),
        [session("h3", "user-1", 1_200), touched]
    );
    assert_eq!(
        repo.list_console_sessions("user-2").await.unwrap(),
        [session("h2", "user-2", 1_100)]
    );
    assert!(
        repo.list_console_sessions("user-3")
            .await
            .unwrap()
            .is_empty()
    );
    repo.delete_console_session("h3").await.unwrap();
    assert_eq!(repo.list_console_sessions("user-1").await.unwrap().len(), 1);
}
