//! The repository implementations, written once and stamped out for each
//! engine by `impl_repos!`: the SQL is portable (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING` work on both), so only connection setup,
//! migrations and the write-transaction statement differ per engine.
//! Each store has a `pool` for reads and a `writer` for writes (the same
//! pool on PostgreSQL; one connection on SQLite, see sqlite.rs).

macro_rules! impl_repos {
    ($store:ident, $db:ty, $begin_write:expr, $rotation_lock:expr) => {
        use async_trait::async_trait;
        use latchkey_core::domain::{ApplySummary, AppSpec, ChangeOutcome, DomainPlan, DomainSnapshot, GroupSpec, HashChange, ResourceServerSpec, SnapshotGroup, SnapshotUser, UserSpec};
        use latchkey_core::model::{App, AppRole, KeyState, RefreshTokenRecord, ResourceServer, Session, SigningKeyRecord, User};
        use latchkey_core::store::{AppRepo, AssertionReplayRepo, DomainRepo, KeyRepo, NewSecret, NewUser, RefreshContext, ResourceServerRepo, Rotation, StoreResult, TokenRepo, UserRepo};
        use latchkey_core::throttle::{Failures, ThrottleRepo};

        use crate::error::map_err;
        use crate::rows::{grants_json, roles_json, to_json, AppRow, GroupRow, KeyRow, ResourceServerRow, SessionRow, UserRow};

        type Tx = sqlx::Transaction<'static, $db>;

        const USER_COLUMNS: &str = "id, username, password_hash, given_name, family_name, email, active, created_at, updated_at, external_id, display_name, version, locked";
        const APP_COLUMNS: &str = "id, client_id, name, app_type, active, secret_hash, secret_sealed, previous_secret_hash, previous_secret_sealed, previous_secret_expires_at, grant_types, redirect_uris, scopes, app_roles, jwks, certificate, access_token_ttl, refresh_token_ttl, session_lifetime, created_at, updated_at, tokens_revoked_at, refresh_token_reuse_interval";

        fn new_id() -> String {
            uuid::Uuid::now_v7().to_string()
        }

        fn username_key(username: &str) -> String {
            username.to_lowercase()
        }

        impl $store {
            async fn begin_write(&self) -> StoreResult<Tx> {
                self.writer.begin_with($begin_write).await.map_err(map_err)
            }
        }

        #[async_trait]
        impl UserRepo for $store {
            async fn find_by_username(&self, username: &str) -> StoreResult<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
                let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(username_key(username))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(User::from))
            }

            async fn find_by_id(&self, id: &str) -> StoreResult<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(User::from))
            }

            async fn list(&self) -> StoreResult<Vec<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username_key");
                let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows.into_iter().map(User::from).collect())
            }

            async fn create(&self, user: NewUser, now: i64) -> StoreResult<User> {
                let id = new_id();
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO users (id, username, username_key, password_hash, given_name, family_name, email, email_key, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, LOWER($7), TRUE, $8, $8)",
                )
                .bind(&id)
                .bind(&user.username)
                .bind(username_key(&user.username))
                .bind(&user.password_hash)
                .bind(&user.given_name)
                .bind(&user.family_name)
                .bind(&user.email)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                for role in &user.app_roles {
                    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                        .bind(&id)
                        .bind(role.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(User {
                    id,
                    username: user.username,
                    password_hash: user.password_hash,
                    given_name: user.given_name,
                    family_name: user.family_name,
                    email: user.email,
                    active: true,
                    created_at: now,
                    updated_at: now,
                    external_id: None,
                    display_name: None,
                    version: 1,
                    locked: false,
                })
            }

            async fn set_password_hash(&self, user_id: &str, hash: &str, now: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 WHERE id = $3")
                    .bind(hash)
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())?;
                end_sessions(&mut tx, user_id, now).await.map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn upgrade_password_hash(&self, user_id: &str, old: &str, hash: &str, now: i64) -> StoreResult<()> {
                // The same password, rehashed: a generated one stays
                // "never changed".
                sqlx::query(
                    "UPDATE users SET password_hash = $1, updated_at = $2, \
                     generated_password_digest = CASE WHEN generated_password_digest = $5 THEN $6 ELSE generated_password_digest END \
                     WHERE id = $3 AND password_hash = $4",
                )
                .bind(hash)
                .bind(now)
                .bind(user_id)
                .bind(old)
                .bind(latchkey_core::secrets::sha256_hex(old))
                .bind(latchkey_core::secrets::sha256_hex(hash))
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn remember_generated_password(&self, user_id: &str, digest: &str) -> StoreResult<()> {
                let done = sqlx::query("UPDATE users SET generated_password_digest = $1 WHERE id = $2")
                    .bind(digest)
                    .bind(user_id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())
            }

            async fn generated_password_digest(&self, user_id: &str) -> StoreResult<Option<String>> {
                let row: Option<(Option<String>,)> = sqlx::query_as("SELECT generated_password_digest FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.and_then(|(digest,)| digest))
            }

            async fn set_active(&self, user_id: &str, active: bool, now: i64) -> StoreResult<()> {
                self.set_user_flag("UPDATE users SET active = $1, updated_at = $2, version = version + 1 WHERE id = $3", active, !active, user_id, now).await
            }

            async fn set_locked(&self, user_id: &str, locked: bool, now: i64) -> StoreResult<()> {
                self.set_user_flag("UPDATE users SET locked = $1, updated_at = $2, version = version + 1 WHERE id = $3", locked, locked, user_id, now).await
            }

            async fn delete(&self, user_id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())
            }

            async fn grant_role(&self, user_id: &str, role: AppRole) -> StoreResult<bool> {
                let done = sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT (user_id, role) DO NOTHING")
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_role(&self, user_id: &str, role: AppRole) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn effective_roles(&self, user_id: &str) -> StoreResult<Vec<AppRole>> {
                let names: Vec<(String,)> = sqlx::query_as(
                    "SELECT role FROM user_roles WHERE user_id = $1 \
                     UNION SELECT gr.role FROM group_roles gr JOIN user_groups ug ON ug.group_id = gr.group_id WHERE ug.user_id = $1",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                let mut roles: Vec<AppRole> = names.iter().filter_map(|(n,)| n.parse().ok()).collect();
                roles.sort();
                roles.dedup();
                Ok(roles)
            }

            async fn exists_with_role(&self, role: AppRole) -> StoreResult<bool> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT user_id FROM user_roles WHERE role = $1 \
                     UNION SELECT ug.user_id FROM user_groups ug JOIN group_roles gr ON gr.group_id = ug.group_id WHERE gr.role = $1 \
                     LIMIT 1",
                )
                .bind(role.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(row.is_some())
            }
        }

        impl $store {
            /// Sets one boolean of a user (`sql` binds value, now, id) and,
            /// when `end_sessions_too`, ends the user's sessions in the
            /// same transaction.
            async fn set_user_flag(&self, sql: &'static str, value: bool, end_sessions_too: bool, user_id: &str, now: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(sql)
                    .bind(value)
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())?;
                if end_sessions_too {
                    end_sessions(&mut tx, user_id, now).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }
        }

        /// Ends every live session of a user inside `tx`.
        async fn end_sessions(tx: &mut Tx, user_id: &str, now: i64) -> Result<u64, sqlx::Error> {
            let done = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            Ok(done.rows_affected())
        }

        fn found(rows: u64) -> StoreResult<()> {
            if rows == 0 { Err(latchkey_core::store::StoreError::NotFound) } else { Ok(()) }
        }

        #[async_trait]
        impl AppRepo for $store {
            async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
                let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1");
                let row: Option<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(App::try_from).transpose()
            }

            async fn list(&self) -> StoreResult<Vec<App>> {
                let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY client_id");
                let rows: Vec<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.into_iter().map(App::try_from).collect()
            }

            async fn set_secret(&self, app_id: &str, secret: &NewSecret, now: i64) -> StoreResult<()> {
                let previous = secret.previous.as_ref();
                let done = sqlx::query(
                    "UPDATE apps SET secret_hash = $1, secret_sealed = $2, previous_secret_hash = $3, previous_secret_sealed = $4, \
                     previous_secret_expires_at = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&secret.hash)
                .bind(&secret.sealed)
                .bind(previous.map(|p| &p.hash))
                .bind(previous.and_then(|p| p.sealed.as_ref()))
                .bind(previous.map(|p| p.expires_at))
                .bind(now)
                .bind(app_id)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                found(done.rows_affected())
            }

            async fn set_active(&self, app_id: &str, active: bool, now: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                // A deactivation also ends the app's own tokens for good:
                // `issuer::app_token_live` refuses those issued up to now.
                let done = sqlx::query(
                    "UPDATE apps SET active = $1, updated_at = $2, \
                     tokens_revoked_at = CASE WHEN $1 THEN tokens_revoked_at ELSE $2 END WHERE id = $3",
                )
                    .bind(active)
                    .bind(now)
                    .bind(app_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())?;
                if !active {
                    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(app_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn delete(&self, app_id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM apps WHERE id = $1")
                    .bind(app_id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                found(done.rows_affected())
            }
        }

        #[async_trait]
        impl ResourceServerRepo for $store {
            async fn list(&self) -> StoreResult<Vec<ResourceServer>> {
                let rows: Vec<ResourceServerRow> = sqlx::query_as(
                    "SELECT id, name, audience, scopes, created_at, updated_at FROM resource_servers ORDER BY audience",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(ResourceServer::try_from).collect()
            }

            async fn delete(&self, id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM resource_servers WHERE id = $1")
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(latchkey_core::store::StoreError::NotFound);
                }
                Ok(())
            }
        }

        const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)";

        fn insert_refresh<'q>(r: &'q RefreshTokenRecord) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            sqlx::query(INSERT_REFRESH)
                .bind(&r.token_hash)
                .bind(&r.session_id)
                .bind(&r.app_id)
                .bind(&r.user_id)
                .bind(&r.scope)
                .bind(r.issued_at)
                .bind(r.expires_at)
                .bind(r.generation)
        }

        #[async_trait]
        impl TokenRepo for $store {
            async fn start_session(&self, session: &Session, first_refresh: Option<&RefreshTokenRecord>, max_live: Option<u32>) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO sessions (id, user_id, app_id, auth_time, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)")
                    .bind(&session.id)
                    .bind(&session.user_id)
                    .bind(&session.app_id)
                    .bind(session.auth_time)
                    .bind(session.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if let Some(refresh) = first_refresh {
                    insert_refresh(refresh).execute(&mut *tx).await.map_err(map_err)?;
                }
                if let Some(max_live) = max_live {
                    // The newest `max_live` stay; older live ones end.
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $1 WHERE id IN (\
                            SELECT id FROM sessions WHERE user_id = $2 AND revoked_at IS NULL \
                            ORDER BY created_at DESC, id DESC LIMIT 1000000000 OFFSET $3)",
                    )
                    .bind(session.created_at)
                    .bind(&session.user_id)
                    .bind(i64::from(max_live))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshContext>> {
                static FIND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!("{} WHERE r.token_hash = $1", crate::rows::REFRESH_CONTEXT_SELECT)
                });
                let row: Option<crate::rows::RefreshContextRow> = sqlx::query_as(sqlx::AssertSqlSafe(FIND.as_str()))
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(RefreshContext::from))
            }

            async fn find_session(&self, session_id: &str) -> StoreResult<Option<Session>> {
                let row: Option<SessionRow> = sqlx::query_as(
                    "SELECT id, user_id, app_id, auth_time, created_at, revoked_at, generation FROM sessions WHERE id = $1",
                )
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(row.map(Session::from))
            }

            async fn refresh(&self, token_hash: &str, now: i64, judge: latchkey_core::store::RefreshJudge) -> StoreResult<latchkey_core::store::Refreshed> {
                // Engine-specific: batched on SQLite (sqlite/refresh_writer.rs),
                // the trait's three calls on PostgreSQL.
                self.refresh_batched(token_hash, now, judge).await
            }

            async fn rotate_refresh(&self, old: &RefreshTokenRecord, new: &RefreshTokenRecord, now: i64) -> StoreResult<Rotation> {
                // One round trip on each engine (postgres.rs, sqlite/
                // refresh_writer.rs): the refresh grant's only write.
                self.rotate_refresh_atomically(old, new, now).await
            }

            async fn redeem_refresh(&self, sibling: &RefreshTokenRecord) -> StoreResult<Rotation> {
                self.redeem_refresh_atomically(sibling).await
            }

            async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<Session>> {
                let rows: Vec<SessionRow> = sqlx::query_as(
                    "SELECT id, user_id, app_id, auth_time, created_at, revoked_at, generation FROM sessions \
                     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(rows.into_iter().map(Session::from).collect())
            }

            async fn revoke_user_sessions(&self, user_id: &str, now: i64) -> StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let ended = end_sessions(&mut tx, user_id, now).await.map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(ended)
            }

            async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
                sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                    .bind(jti)
                    .bind(expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn access_token_revoked(&self, jti: &str, session_id: Option<&str>) -> StoreResult<bool> {
                let (count,): (i64,) = sqlx::query_as(
                    // Revoked: the jti is denied, or the token names a session
                    // that is no longer live (ended, or deleted with its user).
                    "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1) \
                          + CASE WHEN $2 IS NULL THEN 0 \
                                 ELSE 1 - (SELECT COUNT(*) FROM sessions WHERE id = $2 AND revoked_at IS NULL) END",
                )
                .bind(jti)
                .bind(session_id)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(count > 0)
            }

            async fn purge_refresh_tokens(&self, now: i64, limit: u32) -> StoreResult<u64> {
                self.delete_batch("DELETE FROM refresh_tokens WHERE token_hash IN \
                     (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)", now, limit).await
            }

            async fn purge_denied_tokens(&self, now: i64, limit: u32) -> StoreResult<u64> {
                self.delete_batch("DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)", now, limit).await
            }

            async fn purge_sessions(&self, ended_before: i64, idle_before: i64, limit: u32) -> StoreResult<u64> {
                let done = sqlx::query(
                    "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE \
                        (s.revoked_at IS NOT NULL AND s.revoked_at < $1) \
                        OR (s.created_at < $2 AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id)) \
                     LIMIT $3)",
                )
                .bind(ended_before)
                .bind(idle_before)
                .bind(i64::from(limit))
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn revoke_session(&self, session_id: &str, now: i64) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                    .bind(now)
                    .bind(session_id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }

        const KEY_COLUMNS: &str = "kid, alg, encrypted_private_key, public_jwk, state, created_at, activates_at, retiring_at, retired_at";

        #[async_trait]
        impl KeyRepo for $store {
            async fn list_published(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE state IN ('active', 'next', 'retiring') ORDER BY created_at DESC, kid");
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(map_err)?;
                rows.into_iter().map(SigningKeyRecord::try_from).collect()
            }

            async fn list_all(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid");
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(map_err)?;
                rows.into_iter().map(SigningKeyRecord::try_from).collect()
            }

            async fn activate(&self, key: &SigningKeyRecord) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::replace_active_key(&mut tx, key).await.map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn activate_if_due(&self, key: &SigningKeyRecord, due_before: i64) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                if let Some(lock) = $rotation_lock {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(map_err)?;
                }
                let (recent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys WHERE state = 'active' AND COALESCE(activates_at, created_at) > $1")
                    .bind(due_before)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if recent > 0 {
                    return Ok(false);
                }
                Self::replace_active_key(&mut tx, key).await.map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn stage(&self, key: &SigningKeyRecord, due_before: Option<i64>) -> StoreResult<latchkey_core::store::Staging> {
                use latchkey_core::store::Staging;
                let mut tx = self.begin_write().await?;
                if let Some(lock) = $rotation_lock {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(map_err)?;
                }
                let waiting: Option<(String,)> = sqlx::query_as("SELECT kid FROM signing_keys WHERE state = 'next'")
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if let Some((kid,)) = waiting {
                    return Ok(Staging::AlreadyStaged(kid));
                }
                if let Some(due_before) = due_before {
                    let (recent,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM signing_keys WHERE state = 'active' AND COALESCE(activates_at, created_at) > $1",
                    )
                    .bind(due_before)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if recent > 0 {
                        return Ok(Staging::NotDue);
                    }
                }
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encrypted_private_key, public_jwk, state, created_at, activates_at, retiring_at, retired_at) \
                     VALUES ($1, $2, $3, $4, 'next', $5, $6, NULL, NULL)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.encrypted_private_key)
                .bind(&key.public_jwk)
                .bind(key.created_at)
                .bind(key.activates_at.unwrap_or(key.created_at))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(Staging::Staged)
            }

            async fn promote(&self, kid: &str, now: i64) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                if let Some(lock) = $rotation_lock {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(map_err)?;
                }
                let waiting: Option<(String,)> = sqlx::query_as("SELECT kid FROM signing_keys WHERE kid = $1 AND state = 'next'")
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if waiting.is_none() {
                    return Ok(false);
                }
                // The active key first: at most one is active at a time.
                sqlx::query("UPDATE signing_keys SET state = 'retiring', retiring_at = $1 WHERE state = 'active'")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query("UPDATE signing_keys SET state = 'active', activates_at = $1 WHERE kid = $2")
                    .bind(now)
                    .bind(kid)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn retire_keys(&self, retiring_before: i64, now: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $1 \
                     WHERE state = 'retiring' AND COALESCE(retiring_at, created_at) <= $2",
                )
                .bind(now)
                .bind(retiring_before)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected())
            }
        }

        impl $store {
            /// One bounded purge statement: `sql` deletes up to `$2` rows
            /// older than `$1`.
            async fn delete_batch(&self, sql: &'static str, older_than: i64, limit: u32) -> StoreResult<u64> {
                let done = sqlx::query(sql)
                    .bind(older_than)
                    .bind(i64::from(limit))
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn replace_active_key(tx: &mut Tx, key: &SigningKeyRecord) -> Result<(), sqlx::Error> {
                sqlx::query("UPDATE signing_keys SET state = 'retiring', retiring_at = $1 WHERE state = 'active'")
                    .bind(key.created_at)
                    .execute(&mut **tx)
                    .await?;
                // The new key signs at once: a staged one never will.
                sqlx::query("UPDATE signing_keys SET state = 'retired', retiring_at = $1, retired_at = $1 WHERE state = 'next'")
                    .bind(key.created_at)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encrypted_private_key, public_jwk, state, created_at, activates_at, retiring_at, retired_at) \
                     VALUES ($1, $2, $3, $4, 'active', $5, NULL, NULL, NULL)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.encrypted_private_key)
                .bind(&key.public_jwk)
                .bind(key.created_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }

        impl $store {
            async fn apply_resource_server(tx: &mut Tx, spec: &ResourceServerSpec, now: i64) -> Result<ChangeOutcome, sqlx::Error> {
                let scopes = to_json(&spec.scopes);
                let current: Option<(String, String, String)> =
                    sqlx::query_as("SELECT id, name, scopes FROM resource_servers WHERE audience = $1")
                        .bind(&spec.audience)
                        .fetch_optional(&mut **tx)
                        .await?;
                match current {
                    None => {
                        sqlx::query("INSERT INTO resource_servers (id, name, audience, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
                            .bind(new_id()).bind(&spec.name).bind(&spec.audience).bind(&scopes).bind(now)
                            .execute(&mut **tx).await?;
                        Ok(ChangeOutcome::Created)
                    }
                    Some((_, name, stored)) if name == spec.name && stored == scopes => Ok(ChangeOutcome::Unchanged),
                    Some((id, _, _)) => {
                        sqlx::query("UPDATE resource_servers SET name = $1, scopes = $2, updated_at = $3 WHERE id = $4")
                            .bind(&spec.name).bind(&scopes).bind(now).bind(&id)
                            .execute(&mut **tx).await?;
                        Ok(ChangeOutcome::Updated)
                    }
                }
            }

            async fn apply_group(tx: &mut Tx, spec: &GroupSpec, now: i64) -> Result<ChangeOutcome, sqlx::Error> {
                let current: Option<(String,)> = sqlx::query_as("SELECT id FROM groups WHERE name = $1")
                    .bind(&spec.name).fetch_optional(&mut **tx).await?;
                let (id, outcome) = match current {
                    Some((id,)) => {
                        let roles: Vec<(String,)> = sqlx::query_as("SELECT role FROM group_roles WHERE group_id = $1 ORDER BY role")
                            .bind(&id).fetch_all(&mut **tx).await?;
                        if sorted_names(&spec.app_roles) == roles.into_iter().map(|(r,)| r).collect::<Vec<_>>() {
                            return Ok(ChangeOutcome::Unchanged);
                        }
                        sqlx::query("UPDATE groups SET updated_at = $1 WHERE id = $2").bind(now).bind(&id).execute(&mut **tx).await?;
                        sqlx::query("DELETE FROM group_roles WHERE group_id = $1").bind(&id).execute(&mut **tx).await?;
                        (id, ChangeOutcome::Updated)
                    }
                    None => {
                        let id = spec.id.clone().unwrap_or_else(new_id);
                        sqlx::query("INSERT INTO groups (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
                            .bind(&id).bind(&spec.name).bind(now).execute(&mut **tx).await?;
                        (id, ChangeOutcome::Created)
                    }
                };
                for role in &spec.app_roles {
                    sqlx::query("INSERT INTO group_roles (group_id, role) VALUES ($1, $2)")
                        .bind(&id).bind(role.as_str()).execute(&mut **tx).await?;
                }
                Ok(outcome)
            }

            async fn apply_user(tx: &mut Tx, spec: &UserSpec, now: i64) -> Result<ChangeOutcome, sqlx::Error> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
                let current: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(username_key(&spec.username)).fetch_optional(&mut **tx).await?;
                let (id, outcome) = match current {
                    Some(row) => {
                        let groups: Vec<(String,)> = sqlx::query_as(
                            "SELECT g.name FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = $1 ORDER BY g.name",
                        ).bind(&row.id).fetch_all(&mut **tx).await?;
                        let roles: Vec<(String,)> = sqlx::query_as("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                            .bind(&row.id).fetch_all(&mut **tx).await?;
                        let hash = match &spec.password { HashChange::Keep => row.password_hash.clone(), HashChange::Set(h) => Some(h.clone()) };
                        // Absent from the file: kept as stored.
                        let locked = spec.locked.unwrap_or(row.locked);
                        let display_name = spec.display_name.clone().or_else(|| row.display_name.clone());
                        let external_id = spec.external_id.clone().or_else(|| row.external_id.clone());
                        let same_row = row.username == spec.username && row.password_hash == hash
                            && row.given_name == spec.given_name && row.family_name == spec.family_name
                            && row.email == spec.email && row.active == spec.active && row.locked == locked
                            && row.display_name == display_name && row.external_id == external_id;
                        let same_groups = groups.into_iter().map(|(g,)| g).collect::<Vec<_>>() == spec.groups;
                        let same_roles = roles.into_iter().map(|(r,)| r).collect::<Vec<_>>() == sorted_names(&spec.app_roles);
                        if same_row && same_groups && same_roles {
                            return Ok(ChangeOutcome::Unchanged);
                        }
                        sqlx::query(
                            "UPDATE users SET username = $1, password_hash = $2, given_name = $3, family_name = $4, email = $5, email_key = LOWER($5), active = $6, updated_at = $7, version = version + 1, \
                             locked = $9, display_name = $10, external_id = $11 WHERE id = $8",
                        )
                        .bind(&spec.username).bind(&hash).bind(&spec.given_name).bind(&spec.family_name)
                        .bind(&spec.email).bind(spec.active).bind(now).bind(&row.id)
                        .bind(locked).bind(&display_name).bind(&external_id)
                        .execute(&mut **tx).await?;
                        // A new password, a deactivation or a lock ends the user's sessions.
                        if hash != row.password_hash || !spec.active || (locked && !row.locked) {
                            end_sessions(tx, &row.id, now).await?;
                        }
                        sqlx::query("DELETE FROM user_groups WHERE user_id = $1").bind(&row.id).execute(&mut **tx).await?;
                        sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(&row.id).execute(&mut **tx).await?;
                        (row.id, ChangeOutcome::Updated)
                    }
                    None => {
                        let id = spec.id.clone().unwrap_or_else(new_id);
                        let hash = match &spec.password { HashChange::Keep => None, HashChange::Set(h) => Some(h.clone()) };
                        sqlx::query(
                            "INSERT INTO users (id, username, username_key, password_hash, given_name, family_name, email, email_key, active, created_at, updated_at, locked, display_name, external_id) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, LOWER($7), $8, $9, $9, $10, $11, $12)",
                        )
                        .bind(&id).bind(&spec.username).bind(username_key(&spec.username)).bind(&hash)
                        .bind(&spec.given_name).bind(&spec.family_name).bind(&spec.email).bind(spec.active).bind(now)
                        .bind(spec.locked.unwrap_or(false)).bind(&spec.display_name).bind(&spec.external_id)
                        .execute(&mut **tx).await?;
                        (id, ChangeOutcome::Created)
                    }
                };
                for group in &spec.groups {
                    sqlx::query("INSERT INTO user_groups (user_id, group_id) SELECT $1, id FROM groups WHERE name = $2")
                        .bind(&id).bind(group).execute(&mut **tx).await?;
                }
                for role in &spec.app_roles {
                    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                        .bind(&id).bind(role.as_str()).execute(&mut **tx).await?;
                }
                Ok(outcome)
            }

            async fn apply_app(tx: &mut Tx, spec: &AppSpec, now: i64) -> Result<ChangeOutcome, sqlx::Error> {
                let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1");
                let current: Option<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&spec.client_id).fetch_optional(&mut **tx).await?;
                let (grant_types, redirect_uris, scopes, app_roles) = (
                    grants_json(&spec.grant_types), to_json(&spec.redirect_uris), to_json(&spec.scopes), roles_json(&spec.app_roles),
                );
                match current {
                    Some(row) => {
                        let secret = match &spec.secret { HashChange::Keep => row.secret_hash.clone(), HashChange::Set(h) => Some(h.clone()) };
                        // A secret written by the administrator replaces the old one at once: no grace.
                        let replaced = secret != row.secret_hash;
                        let sealed = match (&spec.secret, spec.client_secret_jwt) {
                            (_, false) => None,
                            (HashChange::Keep, true) => row.secret_sealed.clone(),
                            (HashChange::Set(_), true) => spec.sealed_secret.clone(),
                        };
                        let (previous_hash, previous_sealed, previous_expires) = if replaced {
                            (None, None, None)
                        } else {
                            (row.previous_secret_hash.clone(), row.previous_secret_sealed.clone().filter(|_| spec.client_secret_jwt), row.previous_secret_expires_at)
                        };
                        let same = row.name == spec.name && row.app_type == spec.app_type.as_str() && row.active == spec.active
                            && row.secret_hash == secret && row.secret_sealed == sealed && row.previous_secret_sealed == previous_sealed
                            && row.grant_types == grant_types && row.redirect_uris == redirect_uris && row.scopes == scopes
                            && row.app_roles == app_roles && row.jwks == spec.jwks && row.certificate == spec.certificate
                            && row.access_token_ttl == spec.access_token_ttl && row.refresh_token_ttl == spec.refresh_token_ttl
                            && row.session_lifetime == spec.session_lifetime
                            && row.refresh_token_reuse_interval == spec.refresh_token_reuse_interval && !replaced;
                        if same {
                            return Ok(ChangeOutcome::Unchanged);
                        }
                        sqlx::query(
                            "UPDATE apps SET name = $1, app_type = $2, secret_hash = $3, grant_types = $4, redirect_uris = $5, scopes = $6, \
                             app_roles = $7, jwks = $8, certificate = $9, access_token_ttl = $10, refresh_token_ttl = $11, updated_at = $12, session_lifetime = $14, \
                             active = $15, secret_sealed = $16, previous_secret_hash = $17, previous_secret_sealed = $18, previous_secret_expires_at = $19, \
                             refresh_token_reuse_interval = $20 WHERE id = $13",
                        )
                        .bind(&spec.name).bind(spec.app_type.as_str()).bind(&secret).bind(&grant_types).bind(&redirect_uris)
                        .bind(&scopes).bind(&app_roles).bind(&spec.jwks).bind(&spec.certificate)
                        .bind(spec.access_token_ttl).bind(spec.refresh_token_ttl).bind(now).bind(&row.id).bind(spec.session_lifetime)
                        .bind(spec.active).bind(&sealed).bind(&previous_hash).bind(&previous_sealed).bind(previous_expires)
                        .bind(spec.refresh_token_reuse_interval)
                        .execute(&mut **tx).await?;
                        if row.active && !spec.active {
                            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL")
                                .bind(now).bind(&row.id).execute(&mut **tx).await?;
                            sqlx::query("UPDATE apps SET tokens_revoked_at = $1 WHERE id = $2")
                                .bind(now).bind(&row.id).execute(&mut **tx).await?;
                        }
                        Ok(ChangeOutcome::Updated)
                    }
                    None => {
                        let secret = match &spec.secret { HashChange::Keep => None, HashChange::Set(h) => Some(h.clone()) };
                        let sealed = spec.sealed_secret.clone().filter(|_| spec.client_secret_jwt);
                        sqlx::query(
                            "INSERT INTO apps (id, client_id, name, app_type, secret_hash, grant_types, redirect_uris, scopes, app_roles, jwks, certificate, \
                             access_token_ttl, refresh_token_ttl, created_at, updated_at, session_lifetime, active, secret_sealed, \
                             refresh_token_reuse_interval) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17, $18)",
                        )
                        .bind(spec.id.clone().unwrap_or_else(new_id)).bind(&spec.client_id).bind(&spec.name).bind(spec.app_type.as_str()).bind(&secret)
                        .bind(&grant_types).bind(&redirect_uris).bind(&scopes).bind(&app_roles).bind(&spec.jwks).bind(&spec.certificate)
                        .bind(spec.access_token_ttl).bind(spec.refresh_token_ttl).bind(now).bind(spec.session_lifetime)
                        .bind(spec.active).bind(&sealed).bind(spec.refresh_token_reuse_interval)
                        .execute(&mut **tx).await?;
                        Ok(ChangeOutcome::Created)
                    }
                }
            }
        }

        impl $store {
            /// A key carried over from another database: created when its
            /// kid is new; otherwise only its lifecycle follows the file
            /// (the stored ciphertext of the same key stays). An imported
            /// active key replaces the stored active one, which retires.
            async fn apply_signing_key(tx: &mut Tx, key: &SigningKeyRecord, now: i64) -> Result<ChangeOutcome, sqlx::Error> {
                let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE kid = $1");
                let current: Option<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&key.kid).fetch_optional(&mut **tx).await?;
                if key.state == KeyState::Active {
                    sqlx::query("UPDATE signing_keys SET state = 'retiring', retiring_at = $1 WHERE state = 'active' AND kid <> $2")
                        .bind(now).bind(&key.kid).execute(&mut **tx).await?;
                }
                // One key waits at a time: an imported next key replaces a
                // stored one, which never signed.
                if key.state == KeyState::Next {
                    sqlx::query("UPDATE signing_keys SET state = 'retired', retiring_at = $1, retired_at = $1 WHERE state = 'next' AND kid <> $2")
                        .bind(now).bind(&key.kid).execute(&mut **tx).await?;
                }
                match current {
                    None => {
                        sqlx::query(
                            "INSERT INTO signing_keys (kid, alg, encrypted_private_key, public_jwk, state, created_at, activates_at, retiring_at, retired_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(&key.kid).bind(&key.alg).bind(&key.encrypted_private_key).bind(&key.public_jwk)
                        .bind(key.state.as_str()).bind(key.created_at).bind(key.activates_at).bind(key.retiring_at).bind(key.retired_at)
                        .execute(&mut **tx).await?;
                        Ok(ChangeOutcome::Created)
                    }
                    Some(row) if row.state == key.state.as_str() && row.created_at == key.created_at && row.activates_at == key.activates_at
                        && row.retiring_at == key.retiring_at && row.retired_at == key.retired_at => Ok(ChangeOutcome::Unchanged),
                    Some(_) => {
                        sqlx::query("UPDATE signing_keys SET state = $1, created_at = $2, activates_at = $3, retiring_at = $4, retired_at = $5 WHERE kid = $6")
                            .bind(key.state.as_str()).bind(key.created_at).bind(key.activates_at).bind(key.retiring_at).bind(key.retired_at).bind(&key.kid)
                            .execute(&mut **tx).await?;
                        Ok(ChangeOutcome::Updated)
                    }
                }
            }

            /// Everything a domain file describes, in one read transaction.
            async fn read_snapshot(&self) -> Result<DomainSnapshot, sqlx::Error> {
                let mut tx = self.pool.begin().await?;
                let servers: Vec<ResourceServerRow> = sqlx::query_as("SELECT id, name, audience, scopes, created_at, updated_at FROM resource_servers ORDER BY audience")
                    .fetch_all(&mut *tx).await?;
                let groups: Vec<GroupRow> = sqlx::query_as("SELECT id, name, created_at, updated_at, version, external_id FROM groups ORDER BY name")
                    .fetch_all(&mut *tx).await?;
                let group_roles: Vec<(String, String)> = sqlx::query_as("SELECT group_id, role FROM group_roles ORDER BY role")
                    .fetch_all(&mut *tx).await?;
                let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username_key");
                let users: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
                let memberships: Vec<(String, String)> = sqlx::query_as(
                    "SELECT ug.user_id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id ORDER BY g.name",
                ).fetch_all(&mut *tx).await?;
                let user_roles: Vec<(String, String)> = sqlx::query_as("SELECT user_id, role FROM user_roles ORDER BY role")
                    .fetch_all(&mut *tx).await?;
                let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY client_id");
                let apps: Vec<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
                let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid");
                let keys: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
                tx.commit().await?;

                let decode = |e: latchkey_core::store::StoreError| sqlx::Error::Decode(e.to_string().into());
                let role = |name: &str| name.parse::<AppRole>().map_err(|e| sqlx::Error::Decode(e.to_string().into()));
                let mut snapshot = DomainSnapshot::default();
                for row in servers {
                    snapshot.resource_servers.push(ResourceServer::try_from(row).map_err(decode)?);
                }
                for row in groups {
                    let app_roles = group_roles.iter().filter(|(g, _)| *g == row.id).map(|(_, r)| role(r)).collect::<Result<_, _>>()?;
                    snapshot.groups.push(SnapshotGroup { group: row.into(), app_roles });
                }
                for row in users {
                    let groups = memberships.iter().filter(|(u, _)| *u == row.id).map(|(_, g)| g.clone()).collect();
                    let app_roles = user_roles.iter().filter(|(u, _)| *u == row.id).map(|(_, r)| role(r)).collect::<Result<_, _>>()?;
                    snapshot.users.push(SnapshotUser { user: row.into(), groups, app_roles });
                }
                for row in apps {
                    snapshot.apps.push(App::try_from(row).map_err(decode)?);
                }
                for row in keys {
                    snapshot.signing_keys.push(SigningKeyRecord::try_from(row).map_err(decode)?);
                }
                Ok(snapshot)
            }
        }

        fn sorted_names(roles: &[AppRole]) -> Vec<String> {
            let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
            names.sort();
            names
        }

        /// `$n, $n+1, …` for an IN list of `count` values starting at `first`.
        fn placeholders(first: usize, count: usize) -> String {
            (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        }

        #[async_trait]
        impl ThrottleRepo for $store {
            async fn failures(&self, keys: &[String], window_start_after: i64) -> StoreResult<Vec<Failures>> {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT key, failures, last_failure FROM login_failures WHERE window_start > $1 AND key IN ({})",
                    placeholders(2, keys.len())
                );
                let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(window_start_after);
                for key in keys {
                    query = query.bind(key);
                }
                let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
                Ok(rows.into_iter().map(|(key, failures, last_failure)| Failures { key, failures, last_failure }).collect())
            }

            async fn record_failure(&self, keys: &[String], now: i64, window_start_after: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                for key in keys {
                    // One statement per key: concurrent failures all count.
                    sqlx::query(
                        "INSERT INTO login_failures (key, failures, window_start, last_failure) VALUES ($1, 1, $2, $2) \
                         ON CONFLICT (key) DO UPDATE SET \
                           failures = CASE WHEN login_failures.window_start > $3 THEN login_failures.failures + 1 ELSE 1 END, \
                           window_start = CASE WHEN login_failures.window_start > $3 THEN login_failures.window_start ELSE $2 END, \
                           last_failure = $2",
                    )
                    .bind(key)
                    .bind(now)
                    .bind(window_start_after)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn clear(&self, keys: &[String]) -> StoreResult<()> {
                if keys.is_empty() {
                    return Ok(());
                }
                let sql = format!("DELETE FROM login_failures WHERE key IN ({})", placeholders(1, keys.len()));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for key in keys {
                    query = query.bind(key);
                }
                query.execute(&self.writer).await.map_err(map_err)?;
                Ok(())
            }

            async fn clear_username(&self, username_key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_failures WHERE key = $1 OR key LIKE $2 ESCAPE '\\'")
                    .bind(format!("user:{username_key}"))
                    .bind(format!("pair:{}:%", username_key.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn purge_failures(&self, before: i64, limit: u32) -> StoreResult<u64> {
                self.delete_batch("DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures WHERE last_failure < $1 LIMIT $2)", before, limit).await
            }

            async fn is_known_ip(&self, user_id: &str, ip: &str) -> StoreResult<bool> {
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM known_ips WHERE user_id = $1 AND ip = $2")
                    .bind(user_id)
                    .bind(ip)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(count > 0)
            }

            async fn remember_ip(&self, user_id: &str, ip: &str, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO known_ips (user_id, ip, last_success) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, ip) DO UPDATE SET last_success = $3",
                )
                .bind(user_id)
                .bind(ip)
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                Ok(())
            }
        }

        #[async_trait]
        impl AssertionReplayRepo for $store {
            async fn record_assertion(&self, client_id: &str, jti: &str, expires_at: i64) -> StoreResult<bool> {
                // The primary key decides: of two nodes racing with the
                // same assertion, exactly one inserts.
                let done = sqlx::query(
                    "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn purge_assertions(&self, now: i64, limit: u32) -> StoreResult<u64> {
                self.delete_batch(
                    "DELETE FROM client_assertions WHERE (client_id, jti) IN (SELECT client_id, jti FROM client_assertions WHERE expires_at < $1 LIMIT $2)",
                    now,
                    limit,
                )
                .await
            }
        }

        #[async_trait]
        impl DomainRepo for $store {
            async fn apply(&self, plan: &DomainPlan, now: i64) -> StoreResult<ApplySummary> {
                let mut tx = self.begin_write().await?;
                let mut summary = ApplySummary::default();
                for spec in &plan.resource_servers {
                    let outcome = Self::apply_resource_server(&mut tx, spec, now).await.map_err(map_err)?;
                    summary.record("resource_server", &spec.audience, outcome);
                }
                for spec in &plan.groups {
                    let outcome = Self::apply_group(&mut tx, spec, now).await.map_err(map_err)?;
                    summary.record("group", &spec.name, outcome);
                }
                for spec in &plan.users {
                    let outcome = Self::apply_user(&mut tx, spec, now).await.map_err(map_err)?;
                    summary.record("user", &spec.username, outcome);
                }
                for spec in &plan.apps {
                    let outcome = Self::apply_app(&mut tx, spec, now).await.map_err(map_err)?;
                    summary.record("app", &spec.client_id, outcome);
                }
                for key in &plan.signing_keys {
                    let outcome = Self::apply_signing_key(&mut tx, key, now).await.map_err(map_err)?;
                    summary.record("signing_key", &key.kid, outcome);
                }
                tx.commit().await.map_err(map_err)?;
                Ok(summary)
            }

            async fn snapshot(&self) -> StoreResult<DomainSnapshot> {
                self.read_snapshot().await.map_err(map_err)
            }

            async fn group_names(&self) -> StoreResult<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM groups ORDER BY name")
                    .fetch_all(&self.pool).await.map_err(map_err)?;
                Ok(rows.into_iter().map(|(n,)| n).collect())
            }

            async fn is_empty(&self) -> StoreResult<bool> {
                let row: (i64,) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM resource_servers) + (SELECT COUNT(*) FROM apps)",
                )
                .fetch_one(&self.pool).await.map_err(map_err)?;
                Ok(row.0 == 0)
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").fetch_one(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            fn pool_stats(&self) -> latchkey_core::store::PoolStats {
                self.stats()
            }

            async fn acquire_latency(&self) -> StoreResult<std::time::Duration> {
                let started = std::time::Instant::now();
                let connection = self.pool.acquire().await.map_err(map_err)?;
                let took = started.elapsed();
                drop(connection);
                Ok(took)
            }
        }
    };
}

pub(crate) use impl_repos;
