//! Form errors beside their fields: a core refusal names the attribute
//! it is about at the start of its message; this maps that attribute to
//! the console field that set it.

use latchkey_core::admin::{AdminError, BearerError, RegistryError};
use latchkey_core::directory::DirectoryError;
use latchkey_core::scim::ScimStatus;
use latchkey_core::store::StoreError;

/// Errors of one form: per field, and for the form as a whole.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldErrors {
    pub(crate) fields: Vec<(&'static str, String)>,
    pub(crate) form: Option<String>,
}

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.fields.push((field, message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }

    /// The error of `field`, or "" (templates show it when not empty).
    pub(crate) fn of(&self, field: &str) -> &str {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, m)| m.as_str())
    }
}

/// What a refused write means for the form that sent it.
pub(crate) enum Refusal {
    /// Show the form again with these errors.
    Form(FieldErrors),
    /// The caller may not do this.
    Denied,
    /// The session's token is no longer valid.
    SignedOut,
    /// The thing is gone.
    NotFound,
    /// Try again later.
    Unavailable,
}

/// SCIM attribute names (as the core's messages start) and the form
/// fields they belong to; the first match wins.
const ATTRIBUTES: [(&str, &str); 8] = [
    ("currentPassword", "current_password"),
    ("password", "password"),
    ("userName", "username"),
    ("givenName", "given_name"),
    ("familyName", "family_name"),
    ("name.", "given_name"),
    ("email", "email"),
    ("displayName", "display_name"),
];

