//! Client secret rotation with a grace period: the new secret works at
//! once, the old one keeps working until the grace ends, so a fleet of
//! clients can be moved over without an outage.

use crate::model::{App, AppType, PreviousSecret};
use crate::secrets::{MasterKey, generate_client_secret};
use crate::store::{AppRepo, NewSecret, StoreError};

/// The longest a rotated-out secret may keep working.
pub const MAX_GRACE_SECS: i64 = 30 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{0} is a public app: it has no secret")]
    Public(String),
    #[error("the grace period must be between 0 and 30 days")]
    Grace,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Gives `app` a new generated secret (256 bits), returned to be shown
/// once. With `grace_secs > 0` the current secret stays valid that long.
pub async fn rotate_secret(
    apps: &dyn AppRepo,
    master: &MasterKey,
    app: &App,
    grace_secs: i64,
    now: i64,
) -> Result<(String, NewSecret), RotateError> {
    if app.app_type == AppType::Public {
        return Err(RotateError::Public(app.client_id.clone()));
    }
    if !(0..=MAX_GRACE_SECS).contains(&grace_secs) {
        return Err(RotateError::Grace);
    }
    let secret = generate_client_secret();
    let previous = match &app.secret_hash {
        Some(hash) if grace_secs > 0 => Some(PreviousSecret {
            hash: hash.clone(),
            sealed: app.secret_sealed.clone(),
            expires_at: now + grace_secs,
        }),
        _ => None,
    };
    let new = NewSecret {
        hash: master.secret_hasher().hash(&secret),
        sealed: app
            .accepts_client_secret_jwt()
            .then(|| master.seal_client_secret(&app.client_id, &secret)),
        previous,
    };
    apps.set_secret(&app.id, &new, now).await?;
    Ok((secret, new))
}
