//! RFC 6749 §4.4: the client credentials grant, for confidential and
//! trusted apps acting on their own behalf.

use crate::error::OAuthError;
use crate::issuer::IssuedTokens;
use crate::model::{App, AppType};
use crate::scope::{self, EMAIL, OFFLINE_ACCESS, OPENID, PROFILE};

use super::TokenService;

/// Scopes that describe a user, meaningless without one.
const USER_SCOPES: [&str; 4] = [OFFLINE_ACCESS, OPENID, PROFILE, EMAIL];

pub(super) async fn handle(
    svc: &TokenService,
    app: &App,
    requested_scope: Option<&str>,
) -> Result<IssuedTokens, OAuthError> {
    if app.app_type == AppType::Public {
        // Domain validation forbids it; a public client can prove nothing.
        return Err(OAuthError::unauthorized_client(
            "a public client cannot use client_credentials",
        ));
    }
    let scopes = match requested_scope {
        Some(_) => {
            let scopes = scope::resolve(app, requested_scope)?;
            if let Some(s) = scopes.iter().find(|s| USER_SCOPES.contains(&s.as_str())) {
                return Err(OAuthError::invalid_scope(format!(
                    "the scope {s:?} needs a user; client_credentials has none"
                )));
            }
            scopes
        }
        None => app
            .scopes
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect(),
    };
    let servers = svc.repos.resource_servers.list().await?;
    let audiences = scope::audiences(&scopes, &servers, svc.issuer.issuer());
    let issued = svc
        .issuer
        .issue_for_client(app, &scopes, &audiences, svc.now())?;
    tracing::info!(
        client_id = app.client_id.as_str(),
        "client credentials grant issued"
    );
    Ok(issued)
}
