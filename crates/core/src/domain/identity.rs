//! What a domain file says about identity, checked against the database
//! before anything is written: an id never changes and never moves to
//! another entry (a user's id is the `sub` of their tokens), and a signing
//! key opens under this master key and does not contradict a stored one.

use std::collections::HashMap;

use super::ApplyError;
use super::plan::DomainPlan;
use super::snapshot::DomainSnapshot;
use crate::model::KeyState;
use crate::secrets::MasterKey;

fn field_error(field: String, message: String) -> ApplyError {
    ApplyError::Field { field, message }
}

/// Checks one kind: `entries` are (natural key, wanted id) from the file,
/// `stored` (natural key, id) from the database. Natural keys are
/// compared by `key_of` (users ignore case).
fn check_ids<'a>(
    kind: &str,
    entries: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    stored: impl Iterator<Item = (&'a str, &'a str)>,
    key_of: fn(&str) -> String,
) -> Result<(), ApplyError> {
    let mut by_key = HashMap::new();
    let mut by_id = HashMap::new();
    for (key, id) in stored {
        by_key.insert(key_of(key), id);
        by_id.insert(id, key);
    }
    for (key, id) in entries {
        let Some(id) = id else { continue };
        let field = format!("{kind}[{key}].id");
        if let Some(current) = by_key.get(&key_of(key)) {
            if *current != id {
                return Err(field_error(
                    field,
                    format!("{key:?} exists with id {current}; an id never changes"),
                ));
            }
        } else if let Some(owner) = by_id.get(id) {
            return Err(field_error(
                field,
                format!("id {id} already belongs to {owner:?}"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check(
    plan: &DomainPlan,
    stored: &DomainSnapshot,
    master: &MasterKey,
) -> Result<(), ApplyError> {
    check_ids(
        "users",
        plan.users
            .iter()
            .map(|u| (u.username.as_str(), u.id.as_deref())),
        stored
            .users
            .iter()
            .map(|u| (u.user.username.as_str(), u.user.id.as_str())),
        str::to_lowercase,
    )?;
    check_ids(
        "groups",
        plan.groups
            .iter()
            .map(|g| (g.name.as_str(), g.id.as_deref())),
        stored
            .groups
            .iter()
            .map(|g| (g.group.name.as_str(), g.group.id.as_str())),
        str::to_owned,
    )?;
    check_ids(
        "apps",
        plan.apps
            .iter()
            .map(|a| (a.client_id.as_str(), a.id.as_deref())),
        stored
            .apps
            .iter()
            .map(|a| (a.client_id.as_str(), a.id.as_str())),
        str::to_owned,
    )?;

    for key in &plan.signing_keys {
        let field = |f: &str| format!("signing_keys[{}].{f}", key.kid);
        if master
            .decrypt(&key.encrypted_private_key, &key.kid)
            .is_err()
        {
            return Err(field_error(
                field("encrypted_private_key"),
                "does not open with this master key (exported keys import only where the master key of the exporting database is in use)".into(),
            ));
        }
        if let Some(current) = stored.signing_keys.iter().find(|k| k.kid == key.kid)
            && (current.alg != key.alg || current.public_jwk != key.public_jwk)
        {
            return Err(field_error(
                field("public_jwk"),
                "a different key with this kid is stored".into(),
            ));
        }
        // Reviving a key that is stored as retired would publish a key
        // whose tokens were meant to be dead.
        if let Some(current) = stored.signing_keys.iter().find(|k| k.kid == key.kid)
            && current.state == KeyState::Retired
            && key.state != KeyState::Retired
        {
            return Err(field_error(
                field("state"),
                "the stored key is retired and cannot be made current again".into(),
            ));
        }
    }
    Ok(())
}
