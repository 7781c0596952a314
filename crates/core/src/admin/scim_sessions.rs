//! Sessions in the admin API: `GET /admin/v1/Users/{id}/Sessions` lists a
//! user's live sessions, `DELETE /admin/v1/Sessions/{sid}` ends one (and
//! with it every refresh and access token of that sign-in).

use serde_json::json;

use super::{Actor, AdminResult, Answer, Caller, ScimDirectory};
use crate::scim::resource::list_response;
use crate::scim::time::format_datetime;

impl ScimDirectory {
    pub async fn list_sessions(&self, caller: &Caller, user_id: &str) -> AdminResult<Answer> {
        let sessions = self
            .directory
            .sessions_of(Actor::Caller(caller), user_id)
            .await?;
        let resources = sessions
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "userId": s.user_id,
                    "clientId": s.client_id,
                    "authTime": format_datetime(s.auth_time),
                    "created": format_datetime(s.created_at),
                    "location": format!("{}/Sessions/{}", self.base_url(), s.id),
                })
            })
            .collect();
        Ok(Answer {
            status: super::Outcome::Read,
            body: list_response(sessions.len() as u64, 1, resources),
            etag: None,
            location: None,
        })
    }

    pub async fn end_session(&self, caller: &Caller, session_id: &str) -> AdminResult<Answer> {
        self.directory
            .end_session(Actor::Caller(caller), session_id)
            .await?;
        Ok(Answer::no_content())
    }
}
