//! Scope rules (docs/tokens.md, "Token request"): parsing, what an app may be granted, and the
//! audience each scope belongs to.

use crate::error::OAuthError;
use crate::model::{App, ResourceServer};

pub const OFFLINE_ACCESS: &str = "offline_access";
pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";
/// The identity domain's own admin APIs.
pub const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";
/// Self-service (Oracle's name): a user changing their own profile and
/// password through `/admin/v1/Me`. Reading `/Me` needs no more than a
/// valid token of the user; writing needs this scope or `MY_SCOPES`.
pub const ME_SCOPE: &str = "urn:opc:idm:t.user.me";

pub const SPECIAL_SCOPES: [&str; 6] = [OFFLINE_ACCESS, OPENID, PROFILE, EMAIL, MY_SCOPES, ME_SCOPE];

pub fn is_special(scope: &str) -> bool {
    SPECIAL_SCOPES.contains(&scope)
}

/// Splits a `scope` parameter (RFC 6749 §3.3) into its tokens, rejecting
/// characters the grammar forbids. Repeated tokens count once.
pub fn parse(value: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return Err(OAuthError::invalid_scope(
                "scope contains a character RFC 6749 §3.3 does not allow",
            ));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_owned());
        }
    }
    Ok(scopes)
}

/// The scope to grant `app`: what it asked for, all of which it must have
/// been granted; or, when it asked for nothing, all of its scopes except
/// `offline_access` and `openid`.
pub fn resolve(app: &App, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(app
            .scopes
            .iter()
            .filter(|s| s.as_str() != OFFLINE_ACCESS && s.as_str() != OPENID)
            .cloned()
            .collect());
    };
    let scopes = parse(requested)?;
    if let Some(denied) = scopes.iter().find(|s| !app.scopes.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "the client may not request the scope {denied:?}"
        )));
    }
    Ok(scopes)
}

/// A refresh may keep or narrow the original scope, never widen it.
pub fn narrow(original: &[String], requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(original.to_vec());
    };
    let scopes = parse(requested)?;
    if let Some(extra) = scopes.iter().find(|s| !original.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "the scope {extra:?} was not part of the original grant"
        )));
    }
    Ok(scopes)
}

/// The resource server a fully qualified scope belongs to (the longest
/// audience that prefixes it and leaves one of its scopes).
pub fn resource_server_of<'a>(
    scope: &str,
    servers: &'a [ResourceServer],
) -> Option<&'a ResourceServer> {
    servers
        .iter()
        .filter(|rs| {
            scope
                .strip_prefix(rs.audience.as_str())
                .is_some_and(|rest| rs.scopes.iter().any(|s| s == rest))
        })
        .max_by_key(|rs| rs.audience.len())
}

/// The `aud` of an access token: the audiences of its resource scopes,
/// plus the issuer for the admin scope; the issuer alone when there are none.
pub fn audiences(scopes: &[String], servers: &[ResourceServer], issuer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        let aud = if scope == MY_SCOPES || scope == ME_SCOPE {
            Some(issuer)
        } else {
            resource_server_of(scope, servers).map(|rs| rs.audience.as_str())
        };
        if let Some(aud) = aud.filter(|a| !out.iter().any(|o| o == a)) {
            out.push(aud.to_owned());
        }
    }
    if out.is_empty() {
        out.push(issuer.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppType, GrantType};

    fn app(scopes: &[&str]) -> App {
        App {
            id: "a".into(),
            client_id: "c".into(),
            name: "n".into(),
            app_type: AppType::Trusted,
            active: true,
            secret_hash: None,
            secret_sealed: None,
            previous_secret: None,
            grant_types: vec![GrantType::Password],
            redirect_uris: vec![],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            app_roles: vec![],
            jwks: None,
            certificate: None,
            access_token_ttl: 3600,
            refresh_token_ttl: 3600,
            session_lifetime: None,
            refresh_token_reuse_interval: 30,
            created_at: 0,
            updated_at: 0,
            tokens_revoked_at: None,
        }
    }

    fn hr() -> ResourceServer {
        ResourceServer {
            id: "r".into(),
            name: "HR".into(),
            audience: "https://hr.example.com/".into(),
            scopes: vec!["employees.read".into(), "employees.write".into()],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn default_scope_excludes_offline_access_and_openid() {
        let a = app(&[
            "https://hr.example.com/employees.read",
            "offline_access",
            "openid",
            "email",
        ]);
        assert_eq!(
            resolve(&a, None).unwrap(),
            vec!["https://hr.example.com/employees.read", "email"]
        );
    }

    #[test]
    fn requesting_an_ungranted_scope_is_invalid_scope() {
        let a = app(&["https://hr.example.com/employees.read"]);
        let err = resolve(&a, Some("https://hr.example.com/employees.write")).unwrap_err();
        assert_eq!(err.kind.code(), "invalid_scope");
        assert_eq!(
            resolve(&a, Some("  https://hr.example.com/employees.read "))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn forbidden_characters_are_rejected() {
        assert!(parse("a\"b").is_err());
        assert!(parse("a\\b").is_err());
        assert!(parse("é").is_err());
        assert_eq!(parse("a a b").unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn refresh_narrows_never_widens() {
        let original = vec!["a".to_string(), "b".to_string()];
        assert_eq!(narrow(&original, Some("a")).unwrap(), vec!["a"]);
        assert_eq!(narrow(&original, None).unwrap(), original);
        assert!(narrow(&original, Some("a c")).is_err());
    }

    #[test]
    fn audiences_follow_resource_servers() {
        let servers = [hr()];
        let scopes = vec![
            "https://hr.example.com/employees.read".to_string(),
            "offline_access".to_string(),
        ];
        assert_eq!(
            audiences(&scopes, &servers, "https://iss"),
            vec!["https://hr.example.com/"]
        );
        assert_eq!(
            audiences(&["openid".into()], &servers, "https://iss"),
            vec!["https://iss"]
        );
        assert_eq!(
            audiences(&[MY_SCOPES.into()], &servers, "https://iss"),
            vec!["https://iss"]
        );
    }
}
