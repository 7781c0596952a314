//! `latchkey export`: the whole domain as a domain file, stable (sorted by
//! natural key) so two exports diff meaningfully, and such that applying
//! it to the same database changes nothing. No plaintext secret exists to
//! be written: passwords and client secrets leave as their stored hashes,
//! sealed secrets and signing keys stay sealed under the master key.

use base64::Engine as _;

use super::app_input::AppInput;
use super::entries::{DomainFile, GroupEntry, ResourceServerEntry, SigningKeyEntry, UserEntry};
use super::snapshot::DomainSnapshot;
use crate::duration::format_duration;
use crate::model::AppRole;

fn role_names(roles: &[AppRole]) -> Vec<String> {
    let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    names.sort();
    names
}

/// The domain file describing `snapshot`. Signing keys are included only
/// with `include_keys`.
pub fn export(snapshot: &DomainSnapshot, include_keys: bool) -> DomainFile {
    let mut file = DomainFile::default();
    let mut servers = snapshot.resource_servers.clone();
    servers.sort_by(|a, b| a.audience.cmp(&b.audience));
    file.resource_servers = servers
        .into_iter()
        .map(|rs| ResourceServerEntry {
            name: rs.name,
            audience: rs.audience,
            scopes: rs.scopes,
        })
        .collect();

    let mut groups = snapshot.groups.clone();
    groups.sort_by(|a, b| a.group.name.cmp(&b.group.name));
    file.groups = groups
        .iter()
        .map(|g| GroupEntry {
            id: Some(g.group.id.clone()),
            name: g.group.name.clone(),
            app_roles: role_names(&g.app_roles),
        })
        .collect();

    let mut users = snapshot.users.clone();
    users.sort_by_key(|u| u.user.username.to_lowercase());
    file.users = users
        .iter()
        .map(|u| {
            let mut groups = u.groups.clone();
            groups.sort();
            UserEntry {
                id: Some(u.user.id.clone()),
                username: u.user.username.clone(),
                password: None,
                password_hash: u.user.password_hash.clone(),
                given_name: u.user.given_name.clone(),
                family_name: u.user.family_name.clone(),
                display_name: u.user.display_name.clone(),
                external_id: u.user.external_id.clone(),
                email: u.user.email.clone(),
                active: Some(u.user.active),
                locked: Some(u.user.locked),
                groups,
                app_roles: role_names(&u.app_roles),
            }
        })
        .collect();

    let mut apps = snapshot.apps.clone();
    apps.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    file.apps = apps
        .iter()
        .map(|app| {
            let mut input = AppInput::from_app(app);
            input.id = Some(app.id.clone());
            input.client_secret_hash = app.secret_hash.clone();
            input.client_secret_sealed = app
                .secret_sealed
                .clone()
                .filter(|_| app.accepts_client_secret_jwt());
            // Readable durations; format_duration is exact.
            let text = |s: i64| super::app_input::DurationInput::Text(format_duration(s));
            input.access_token_ttl = Some(text(app.access_token_ttl));
            input.refresh_token_ttl = Some(text(app.refresh_token_ttl));
            input.session_lifetime = app.session_lifetime.map(text);
            input.refresh_token_reuse_interval = Some(match app.refresh_token_reuse_interval {
                0 => super::app_input::DurationInput::Seconds(0),
                s => text(s),
            });
            input
        })
        .collect();

    if include_keys {
        let mut keys = snapshot.signing_keys.clone();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        file.signing_keys = keys
            .into_iter()
            .map(|k| SigningKeyEntry {
                kid: k.kid,
                alg: k.alg,
                state: k.state.as_str().to_owned(),
                created_at: k.created_at,
                activates_at: k.activates_at,
                retiring_at: k.retiring_at,
                retired_at: k.retired_at,
                public_jwk: k.public_jwk,
                encrypted_private_key: base64::engine::general_purpose::STANDARD
                    .encode(&k.encrypted_private_key),
            })
            .collect();
    }
    file
}
