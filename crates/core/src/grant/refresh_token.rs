//! RFC 6749 §6: refreshing an access token, with rotation, reuse
//! detection (RFC 9700 §4.14.2) and a bounded reuse interval.
//!
//! The decision is made where the store holds the token (`TokenRepo::
//! refresh`: on SQLite inside a batch of concurrent refreshes, one lookup
//! and one transaction for all), so it is a pure function of the token,
//! its session and its user: `assess`. The access token is signed after
//! the rotation is stored.
//!
//! The rules (docs/tokens.md, "Rotation and the reuse interval"): a
//! session counts its rotations (its generation). Only a token of the
//! current generation rotates; the token rotated out last may come back
//! within the app's reuse interval, and gets a sibling in the current
//! generation (a client that lost the answer, or refreshed from two
//! threads, goes on). Once one token of a generation rotates, its
//! siblings are dead: presenting one, or any older token, is a replay
//! and ends the session. A thief racing the real client therefore holds a
//! sibling that dies at the first rotation of either branch, and the
//! loser's next refresh ends the session for both.

use crate::error::OAuthError;
use crate::issuer::{IssuedTokens, RefreshMode, refresh_expiry};
use crate::model::{App, RefreshTokenRecord};
use crate::scope;
use crate::secrets::{random_token, sha256_hex};
use crate::store::{RefreshContext, RefreshVerdict, Refreshed, StoreError};

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
    reuse_interval: i64,
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

    fn replay() -> Self {
        Refusal {
            error: rejected("refresh token reuse detected"),
            end_session: true,
            reuse: true,
        }
    }
}

/// How a live token is exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exchange {
    /// The newest token: rotated to a successor of the next generation.
    Rotate,
    /// The token rotated out last, back within the reuse interval: a
    /// sibling of its successor.
    Redeem,
}

/// Whether the token may be exchanged at all, and how.
fn exchange(terms: &Terms, found: &RefreshContext) -> Result<Exchange, Refusal> {
    let (record, session) = (&found.token, &found.session);
    match record.rotated_at {
        None if record.generation == session.generation => Ok(Exchange::Rotate),
        // A sibling whose generation has moved on: another token of its
        // generation rotated first.
        None => Err(Refusal::replay()),
        Some(rotated_at)
            if terms.reuse_interval > 0
                && record.generation + 1 == session.generation
                && (rotated_at..=rotated_at + terms.reuse_interval).contains(&terms.now)
                && session.revoked_at.is_none() =>
        {
            Ok(Exchange::Redeem)
        }
        Some(_) => Err(Refusal::replay()),
    }
}

/// How the token is exchanged and the scopes the new one carries, or why
/// there is none.
fn assess(terms: &Terms, found: &RefreshContext) -> Result<(Exchange, Vec<String>), Refusal> {
    let (record, session, user) = (&found.token, &found.session, &found.user);
    if record.app_id != terms.app_id {
        // Not this client's token: refuse without touching it (another
        // client must not be able to revoke a session it does not own).
        return Err(Refusal::keep_session(
            "refresh token issued to another client",
        ));
    }
    let exchange = exchange(terms, found)?;
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
    let scopes = scopes
        .into_iter()
        .filter(|s| terms.app_scopes.contains(s))
        .collect();
    Ok((exchange, scopes))
}

/// The verdict the store acts on: the successor (or sibling) to store,
/// with the hash of the token the client will get.
fn verdict(terms: &Terms, found: &RefreshContext, successor_hash: &str) -> RefreshVerdict {
    let (exchange, scopes) = match assess(terms, found) {
        Err(refusal) => {
            return RefreshVerdict::Refuse {
                end_session: refusal.end_session,
            };
        }
        Ok(judged) => judged,
    };
    let session = &found.session;
    let record = RefreshTokenRecord {
        token_hash: successor_hash.to_owned(),
        session_id: session.id.clone(),
        app_id: terms.app_id.clone(),
        user_id: found.user.id.clone(),
        scope: scopes.join(" "),
        issued_at: terms.now,
        expires_at: refresh_expiry(
            terms.refresh_token_ttl,
            terms.session_lifetime,
            session.auth_time,
            terms.now,
        ),
        rotated_at: None,
        generation: match exchange {
            Exchange::Rotate => session.generation + 1,
            Exchange::Redeem => session.generation,
        },
    };
    match exchange {
        Exchange::Rotate => RefreshVerdict::Rotate(record),
        Exchange::Redeem => RefreshVerdict::Redeem(record),
    }
}

