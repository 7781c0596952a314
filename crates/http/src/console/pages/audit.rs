//! `/console/audit`: the audit trail, newest first, filtered by event
//! type, subject and time.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{AuditParams, Permission};

use super::{text, when};
use crate::console::fields::{FieldErrors, Refusal, refusal};
use crate::console::session::signed_in;
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

const PAGE_SIZE: u64 = 50;

struct EventRow {
    time: String,
    event_type: String,
    outcome: String,
    outcome_class: &'static str,
    actor: Party,
    subject: Party,
    client_id: String,
    ip: String,
    detail: String,
}

/// An actor or subject as shown: a user by their username, with the
/// recorded id in the cell's title; anything else (a client_id, `cli`,
/// a group or key id, an unknown username) as recorded.
struct Party {
    shown: String,
    /// The recorded id, when `shown` is the username it stands for.
    id: Option<String>,
    /// `shown` is an id nothing resolved (set in small monospace).
    raw_id: bool,
}

/// Usernames of the user ids among `values` (one lookup per distinct id;
/// a page holds at most `PAGE_SIZE` events).
async fn usernames<'a>(
    state: &AppState,
    values: impl Iterator<Item = &'a str>,
) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for value in values {
        if uuid::Uuid::parse_str(value).is_err() || !seen.insert(value.to_owned()) {
            continue;
        }
        match state.repos.users.find_by_id(value).await {
            Ok(Some(user)) => {
                names.insert(value.to_owned(), user.username);
            }
            Ok(None) => {}
            // The page still shows the id.
            Err(e) => tracing::warn!(error = %e, "audit page: cannot look up a username"),
        }
    }
    names
}

fn party(value: String, names: &HashMap<String, String>) -> Party {
    match names.get(&value) {
        Some(username) => Party {
            shown: username.clone(),
            id: Some(value),
            raw_id: false,
        },
        None => Party {
            raw_id: uuid::Uuid::parse_str(&value).is_ok(),
            shown: value,
            id: None,
        },
    }
}

/// The filter form's values, as typed.
#[derive(Default)]
struct Filter {
    event_type: String,
    subject: String,
    since: String,
    until: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    filter: Filter,
    errors: FieldErrors,
    rows: Vec<EventRow>,
    filtered: bool,
    range_text: String,
    previous: Option<String>,
    next: Option<String>,
}

/// A `datetime-local` value ("2026-12-01T10:00", seconds optional) as
/// RFC 3339 UTC; `Err` when it is not one.
fn rfc3339(value: &str) -> Result<Option<String>, ()> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let shape_ok = value.len() >= 16
        && value.is_char_boundary(16)
        && value.as_bytes()[10] == b'T'
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | 'T' | '.'));
    if !shape_ok {
        return Err(());
    }
    Ok(Some(if value.len() == 16 {
        format!("{value}:00Z")
    } else {
        format!("{value}Z")
    }))
}

fn link(filter: &Filter, page: u64) -> String {
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "/console/audit?type={}&subject={}&since={}&until={}&page={page}",
        enc(&filter.event_type),
        enc(&filter.subject),
        enc(&filter.since),
        enc(&filter.until)
    )
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let caller = &signed.session.caller;
    if !caller.may(Permission::ReadAudit) {
        return view::forbidden(&state, &signed, "reading audit events").await;
    }
    let value = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim().chars().take(256).collect::<String>())
            .unwrap_or_default()
    };
    let filter = Filter {
        event_type: value("type"),
        subject: value("subject"),
        since: value("since"),
        until: value("until"),
    };
    let page = query
        .get("page")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let mut errors = FieldErrors::default();
    let since = rfc3339(&filter.since).unwrap_or_else(|()| {
        errors.add("since", "Enter a date and time, e.g. 2026-12-01T09:30.");
        None
    });
    let until = rfc3339(&filter.until).unwrap_or_else(|()| {
        errors.add("until", "Enter a date and time, e.g. 2026-12-01T17:00.");
        None
    });
    let mut rows = Vec::new();
    let mut total = 0;
    if errors.is_empty() {
        let params = AuditParams {
            event_type: Some(filter.event_type.clone()),
            actor: None,
            subject: Some(filter.subject.clone()),
            since,
            until,
            start_index: Some(((page - 1) * PAGE_SIZE + 1).to_string()),
            count: Some(PAGE_SIZE.to_string()),
        };
        match state.scim.audit_events(caller, &params).await {
            Ok(answer) => {
                total = answer.body["totalResults"].as_u64().unwrap_or(0);
                let events = answer.body["Resources"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let names = usernames(
                    &state,
                    events.iter().flat_map(|e| {
                        [e["actor"].as_str(), e["subject"].as_str()]
                            .into_iter()
                            .flatten()
                    }),
                )
                .await;
                rows = events
                    .iter()
                    .map(|e| EventRow {
                        time: when(&text(e, "/timestamp")),
                        event_type: text(e, "/eventType"),
                        outcome_class: if text(e, "/outcome") == "success" {
                            "ok"
                        } else {
                            "bad"
                        },
                        outcome: text(e, "/outcome"),
                        actor: party(text(e, "/actor"), &names),
                        subject: party(text(e, "/subject"), &names),
                        client_id: text(e, "/clientId"),
                        ip: text(e, "/ip"),
                        detail: text(e, "/detail"),
                    })
                    .collect();
            }
            Err(e) => match refusal(e, &[("since", "since"), ("until", "until")]) {
                Refusal::Form(found) => errors = found,
                _ => return view::unavailable(),
            },
        }
    }
    let first = (page - 1) * PAGE_SIZE + 1;
    let last = first + rows.len() as u64 - 1;
    let filtered = !(filter.event_type.is_empty()
        && filter.subject.is_empty()
        && filter.since.is_empty()
        && filter.until.is_empty());
    view::page(
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        &AuditPage {
            chrome: Chrome::signed(&state, &signed, "Audit events", Section::Audit, None).await,
            range_text: format!("Events {first}–{last} of {total}, newest first"),
            previous: (page > 1).then(|| link(&filter, page - 1)),
            next: (last < total).then(|| link(&filter, page + 1)),
            filter,
            errors,
            rows,
            filtered,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn datetime_local_values_become_utc() {
        assert_eq!(rfc3339(""), Ok(None));
        assert_eq!(
            rfc3339("2026-12-01T09:30"),
            Ok(Some("2026-12-01T09:30:00Z".into()))
        );
        assert_eq!(
            rfc3339("2026-12-01T09:30:15"),
            Ok(Some("2026-12-01T09:30:15Z".into()))
        );
        assert_eq!(rfc3339("yesterday"), Err(()));
        assert_eq!(rfc3339("2026-12-01 09:30"), Err(()));
    }
}
