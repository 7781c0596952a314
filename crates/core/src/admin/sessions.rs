//! Sessions in the admin API: `GET /admin/v1/Users/{id}/Sessions` lists a
//! user's live sessions, `DELETE /admin/v1/Sessions/{sid}` ends one (and
//! with it every refresh and access token of that sign-in).

use serde_json::json;

use super::{AdminResult, Answer, Caller, DirectoryService, Permission};
use crate::scim::ScimError;
use crate::scim::resource::list_response;
use crate::scim::time::format_datetime;

impl DirectoryService {
    /// Administrators (ReadUsers) see anyone's sessions; a user their own.
    pub async fn list_sessions(&self, caller: &Caller, user_id: &str) -> AdminResult<Answer> {
        if caller.user_id.as_deref() != Some(user_id) {
            caller.require(Permission::ReadUsers)?;
        }
        if self.repos.users.find_by_id(user_id).await?.is_none() {
            return Err(ScimError::not_found(format!("no user {user_id}")).into());
        }
        let apps = self.repos.apps.list().await?;
        let sessions = self.repos.tokens.list_sessions(user_id).await?;
        let resources = sessions
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "userId": s.user_id,
                    "clientId": apps.iter().find(|a| a.id == s.app_id).map(|a| a.client_id.as_str()),
                    "authTime": format_datetime(s.auth_time),
                    "created": format_datetime(s.created_at),
                    "location": format!("{}/Sessions/{}", self.base_url, s.id),
                })
            })
            .collect();
        Ok(Answer {
            status: 200,
            body: list_response(sessions.len() as u64, 1, resources),
            etag: None,
            location: None,
        })
    }

    /// Administrators (WriteUsers) end anyone's session; a user their own.
    pub async fn end_session(&self, caller: &Caller, session_id: &str) -> AdminResult<Answer> {
        let session = self
            .repos
            .tokens
            .find_session(session_id)
            .await?
            .filter(|s| s.revoked_at.is_none());
        let Some(session) = session else {
            // Not found and not the caller's to know about look the same.
            caller.require(Permission::WriteUsers)?;
            return Err(ScimError::not_found(format!("no live session {session_id}")).into());
        };
        if caller.user_id.as_deref() != Some(session.user_id.as_str()) {
            caller.require(Permission::WriteUsers)?;
            self.user_to_change(super::Actor::Caller(caller), &session.user_id)
                .await?;
        }
        self.repos
            .tokens
            .revoke_session(&session.id, self.clock.now())
            .await?;
        tracing::info!(
            sid = session.id.as_str(),
            by = caller.subject.as_str(),
            "session ended through the admin API"
        );
        self.audit(
            crate::audit::kind::SESSION_ENDED,
            &caller.subject,
            &session.user_id,
            Some(format!("session {}", session.id)),
        )
        .await;
        Ok(Answer::no_content())
    }
}
