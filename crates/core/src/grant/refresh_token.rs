//! RFC 6749 §6: refreshing an access token, with rotation and reuse
//! detection (OAuth 2.0 Security BCP §4.14.2).
//!
//! The decision is made where the store holds the token (`TokenRepo::
//! refresh`: on SQLite inside a batch of concurrent refreshes, one lookup
//! and one transaction for all), so it is a pure function of the token,
//! its session and its user: `assess`. The access token is signed after
//! the rotation is stored.

use crate::error::OAuthError;
use crate::issuer::{IssuedTokens, RefreshMode, refresh_expiry};
use crate::model::{App, RefreshTokenRecord};
use crate::scope;
use crate::secrets::{random_token, sha256_hex};
use crate::store::{RefreshContext, RefreshVerdict, Refreshed};

use super::TokenService;

fn rejected(detail: &str) -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
        .with_detail(detail.to_owned())
}

/// What a refresh is judged against: the app presenting the token and
/// what it asked for, at one instant.
struct Terms {
    app_id: String,
    app_scopes: Vec<String>,
    refresh_token_ttl: i64,
    session_lifetime: Option<i64>,
    requested_scope: Option<String>,
    now: i64,
}

/// Why a token is refused, and whether its session ends with it.
struct Refusal {
    error: OAuthError,
    end_session: bool,
    reuse: bool,
}

impl Refusal {
    fn keep_session(detail: &str) -> Self {
        Refusal {
            error: rejected(detail),
            end_session: false,
            reuse: false,
        }
    }
}

/// The scopes the successor carries, or why there is none.
fn assess(terms: &Terms, found: &RefreshContext) -> Result<Vec<String>, Refusal> {
    let (record, session, user) = (&found.token, &found.session, &found.user);
    if record.app_id != terms.app_id {
        // Not this client's token: refuse without touching it (another
        // client must not be able to revoke a session it does not own).
        return Err(Refusal::keep_session(
            "refresh token issued to another client",
        ));
    }
    if record.rotated_at.is_some() {
        return Err(Refusal {
            error: rejected("refresh token reuse detected"),
            end_session: true,
            reuse: true,
        });
    }
    if record.expires_at <= terms.now {
        return Err(Refusal::keep_session("refresh token expired"));
    }
    if session.revoked_at.is_some() {
        return Err(Refusal::keep_session("session revoked"));
    }
    if terms
        .session_lifetime
        .is_some_and(|limit| terms.now >= session.auth_time + limit)
    {
        // The absolute lifetime is over: the user signs in again.
        return Err(Refusal {
            error: rejected("session lifetime exceeded"),
            end_session: true,
            reuse: false,
        });
    }
    if !user.may_sign_in() {
        return Err(Refusal::keep_session("user inactive or locked"));
    }
    let original: Vec<String> = record
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes =
        scope::narrow(&original, terms.requested_scope.as_deref()).map_err(|error| Refusal {
            error,
            end_session: false,
            reuse: false,
        })?;
    // The app may have lost a scope since the grant: drop what it no
    // longer holds rather than keep granting it.
    Ok(scopes
        .into_iter()
        .filter(|s| terms.app_scopes.contains(s))
        .collect())
}

fn terms_of(app: &App, requested_scope: Option<&str>, now: i64) -> Terms {
    Terms {
        app_id: app.id.clone(),
        app_scopes: app.scopes.clone(),
        refresh_token_ttl: app.refresh_token_ttl,
        session_lifetime: app.session_lifetime,
        requested_scope: requested_scope.map(str::to_owned),
        now,
    }
}

pub(super) async fn handle(
    svc: &TokenService,
    app: &App,
    refresh_token: &str,
    requested_scope: Option<&str>,
) -> Result<IssuedTokens, OAuthError> {
    let now = svc.now();
    let successor = random_token();
    let judge = {
        let terms = terms_of(app, requested_scope, now);
        let successor_hash = sha256_hex(&successor);
        Box::new(move |found: &RefreshContext| match assess(&terms, found) {
            Err(refusal) => RefreshVerdict::Refuse {
                end_session: refusal.end_session,
            },
            Ok(scopes) => RefreshVerdict::Rotate(RefreshTokenRecord {
                token_hash: successor_hash,
                session_id: found.session.id.clone(),
                app_id: terms.app_id.clone(),
                user_id: found.user.id.clone(),
                scope: scopes.join(" "),
                issued_at: now,
                expires_at: refresh_expiry(
                    terms.refresh_token_ttl,
                    terms.session_lifetime,
                    found.session.auth_time,
                    now,
                ),
                rotated_at: None,
            }),
        })
    };
    let outcome = svc
        .repos
        .tokens
        .refresh(&sha256_hex(refresh_token), now, judge)
        .await?;
    // The judge's verdict again (it is pure, and `now` is the same), for
    // its reasons and scopes.
    let terms = terms_of(app, requested_scope, now);
    let found = match outcome {
        Refreshed::Unknown => return Err(rejected("unknown refresh token")),
        Refreshed::Lost(found) => {
            // Judged live, but another request (on this node or another)
            // exchanged it first: a replay raced with its original, and
            // the store revoked the session. Audited like any other.
            replay_detected(svc, app, &found, now).await;
            return Err(rejected("refresh token reuse detected"));
        }
        Refreshed::Refused(found) => {
            let refusal = match assess(&terms, &found) {
                Err(refusal) => refusal,
                Ok(_) => return Err(OAuthError::server_error("refresh refused without a reason")),
            };
            if refusal.reuse {
                replay_detected(svc, app, &found, now).await;
            }
            return Err(refusal.error);
        }
        Refreshed::Rotated(found) => found,
    };
    let scopes = assess(&terms, &found).map_err(|refusal| refusal.error)?;
    let grant = svc
        .user_grant(
            app,
            &found.user,
            scopes,
            found.session.id.clone(),
            found.session.auth_time,
        )
        .await?;
    svc.issuer
        .issue(grant, RefreshMode::Rotated { token: successor }, now)
        .await
}

/// A rotated-out token came back: its session is revoked (by the store,
/// as judged); say so in the log and the audit trail.
async fn replay_detected(svc: &TokenService, app: &App, found: &RefreshContext, now: i64) {
    let sid = &found.session.id;
    tracing::warn!(
        sid = sid.as_str(),
        client_id = app.client_id.as_str(),
        "rotated-out refresh token presented again; session revoked"
    );
    crate::audit::record(
        svc.repos.audit.as_ref(),
        crate::audit::AuditEvent::new(crate::audit::kind::REFRESH_REUSE, false, now)
            .subject(&found.token.user_id)
            .client(&app.client_id)
            .detail(format!("session {sid} revoked")),
    )
    .await;
}
