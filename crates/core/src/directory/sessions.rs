//! A user's sessions (one per sign-in, with its refresh and access
//! tokens): who may see them and who may end them.

use super::{DirectoryError, DirectoryResult, DirectoryService, require};
use crate::admin::{Actor, Permission};
use crate::audit::kind;

/// A live session of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub user_id: String,
    /// The app signed in to (`None` when it was deleted since).
    pub client_id: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
}

/// Is the actor the user themselves?
fn is_self(actor: Actor<'_>, user_id: &str) -> bool {
    matches!(actor, Actor::Caller(c) if c.user_id.as_deref() == Some(user_id))
}

impl DirectoryService {
    /// Administrators (ReadUsers) see anyone's sessions; a user their own.
    pub async fn sessions_of(
        &self,
        actor: Actor<'_>,
        user_id: &str,
    ) -> DirectoryResult<Vec<SessionView>> {
        if !is_self(actor, user_id) {
            require(actor, Permission::ReadUsers)?;
        }
        self.load_user(user_id).await?;
        let apps = self.repos.apps.list().await?;
        let sessions = self.repos.tokens.list_sessions(user_id).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                client_id: apps
                    .iter()
                    .find(|a| a.id == s.app_id)
                    .map(|a| a.client_id.clone()),
                id: s.id,
                user_id: s.user_id,
                auth_time: s.auth_time,
                created_at: s.created_at,
            })
            .collect())
    }

    /// Administrators (WriteUsers) end anyone's session they may act on;
    /// a user their own. Ending a session ends every token of it.
    pub async fn end_session(&self, actor: Actor<'_>, session_id: &str) -> DirectoryResult<()> {
        let session = self
            .repos
            .tokens
            .find_session(session_id)
            .await?
            .filter(|s| s.revoked_at.is_none());
        let Some(session) = session else {
            // Not found and not the caller's to know about look the same.
            require(actor, Permission::WriteUsers)?;
            return Err(DirectoryError::NotFound(format!(
                "no live session {session_id}"
            )));
        };
        if !is_self(actor, &session.user_id) {
            require(actor, Permission::WriteUsers)?;
            self.user_to_change(actor, &session.user_id).await?;
        }
        self.repos
            .tokens
            .revoke_session(&session.id, self.clock.now())
            .await?;
        tracing::info!(
            sid = session.id.as_str(),
            by = actor.name(),
            "session ended"
        );
        self.audit(
            kind::SESSION_ENDED,
            actor.name(),
            &session.user_id,
            Some(format!("session {}", session.id)),
        )
        .await;
        Ok(())
    }

    /// Ends every session of the user ("sign out everywhere"); how many
    /// there were.
    pub async fn end_all_sessions(&self, actor: Actor<'_>, user_id: &str) -> DirectoryResult<u64> {
        if !is_self(actor, user_id) {
            require(actor, Permission::WriteUsers)?;
            self.user_to_change(actor, user_id).await?;
        } else {
            self.load_user(user_id).await?;
        }
        let ended = self
            .repos
            .tokens
            .revoke_user_sessions(user_id, self.clock.now())
            .await?;
        tracing::info!(
            user_id = user_id,
            by = actor.name(),
            ended,
            "every session of a user ended"
        );
        self.audit(
            kind::SESSIONS_ENDED,
            actor.name(),
            user_id,
            Some(format!("{ended} session(s)")),
        )
        .await;
        Ok(ended)
    }
}
