//! The OpenID Connect UserInfo endpoint (OIDC Core §5.3): the claims of
//! the token's user that its scopes allow.

use serde_json::{Map, Value, json};

use crate::admin::{BearerError, Caller};
use crate::model::User;
use crate::scope::{EMAIL, OPENID, PROFILE};
use crate::store::UserRepo;

/// `name`: the display name, else given and family names.
pub fn full_name(user: &User) -> Option<String> {
    if let Some(display) = &user.display_name {
        return Some(display.clone());
    }
    let joined = [user.given_name.as_deref(), user.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

pub async fn userinfo(users: &dyn UserRepo, caller: &Caller) -> Result<Value, BearerError> {
    if !caller.has_scope(OPENID) {
        return Err(BearerError::Insufficient {
            scope: OPENID,
            detail: "the UserInfo endpoint needs a token with the openid scope".into(),
        });
    }
    let id = caller
        .user_id
        .as_deref()
        .ok_or_else(|| BearerError::Insufficient {
            scope: OPENID,
            detail: "the UserInfo endpoint needs a token issued to a user".into(),
        })?;
    let user = users
        .find_by_id(id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| BearerError::Invalid("the token's user is no longer active".into()))?;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    if caller.has_scope(PROFILE) {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = full_name(&user) {
            claims.insert("name".into(), json!(name));
        }
        if let Some(given) = &user.given_name {
            claims.insert("given_name".into(), json!(given));
        }
        if let Some(family) = &user.family_name {
            claims.insert("family_name".into(), json!(family));
        }
        claims.insert("updated_at".into(), json!(user.updated_at));
    }
    if caller.has_scope(EMAIL)
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        // Latchkey does not verify addresses.
        claims.insert("email_verified".into(), json!(false));
    }
    Ok(Value::Object(claims))
}
