//! `DirectoryRepo` (the SCIM view of users and groups), written once and
//! stamped out per engine by `impl_directory!` beside `impl_repos!`.

macro_rules! impl_directory {
    ($store:ident, $db:ty, $collate:expr) => {
        mod directory_impl {
            use std::collections::HashMap;

            use async_trait::async_trait;
            use latchkey_core::audit::{AuditEvent, AuditQuery, AuditRepo};
            use latchkey_core::model::{AppRole, Group, User};
            use latchkey_core::scim::group::{GroupField, MemberRef};
            use latchkey_core::scim::query::{ListQuery, Page};
            use latchkey_core::scim::user::{GroupRef, UserField};
            use latchkey_core::store::{DirectoryRepo, HeldRole, StoreError, StoreResult, UserRecord};

            use super::$store;
            use crate::error::map_err;
            use crate::rows::{GroupRow, UserRow};
            use crate::scim_sql::{Bind, Groups, Sql, Table, Users, order_and_page, order_by, page_where_clause, where_clause};

            const USER_COLUMNS: &str = "users.id, users.username, users.password_hash, users.given_name, users.family_name, users.email, users.active, users.created_at, users.updated_at, users.external_id, users.display_name, users.version, users.locked";
            const GROUP_COLUMNS: &str = "groups.id, groups.name, groups.created_at, groups.updated_at, groups.version, groups.external_id";
            /// Rows per multi-row INSERT of memberships.
            const MEMBER_CHUNK: usize = 500;

            type Args = <$db as sqlx::Database>::Arguments;

            fn bind_all<'q, O>(
                mut query: sqlx::query::QueryAs<'q, $db, O, Args>,
                binds: &'q [Bind],
            ) -> sqlx::query::QueryAs<'q, $db, O, Args> {
                for bind in binds {
                    query = match bind {
                        Bind::Text(s) => query.bind(s.as_str()),
                        Bind::Int(i) => query.bind(*i),
                        Bind::Bool(b) => query.bind(*b),
                    };
                }
                query
            }

            /// A unique violation, said in the resource's terms.
            fn taken(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
                move |e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(what),
                    other => other,
                }
            }

            fn placeholders(count: usize) -> String {
                (1..=count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
            }

            impl $store {
                async fn page<T, R, O>(&self, columns: &str, query: &ListQuery<T::Field>) -> StoreResult<Page<O>>
                where
                    T: Table,
                    R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin + Into<O>,
                {
                    let mut count = Sql::new($collate);
                    count.push(&format!("SELECT COUNT(*) FROM {}", T::FROM));
                    where_clause::<T>(&mut count, query);
                    let (total,): (i64,) = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(count.text.clone())), &count.binds)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(map_err)?;
                    if query.count == 0 {
                        return Ok(Page { total: total as u64, items: Vec::new(), more: false });
                    }
                    // A deferred join: the page's ids come from an index-only
                    // scan (OFFSET skips index entries, not whole rows), then
                    // only those rows are read.
                    let mut sql = Sql::new($collate);
                    sql.push(&format!("SELECT {columns} FROM {from} WHERE {id} IN (SELECT {id} FROM {from}", from = T::FROM, id = T::ID));
                    page_where_clause::<T>(&mut sql, query);
                    order_and_page::<T>(&mut sql, query);
                    sql.push(")");
                    order_by::<T>(&mut sql, query);
                    let mut rows: Vec<R> = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.clone())), &sql.binds)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                    let more = rows.len() > query.count as usize;
                    rows.truncate(query.count as usize);
                    Ok(Page { total: total as u64, items: rows.into_iter().map(Into::into).collect(), more })
                }

                /// Checks `if_version` against the stored version inside `tx`.
                async fn check_version(tx: &mut sqlx::Transaction<'static, $db>, table: &str, id: &str, if_version: Option<i64>) -> StoreResult<(i64, bool)> {
                    let sql = format!("SELECT version, {} FROM {table} WHERE id = $1", if table == "users" { "active" } else { "TRUE" });
                    let row: Option<(i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(map_err)?;
                    let (version, active) = row.ok_or(StoreError::NotFound)?;
                    if if_version.is_some_and(|v| v != version) {
                        return Err(StoreError::VersionMismatch);
                    }
                    Ok((version, active))
                }

                async fn insert_members(tx: &mut sqlx::Transaction<'static, $db>, group_id: &str, members: &[String]) -> StoreResult<()> {
                    for chunk in members.chunks(MEMBER_CHUNK) {
                        let values = (0..chunk.len())
                            .map(|i| format!("(${}, $1)", i + 2))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let sql = format!("INSERT INTO user_groups (user_id, group_id) VALUES {values}");
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group_id);
                        for member in chunk {
                            query = query.bind(member.as_str());
                        }
                        query.execute(&mut **tx).await.map_err(map_err)?;
                    }
                    Ok(())
                }

                async fn delete_versioned(&self, table: &str, id: &str, if_version: Option<i64>) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    Self::check_version(&mut tx, table, id, if_version).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE id = $1")))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)
                }

                async fn user_by_id(&self, id: &str) -> StoreResult<User> {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_one(&self.writer)
                        .await
                        .map_err(map_err)?;
                    Ok(row.into())
                }

                /// `changed` when a group role row was written; otherwise
                /// false, or `NotFound` when there is no such group.
                async fn group_role_changed(&self, group_id: &str, changed: bool) -> StoreResult<bool> {
                    if changed || self.group_by_id(group_id, true).await?.is_some() {
                        Ok(changed)
                    } else {
                        Err(StoreError::NotFound)
                    }
                }

                async fn group_by_id(&self, id: &str, from_writer: bool) -> StoreResult<Option<Group>> {
                    let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1");
                    let query = sqlx::query_as::<_, GroupRow>(sqlx::AssertSqlSafe(sql)).bind(id);
                    let row = if from_writer {
                        query.fetch_optional(&self.writer).await
                    } else {
                        query.fetch_optional(&self.pool).await
                    }
                    .map_err(map_err)?;
                    Ok(row.map(Into::into))
                }
            }

            #[derive(sqlx::FromRow)]
            struct AuditRow {
                id: String,
                at: i64,
                event_type: String,
                outcome: String,
                actor: Option<String>,
                subject: Option<String>,
                client_id: Option<String>,
                ip: Option<String>,
                detail: Option<String>,
                request_id: Option<String>,
                occurrences: i64,
                last_at: Option<i64>,
            }

            impl From<AuditRow> for AuditEvent {
                fn from(r: AuditRow) -> Self {
                    AuditEvent {
                        id: r.id,
                        at: r.at,
                        event_type: r.event_type,
                        outcome: r.outcome,
                        actor: r.actor,
                        subject: r.subject,
                        client_id: r.client_id,
                        ip: r.ip,
                        detail: r.detail,
                        request_id: r.request_id,
                        occurrences: u32::try_from(r.occurrences).unwrap_or(u32::MAX),
                        last_at: r.last_at,
                    }
                }
            }

            #[async_trait]
            impl AuditRepo for $store {
                async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO audit_events (id, at, event_type, outcome, actor, subject, client_id, ip, detail, occurrences, last_at, request_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(&e.id)
                    .bind(e.at)
                    .bind(&e.event_type)
                    .bind(&e.outcome)
                    .bind(&e.actor)
                    .bind(&e.subject)
                    .bind(&e.client_id)
                    .bind(&e.ip)
                    .bind(&e.detail)
                    .bind(i64::from(e.occurrences))
                    .bind(e.last_at)
                    .bind(&e.request_id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn query(&self, q: &AuditQuery) -> StoreResult<Page<AuditEvent>> {
                    let mut conditions = Vec::new();
                    let mut binds = Vec::new();
                    for (column, value) in [("event_type", &q.event_type), ("actor", &q.actor)] {
                        if let Some(v) = value {
                            binds.push(Bind::Text(v.clone()));
                            conditions.push(format!("{column} = ${}", binds.len()));
                        }
                    }
                    if let Some(v) = &q.subject {
                        // A user is recorded by id (changes made to them)
                        // or by username (their sign-ins): naming them
                        // either way finds both.
                        binds.push(Bind::Text(v.clone()));
                        let exact = binds.len();
                        binds.push(Bind::Text(v.to_lowercase()));
                        let key = binds.len();
                        conditions.push(format!(
                            "(subject = ${exact} OR subject IN (SELECT id FROM users WHERE id = ${exact} OR username_key = ${key}) \
                             OR subject IN (SELECT username FROM users WHERE id = ${exact} OR username_key = ${key}))"
                        ));
                    }
                    for (symbol, value) in [(">=", q.since), ("<", q.until)] {
                        if let Some(v) = value {
                            binds.push(Bind::Int(v));
                            conditions.push(format!("at {symbol} ${}", binds.len()));
                        }
                    }
                    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
                    let count_sql = format!("SELECT COUNT(*) FROM audit_events{filter}");
                    let (total,): (i64,) = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(count_sql)), &binds)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(map_err)?;
                    let mut page_binds = binds.clone();
                    page_binds.push(Bind::Int(i64::from(q.count)));
                    page_binds.push(Bind::Int(q.start_index.saturating_sub(1) as i64));
                    let sql = format!(
                        "SELECT id, at, event_type, outcome, actor, subject, client_id, ip, detail, request_id, occurrences, last_at FROM audit_events{filter} \
                         ORDER BY at DESC, id DESC LIMIT ${} OFFSET ${}",
                        page_binds.len() - 1,
                        page_binds.len()
                    );
                    let rows: Vec<AuditRow> = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &page_binds)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                    Ok(Page { total: total as u64, items: rows.into_iter().map(Into::into).collect(), more: false })
                }

                async fn purge_audit(&self, before: i64, limit: u32) -> StoreResult<u64> {
                    let done = sqlx::query("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)")
                        .bind(before)
                        .bind(i64::from(limit))
                        .execute(&self.writer)
                        .await
                        .map_err(map_err)?;
                    Ok(done.rows_affected())
                }

                async fn add_occurrences(&self, id: &str, more: u32, last_at: i64) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE audit_events SET occurrences = occurrences + $2, \
                         last_at = CASE WHEN last_at IS NULL OR last_at < $3 THEN $3 ELSE last_at END \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(i64::from(more))
                    .bind(last_at)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }
            }

            #[async_trait]
            impl DirectoryRepo for $store {
                async fn query_users(&self, query: &ListQuery<UserField>) -> StoreResult<Page<User>> {
                    self.page::<Users, UserRow, User>(USER_COLUMNS, query).await
                }

                async fn groups_of_users(&self, user_ids: &[String]) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
                    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
                    for chunk in user_ids.chunks(MEMBER_CHUNK) {
                        let sql = format!(
                            "SELECT ug.user_id, g.id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
                             WHERE ug.user_id IN ({}) ORDER BY g.name",
                            placeholders(chunk.len())
                        );
                        let mut query = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql));
                        for id in chunk {
                            query = query.bind(id.as_str());
                        }
                        for (user_id, id, name) in query.fetch_all(&self.pool).await.map_err(map_err)? {
                            out.entry(user_id).or_default().push(GroupRef { id, name });
                        }
                    }
                    Ok(out)
                }

                async fn create_user(&self, user: &UserRecord, password_hash: Option<&str>, now: i64) -> StoreResult<User> {
                    let id = uuid::Uuid::now_v7().to_string();
                    sqlx::query(
                        "INSERT INTO users (id, username, username_key, password_hash, given_name, family_name, email, email_key, active, \
                         created_at, updated_at, external_id, display_name, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, LOWER($7), $8, $9, $9, $10, $11, 1)",
                    )
                    .bind(&id)
                    .bind(&user.username)
                    .bind(user.username.to_lowercase())
                    .bind(password_hash)
                    .bind(&user.given_name)
                    .bind(&user.family_name)
                    .bind(&user.email)
                    .bind(user.active)
                    .bind(now)
                    .bind(&user.external_id)
                    .bind(&user.display_name)
                    .execute(&self.writer)
                    .await
                    .map_err(taken(format!("the userName {:?} is taken", user.username)))?;
                    self.user_by_id(&id).await
                }

                async fn replace_user(&self, id: &str, user: &UserRecord, password_hash: Option<&str>, if_version: Option<i64>, now: i64) -> StoreResult<User> {
                    let mut tx = self.begin_write().await?;
                    let (_, was_active) = Self::check_version(&mut tx, "users", id, if_version).await?;
                    sqlx::query(
                        "UPDATE users SET username = $1, username_key = $2, given_name = $3, family_name = $4, email = $5, email_key = LOWER($5), \
                         active = $6, external_id = $7, display_name = $8, password_hash = COALESCE($9, password_hash), \
                         updated_at = $10, version = version + 1 WHERE id = $11",
                    )
                    .bind(&user.username)
                    .bind(user.username.to_lowercase())
                    .bind(&user.given_name)
                    .bind(&user.family_name)
                    .bind(&user.email)
                    .bind(user.active)
                    .bind(&user.external_id)
                    .bind(&user.display_name)
                    .bind(password_hash)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(taken(format!("the userName {:?} is taken", user.username)))?;
                    // A new password or a deactivation ends every session.
                    if password_hash.is_some() || (was_active && !user.active) {
                        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                    tx.commit().await.map_err(map_err)?;
                    self.user_by_id(id).await
                }

                async fn delete_user(&self, id: &str, if_version: Option<i64>) -> StoreResult<()> {
                    self.delete_versioned("users", id, if_version).await
                }

                async fn query_groups(&self, query: &ListQuery<GroupField>) -> StoreResult<Page<Group>> {
                    self.page::<Groups, GroupRow, Group>(GROUP_COLUMNS, query).await
                }

                async fn find_group(&self, id: &str) -> StoreResult<Option<Group>> {
                    self.group_by_id(id, false).await
                }

                async fn members_of(&self, group_ids: &[String]) -> StoreResult<HashMap<String, Vec<MemberRef>>> {
                    let mut out: HashMap<String, Vec<MemberRef>> = HashMap::new();
                    for chunk in group_ids.chunks(MEMBER_CHUNK) {
                        let sql = format!(
                            "SELECT ug.group_id, u.id, u.username FROM user_groups ug JOIN users u ON u.id = ug.user_id \
                             WHERE ug.group_id IN ({}) ORDER BY u.username_key",
                            placeholders(chunk.len())
                        );
                        let mut query = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql));
                        for id in chunk {
                            query = query.bind(id.as_str());
                        }
                        for (group_id, id, username) in query.fetch_all(&self.pool).await.map_err(map_err)? {
                            out.entry(group_id).or_default().push(MemberRef { id, username });
                        }
                    }
                    Ok(out)
                }

                async fn create_group(&self, name: &str, external_id: Option<&str>, members: &[String], now: i64) -> StoreResult<Group> {
                    let id = uuid::Uuid::now_v7().to_string();
                    let mut tx = self.begin_write().await?;
                    sqlx::query("INSERT INTO groups (id, name, created_at, updated_at, version, external_id) VALUES ($1, $2, $3, $3, 1, $4)")
                        .bind(&id)
                        .bind(name)
                        .bind(now)
                        .bind(external_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(taken(format!("a group named {name:?} exists")))?;
                    Self::insert_members(&mut tx, &id, members).await?;
                    tx.commit().await.map_err(map_err)?;
                    self.group_by_id(&id, true).await?.ok_or(StoreError::NotFound)
                }

                async fn replace_group(&self, id: &str, name: &str, external_id: Option<&str>, members: &[String], if_version: Option<i64>, now: i64) -> StoreResult<Group> {
                    let mut tx = self.begin_write().await?;
                    Self::check_version(&mut tx, "groups", id, if_version).await?;
                    sqlx::query("UPDATE groups SET name = $1, updated_at = $2, version = version + 1, external_id = $4 WHERE id = $3")
                        .bind(name)
                        .bind(now)
                        .bind(id)
                        .bind(external_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(taken(format!("a group named {name:?} exists")))?;
                    sqlx::query("DELETE FROM user_groups WHERE group_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    Self::insert_members(&mut tx, id, members).await?;
                    tx.commit().await.map_err(map_err)?;
                    self.group_by_id(id, true).await?.ok_or(StoreError::NotFound)
                }

                async fn delete_group(&self, id: &str, if_version: Option<i64>) -> StoreResult<()> {
                    self.delete_versioned("groups", id, if_version).await
                }

                async fn group_roles(&self, group_id: &str) -> StoreResult<Vec<AppRole>> {
                    let names: Vec<(String,)> = sqlx::query_as("SELECT role FROM group_roles WHERE group_id = $1")
                        .bind(group_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                    let mut roles: Vec<AppRole> = names.iter().filter_map(|(n,)| n.parse().ok()).collect();
                    roles.sort();
                    Ok(roles)
                }

                async fn grant_group_role(&self, group_id: &str, role: AppRole) -> StoreResult<bool> {
                    // Inserted only when the group exists (no foreign-key
                    // error to tell apart from a duplicate).
                    let done = sqlx::query(
                        "INSERT INTO group_roles (group_id, role) SELECT id, $2 FROM groups WHERE id = $1 \
                         ON CONFLICT (group_id, role) DO NOTHING",
                    )
                    .bind(group_id)
                    .bind(role.as_str())
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    self.group_role_changed(group_id, done.rows_affected() == 1).await
                }

                async fn revoke_group_role(&self, group_id: &str, role: AppRole) -> StoreResult<bool> {
                    let done = sqlx::query("DELETE FROM group_roles WHERE group_id = $1 AND role = $2")
                        .bind(group_id)
                        .bind(role.as_str())
                        .execute(&self.writer)
                        .await
                        .map_err(map_err)?;
                    self.group_role_changed(group_id, done.rows_affected() == 1).await
                }

                async fn held_roles(&self, user_id: &str) -> StoreResult<Vec<HeldRole>> {
                    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                        "SELECT role, CAST(NULL AS TEXT), CAST(NULL AS TEXT) FROM user_roles WHERE user_id = $1 \
                         UNION ALL SELECT gr.role, g.id, g.name FROM group_roles gr \
                         JOIN user_groups ug ON ug.group_id = gr.group_id JOIN groups g ON g.id = gr.group_id \
                         WHERE ug.user_id = $1",
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                    let mut held: Vec<HeldRole> = rows
                        .into_iter()
                        .filter_map(|(role, id, name)| {
                            Some(HeldRole {
                                role: role.parse().ok()?,
                                via: id.zip(name).map(|(id, name)| GroupRef { id, name }),
                            })
                        })
                        .collect();
                    held.sort_by(|a, b| {
                        (a.role, a.via.as_ref().map(|g| &g.name)).cmp(&(b.role, b.via.as_ref().map(|g| &g.name)))
                    });
                    Ok(held)
                }
            }
        }
    };
}

pub(crate) use impl_directory;