fn terms_of(app: &App, requested_scope: Option<&str>, now: i64) -> Terms {
    Terms {
        app_id: app.id.clone(),
        app_scopes: app.scopes.clone(),
        refresh_token_ttl: app.refresh_token_ttl,
        session_lifetime: app.session_lifetime,
        reuse_interval: app.refresh_token_reuse_interval,
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
    let judge: crate::store::RefreshJudge = {
        let terms = terms_of(app, requested_scope, now);
        let successor_hash = sha256_hex(&successor);
        std::sync::Arc::new(move |found: &RefreshContext| verdict(&terms, found, &successor_hash))
    };
    let outcome = match svc
        .repos
        .tokens
        .refresh(&sha256_hex(refresh_token), now, judge)
        .await
    {
        // Concurrent refreshes kept changing the token: nothing was
        // written; the client may try again.
        Err(StoreError::Conflict(_)) => {
            return Err(rejected("concurrent refreshes of one token did not settle"));
        }
        other => other?,
    };
    // The judge's verdict again (it is pure, and `now` is the same), for
    // its reasons and scopes.
    let terms = terms_of(app, requested_scope, now);
    let found = match outcome {
        Refreshed::Unknown => return Err(rejected("unknown refresh token")),
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
        Refreshed::Redeemed(found) => {
            redeemed(svc, app, &found, now).await;
            found
        }
        Refreshed::Rotated(found) => found,
    };
    let (_, scopes) = assess(&terms, &found).map_err(|refusal| refusal.error)?;
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

/// A token rotated out moments ago came back within the reuse interval
/// and got a sibling: audited, so a pattern of redemptions can be seen.
async fn redeemed(svc: &TokenService, app: &App, found: &RefreshContext, now: i64) {
    let sid = &found.session.id;
    tracing::info!(
        sid = sid.as_str(),
        client_id = app.client_id.as_str(),
        "rotated-out refresh token presented within the reuse interval; redeemed"
    );
    crate::audit::record(
        svc.repos.audit.as_ref(),
        crate::audit::AuditEvent::new(crate::audit::kind::REFRESH_REDEEMED, true, now)
            .subject(&found.token.user_id)
            .client(&app.client_id)
            .detail(format!("session {sid}")),
    )
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Session, User};

    const INTERVAL: i64 = 30;

    fn terms(now: i64, reuse_interval: i64) -> Terms {
        Terms {
            app_id: "app".into(),
            app_scopes: vec!["offline_access".into()],
            refresh_token_ttl: 3600,
            session_lifetime: None,
            reuse_interval,
            requested_scope: None,
            now,
        }
    }

    /// A token of `generation` (rotated at `rotated_at`) in a session at
    /// `session_generation`.
    fn found(generation: i64, rotated_at: Option<i64>, session_generation: i64) -> RefreshContext {
        RefreshContext {
            token: RefreshTokenRecord {
                token_hash: "h".into(),
                session_id: "s".into(),
                app_id: "app".into(),
                user_id: "u".into(),
                scope: "offline_access".into(),
                issued_at: 0,
                expires_at: 10_000,
                rotated_at,
                generation,
            },
            session: Session {
                id: "s".into(),
                user_id: "u".into(),
                app_id: "app".into(),
                auth_time: 0,
                created_at: 0,
                revoked_at: None,
                generation: session_generation,
            },
            user: User {
                id: "u".into(),
                username: "alice".into(),
                password_hash: None,
                given_name: None,
                family_name: None,
                email: None,
                active: true,
                locked: false,
                created_at: 0,
                updated_at: 0,
                external_id: None,
                display_name: None,
                version: 1,
            },
        }
    }

    fn judged(terms: &Terms, found: &RefreshContext) -> Result<Exchange, bool> {
        assess(terms, found)
            .map(|(exchange, _)| exchange)
            .map_err(|refusal| refusal.reuse && refusal.end_session)
    }

    #[test]
    fn the_newest_token_rotates_to_the_next_generation() {
        let live = found(3, None, 3);
        assert_eq!(judged(&terms(100, INTERVAL), &live), Ok(Exchange::Rotate));
        match verdict(&terms(100, INTERVAL), &live, "next") {
            RefreshVerdict::Rotate(next) => {
                assert_eq!((next.generation, next.rotated_at), (4, None))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_token_rotated_out_last_is_redeemed_within_the_interval_only() {
        let previous = found(2, Some(100), 3);
        for now in [100, 115, 130] {
            assert_eq!(
                judged(&terms(now, INTERVAL), &previous),
                Ok(Exchange::Redeem),
                "{now}"
            );
        }
        match verdict(&terms(110, INTERVAL), &previous, "sibling") {
            RefreshVerdict::Redeem(sibling) => {
                assert_eq!(sibling.generation, 3, "a sibling of the newest");
                assert_eq!(sibling.token_hash, "sibling");
            }
            other => panic!("{other:?}"),
        }
        // One second past the interval: a replay, and the session ends.
        assert_eq!(judged(&terms(131, INTERVAL), &previous), Err(true));
        // The interval off: any replay ends the session.
        assert_eq!(judged(&terms(100, 0), &previous), Err(true));
    }

    #[test]
    fn older_tokens_and_dead_siblings_are_replays() {
        // Rotated out two generations ago, however recently.
        assert_eq!(
            judged(&terms(101, INTERVAL), &found(1, Some(100), 3)),
            Err(true)
        );
        // A sibling whose generation rotated through another token.
        assert_eq!(judged(&terms(101, INTERVAL), &found(2, None, 3)), Err(true));
        // The session already ended: the rotated token is not redeemed.
        let mut ended = found(2, Some(100), 3);
        ended.session.revoked_at = Some(105);
        assert_eq!(judged(&terms(110, INTERVAL), &ended), Err(true));
    }

    #[test]
    fn a_redemption_is_refused_for_what_refuses_a_rotation() {
        let mut foreign = found(2, Some(100), 3);
        foreign.token.app_id = "other".into();
        assert_eq!(judged(&terms(110, INTERVAL), &foreign), Err(false));
        let mut locked = found(2, Some(100), 3);
        locked.user.locked = true;
        assert_eq!(judged(&terms(110, INTERVAL), &locked), Err(false));
        let mut expired = found(2, Some(100), 3);
        expired.token.expires_at = 105;
        assert_eq!(judged(&terms(110, INTERVAL), &expired), Err(false));
    }
}