pub(crate) fn refusal(error: AdminError, extra: &[(&str, &'static str)]) -> Refusal {
    match error {
        AdminError::Denied(BearerError::Insufficient { .. }) => Refusal::Denied,
        AdminError::Denied(BearerError::Unavailable) => Refusal::Unavailable,
        AdminError::Denied(_) => Refusal::SignedOut,
        AdminError::Scim(e) if e.status == ScimStatus::NotFound => Refusal::NotFound,
        AdminError::Scim(e) if e.status.is_failure() => {
            tracing::warn!(
                status = ?e.status,
                detail = e.detail.as_str(),
                "console write failed"
            );
            Refusal::Unavailable
        }
        AdminError::Scim(e) => {
            let mut errors = FieldErrors::default();
            if e.scim_type == Some("uniqueness") {
                let field = extra.first().map_or("username", |(_, f)| *f);
                errors.add(field, "That name is already taken.");
                return Refusal::Form(errors);
            }
            let detail = e.detail.trim_start_matches(['"', '\'']);
            let field = extra
                .iter()
                .copied()
                .chain(ATTRIBUTES.iter().map(|(a, f)| (*a, *f)))
                .find(|(attribute, _)| detail.starts_with(attribute))
                .map(|(_, field)| field);
            let message = sentence(&e.detail);
            match field {
                Some(field) => errors.add(field, message),
                None => errors.form = Some(message),
            }
            Refusal::Form(errors)
        }
    }
}

/// What a refused directory operation means for the form that sent it:
/// an invalid value lands beside the field it names (`extra` maps the
/// directory's attribute names to this form's fields first).
pub(crate) fn directory_refusal(error: DirectoryError, extra: &[(&str, &'static str)]) -> Refusal {
    match error {
        DirectoryError::Denied(BearerError::Insufficient { .. }) => Refusal::Denied,
        DirectoryError::Denied(BearerError::Unavailable) => Refusal::Unavailable,
        DirectoryError::Denied(_) => Refusal::SignedOut,
        DirectoryError::NotFound(_) => Refusal::NotFound,
        DirectoryError::Unavailable(_) => Refusal::Unavailable,
        DirectoryError::Internal(detail) => {
            tracing::warn!(detail = detail.as_str(), "console write failed");
            Refusal::Unavailable
        }
        DirectoryError::Taken(_) => {
            let mut errors = FieldErrors::default();
            errors.add(
                extra.first().map_or("username", |(_, f)| *f),
                "That name is already taken.",
            );
            Refusal::Form(errors)
        }
        DirectoryError::Invalid { field, detail } => {
            let mut errors = FieldErrors::default();
            let field = extra
                .iter()
                .copied()
                .chain(ATTRIBUTES.iter().map(|(a, f)| (*a, *f)))
                .find(|(attribute, _)| field.starts_with(attribute))
                .map(|(_, f)| f);
            match field {
                Some(f) => errors.add(f, sentence(&detail)),
                None => errors.form = Some(sentence(&detail)),
            }
            Refusal::Form(errors)
        }
        DirectoryError::Immutable(detail) | DirectoryError::Conflict(detail) => {
            Refusal::Form(FieldErrors {
                form: Some(sentence(&detail)),
                ..FieldErrors::default()
            })
        }
        DirectoryError::VersionMismatch => Refusal::Form(FieldErrors {
            form: Some("It changed while you were editing; look again.".into()),
            ..FieldErrors::default()
        }),
    }
}

/// A refusal of some service, as a console page sees it.
pub(crate) trait IntoRefusal {
    fn into_refusal(self) -> Refusal;
}

impl IntoRefusal for AdminError {
    fn into_refusal(self) -> Refusal {
        refusal(self, &[])
    }
}

impl IntoRefusal for DirectoryError {
    fn into_refusal(self) -> Refusal {
        directory_refusal(self, &[])
    }
}

/// What a refused apps / resource servers / keys operation means for the
/// form that asked: its errors name the domain-file field, which is the
/// console field's name too.
pub(crate) fn registry_refusal(
    error: RegistryError,
    conflict_field: &'static str,
    known: &[&'static str],
) -> Refusal {
    match error {
        RegistryError::Denied(BearerError::Insufficient { .. }) => Refusal::Denied,
        RegistryError::Denied(BearerError::Unavailable) => Refusal::Unavailable,
        RegistryError::Denied(_) => Refusal::SignedOut,
        RegistryError::NotFound(_) => Refusal::NotFound,
        RegistryError::Invalid { field, message } => {
            let mut errors = FieldErrors::default();
            let last = field.rsplit(['.', ']']).next().unwrap_or_default();
            match known.iter().find(|k| **k == last) {
                Some(k) => errors.add(k, sentence(&message)),
                None => errors.form = Some(sentence(&format!("{field}: {message}"))),
            }
            Refusal::Form(errors)
        }
        RegistryError::Conflict(why) => {
            let mut errors = FieldErrors::default();
            match why.split_once(": ") {
                // "scopes: apps may be granted …": about another field.
                Some((field, message)) if known.contains(&field) => {
                    let k = known.iter().find(|k| **k == field).expect("just found");
                    errors.add(k, sentence(message));
                }
                _ => errors.add(conflict_field, sentence(&why)),
            }
            Refusal::Form(errors)
        }
        RegistryError::Store(StoreError::NotFound) => Refusal::NotFound,
        RegistryError::Store(e) => {
            tracing::warn!(error = e.to_string(), "console registry operation failed");
            Refusal::Unavailable
        }
    }
}

/// A core message as a sentence for a person.
fn sentence(detail: &str) -> String {
    let mut text = detail.trim().to_owned();
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::scim::ScimError;

    fn form(e: AdminError) -> FieldErrors {
        match refusal(e, &[]) {
            Refusal::Form(f) => f,
            _ => panic!("not a form error"),
        }
    }

    #[test]
    fn core_messages_land_beside_their_fields() {
        let e = form(ScimError::invalid_value("password: must be at least 12 characters").into());
        assert_eq!(
            e.of("password"),
            "Password: must be at least 12 characters."
        );
        let e =
            form(ScimError::invalid_value("currentPassword is not the current password").into());
        assert_eq!(
            e.of("current_password"),
            "CurrentPassword is not the current password."
        );
        assert_eq!(e.of("password"), "");
        let e = form(ScimError::invalid_value("userName must be 1 to 256 characters").into());
        assert!(!e.of("username").is_empty());
        let e = form(ScimError::uniqueness("users.username").into());
        assert_eq!(e.of("username"), "That name is already taken.");
        let e = form(ScimError::invalid_value("something else").into());
        assert_eq!(e.form.as_deref(), Some("Something else."));
    }

    #[test]
    fn registry_errors_land_beside_their_fields() {
        let known = ["name", "redirect_uris", "scopes"];
        let form = |e| match registry_refusal(e, "client_id", &known) {
            Refusal::Form(f) => f,
            _ => panic!("not a form error"),
        };
        let e = form(RegistryError::Invalid {
            field: "redirect_uris".into(),
            message: "must be https".into(),
        });
        assert_eq!(e.of("redirect_uris"), "Must be https.");
        let e = form(RegistryError::Conflict(
            "an app with client_id \"x\" exists".into(),
        ));
        assert!(e.of("client_id").starts_with("An app with client_id"));
        let e = form(RegistryError::Conflict(
            "scopes: apps may be granted these scopes: x".into(),
        ));
        assert!(e.of("scopes").starts_with("Apps may be granted"));
        let e = form(RegistryError::Invalid {
            field: "grace".into(),
            message: "too long".into(),
        });
        assert_eq!(e.form.as_deref(), Some("Grace: too long."));
        assert!(matches!(
            registry_refusal(RegistryError::NotFound("x".into()), "c", &known),
            Refusal::NotFound
        ));
    }

    #[test]
    fn denials_and_gone_things_are_not_form_errors() {
        let denied = BearerError::Insufficient {
            scope: "s",
            detail: "d".into(),
        };
        assert!(matches!(refusal(denied.into(), &[]), Refusal::Denied));
        assert!(matches!(
            refusal(BearerError::Invalid("x".into()).into(), &[]),
            Refusal::SignedOut
        ));
        assert!(matches!(
            refusal(ScimError::not_found("x").into(), &[]),
            Refusal::NotFound
        ));
    }
}
