//! Parsing and validating the domain file. Every error names the line and
//! the field; nothing is written unless the whole file is valid.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::app_input::{self, AppInput, TokenDefaults};
use super::entries::{GroupEntry, ResourceServerEntry, SigningKeyEntry, UserEntry};
use super::plan::{DomainPlan, GroupSpec, HashChange, ResourceServerSpec, UserSpec};
use crate::model::{AppRole, KeyState, ResourceServer, SigningKeyRecord};
use crate::password::is_supported_hash;
use crate::password_policy::PasswordPolicy;
use crate::scope;

/// An invalid domain file: where, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFileError {
    pub line: usize,
    /// e.g. `users[2].groups`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for DomainFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.field, self.message)
        }
    }
}

impl std::error::Error for DomainFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    resource_servers: Vec<Spanned<ResourceServerEntry>>,
    #[serde(default)]
    groups: Vec<Spanned<GroupEntry>>,
    #[serde(default)]
    users: Vec<Spanned<UserEntry>>,
    #[serde(default)]
    apps: Vec<Spanned<AppInput>>,
    #[serde(default)]
    signing_keys: Vec<Spanned<SigningKeyEntry>>,
}

/// The validated file: the plan, plus the plaintext secrets still to be
/// hashed (kept apart so the plan itself never holds one).
pub struct ParsedDomain {
    pub plan: DomainPlan,
    /// username → password.
    pub passwords: HashMap<String, String>,
    /// client_id → secret.
    pub client_secrets: HashMap<String, String>,
    pub warnings: Vec<String>,
}

/// The longest an access or ID token may live: a retiring signing key is
/// retired this long (plus clock skew) after it stopped signing.
pub const MAX_ACCESS_TTL_SECS: i64 = super::app_input::MAX_ACCESS_TTL;

struct Ctx<'a> {
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// An error in `field` of the entry at `span`: points at the line
    /// where the field is written, or at the entry when it is not.
    fn err(
        &self,
        span: &std::ops::Range<usize>,
        field: String,
        message: impl Into<String>,
    ) -> DomainFileError {
        let leaf = field.rsplit('.').next().unwrap_or_default();
        // The span of an array-of-tables entry covers only its `[[…]]`
        // header: the entry's keys follow, up to the next header.
        let body = self.text.get(span.end..).unwrap_or_default();
        let mut offset = span.end;
        let mut line_start = None;
        for line in body.split_inclusive('\n') {
            let rest = line.trim_start();
            if rest.starts_with('[') && offset != span.end {
                break;
            }
            if !leaf.is_empty()
                && rest
                    .strip_prefix(leaf)
                    .is_some_and(|after| after.trim_start().starts_with('='))
            {
                line_start = Some(offset);
                break;
            }
            offset += line.len();
        }
        DomainFileError {
            line: self.line_of(line_start.unwrap_or(span.start)),
            field,
            message: message.into(),
        }
    }
}

/// Parses and validates `text`. `known_groups` and `known_servers` are
/// what the database already holds, so a file may refer to them.
pub fn parse_domain_file(
    text: &str,
    known_groups: &[String],
    known_servers: &[ResourceServer],
    policy: &PasswordPolicy,
) -> Result<ParsedDomain, DomainFileError> {
    parse_domain_file_with(
        text,
        known_groups,
        known_servers,
        policy,
        TokenDefaults::default(),
    )
}

/// `parse_domain_file`, with the configured token lifetimes for apps that
/// name none.
pub fn parse_domain_file_with(
    text: &str,
    known_groups: &[String],
    known_servers: &[ResourceServer],
    policy: &PasswordPolicy,
    token_defaults: TokenDefaults,
) -> Result<ParsedDomain, DomainFileError> {
    let ctx = Ctx { text };
    let raw: RawFile = deserialize(text).map_err(|(e, field)| DomainFileError {
        line: e.span().map(|s| ctx.line_of(s.start)).unwrap_or(1),
        field,
        // The message alone: the toml crate's full rendering quotes the
        // offending line, which may hold a password.
        message: without_value(e.message().trim()),
    })?;

    let mut plan = DomainPlan::default();
    let mut passwords = HashMap::new();
    let mut client_secrets = HashMap::new();
    let mut warnings = Vec::new();

    // Resource servers.
    let mut servers: Vec<ResourceServer> = known_servers.to_vec();
    let mut audiences = HashSet::new();
    for (i, entry) in raw.resource_servers.iter().enumerate() {
        let span = entry.span();
        let rs = entry.get_ref();
        let field = |f: &str| format!("resource_servers[{i}].{f}");
        check_name(&ctx, &span, field("name"), &rs.name)?;
        check_name(&ctx, &span, field("audience"), &rs.audience)?;
        if !audiences.insert(rs.audience.clone()) {
            return Err(ctx.err(
                &span,
                field("audience"),
                format!("duplicate audience {:?}", rs.audience),
            ));
        }
        let mut seen = HashSet::new();
        for s in &rs.scopes {
            let fq = format!("{}{}", rs.audience, s);
            if s.is_empty() || scope::parse(&fq).map(|v| v.len() != 1).unwrap_or(true) {
                return Err(ctx.err(
                    &span,
                    field("scopes"),
                    format!("invalid scope {s:?} (no spaces, quotes or backslashes)"),
                ));
            }
            if !seen.insert(s) {
                return Err(ctx.err(&span, field("scopes"), format!("duplicate scope {s:?}")));
            }
        }
        servers.retain(|k| k.audience != rs.audience);
        servers.push(ResourceServer {
            id: String::new(),
            name: rs.name.clone(),
            audience: rs.audience.clone(),
            scopes: rs.scopes.clone(),
            created_at: 0,
            updated_at: 0,
        });
        plan.resource_servers.push(ResourceServerSpec {
            name: rs.name.clone(),
            audience: rs.audience.clone(),
            scopes: rs.scopes.clone(),
        });
    }

    // Groups.
    let mut group_names: HashSet<String> = known_groups.iter().cloned().collect();
    let mut file_groups = HashSet::new();
    let mut group_ids = HashSet::new();
    for (i, entry) in raw.groups.iter().enumerate() {
        let span = entry.span();
        let g = entry.get_ref();
        let field = |f: &str| format!("groups[{i}].{f}");
        check_name(&ctx, &span, field("name"), &g.name)?;
        if !file_groups.insert(g.name.clone()) {
            return Err(ctx.err(
                &span,
                field("name"),
                format!("duplicate group {:?}", g.name),
            ));
        }
        group_names.insert(g.name.clone());
        let id = checked_id(&ctx, &span, field("id"), &g.id, &mut group_ids)?;
        plan.groups.push(GroupSpec {
            id,
            name: g.name.clone(),
            app_roles: roles(&ctx, &span, field("app_roles"), &g.app_roles)?,
        });
    }

    // Users.
    let mut usernames = HashSet::new();
    let mut user_ids = HashSet::new();
    for (i, entry) in raw.users.iter().enumerate() {
        let span = entry.span();
        let u = entry.get_ref();
        let field = |f: &str| format!("users[{i}].{f}");
        check_name(&ctx, &span, field("username"), &u.username)?;
        if !usernames.insert(u.username.to_lowercase()) {
            return Err(ctx.err(
                &span,
                field("username"),
                format!("duplicate username {:?}", u.username),
            ));
        }
        let password = match (&u.password, &u.password_hash) {
            (Some(_), Some(_)) => {
                return Err(ctx.err(
                    &span,
                    field("password_hash"),
                    "give either password or password_hash, not both",
                ));
            }
            (Some(pw), None) => {
                policy
                    .check(pw)
                    .map_err(|m| ctx.err(&span, field("password"), m))?;
                passwords.insert(u.username.clone(), pw.clone());
                HashChange::Keep
            }
            (None, Some(hash)) => {
                // Keycloak's argon2 credential is stored as the PHC string
                // it amounts to, which the argon2 verifier reads natively.
                let hash = match crate::legacy_hash::keycloak_argon2_to_phc(hash) {
                    Some(converted) => {
                        &converted.map_err(|m| ctx.err(&span, field("password_hash"), m))?
                    }
                    None => hash,
                };
                if !is_supported_hash(hash) {
                    return Err(ctx.err(
                        &span,
                        field("password_hash"),
                        "unsupported hash format (expected argon2 $argon2id$/$argon2i$/$argon2d$, bcrypt $2a$/$2b$/$2y$, PBKDF2 pbkdf2_sha256$…, $pbkdf2-sha256$…, $pbkdf2-sha512$… or a Keycloak credential, or scrypt $scrypt$…)",
                    ));
                }
                HashChange::Set(hash.to_owned())
            }
            (None, None) => HashChange::Keep,
        };
        if let Some(email) = &u.email
            && (!email.contains('@') || email.chars().any(char::is_whitespace))
        {
            return Err(ctx.err(
                &span,
                field("email"),
                format!("invalid email address {email:?}"),
            ));
        }
        let mut groups = u.groups.clone();
        groups.sort();
        groups.dedup();
        if let Some(missing) = groups.iter().find(|g| !group_names.contains(*g)) {
            return Err(ctx.err(&span, field("groups"), format!("unknown group {missing:?}")));
        }
        let id = checked_id(&ctx, &span, field("id"), &u.id, &mut user_ids)?;
        for (name, value) in [
            ("display_name", &u.display_name),
            ("external_id", &u.external_id),
        ] {
            if let Some(value) = value {
                check_name(&ctx, &span, field(name), value)?;
            }
        }
        plan.users.push(UserSpec {
            id,
            username: u.username.clone(),
            password,
            given_name: u.given_name.clone(),
            family_name: u.family_name.clone(),
            email: u.email.clone(),
            active: u.active.unwrap_or(true),
            locked: u.locked,
            display_name: u.display_name.clone(),
            external_id: u.external_id.clone(),
            groups,
            app_roles: roles(&ctx, &span, field("app_roles"), &u.app_roles)?,
        });
    }

    // Apps.
    let mut client_ids = HashSet::new();
    let mut app_ids = HashSet::new();
    for (i, entry) in raw.apps.iter().enumerate() {
        let span = entry.span();
        let field = |f: &str| format!("apps[{i}].{f}");
        let app = entry
            .get_ref()
            .validate_with(&servers, token_defaults)
            .map_err(|e| ctx.err(&span, field(e.field), e.message))?;
        let client_id = app.spec.client_id.clone();
        if !client_ids.insert(client_id.clone()) {
            return Err(ctx.err(
                &span,
                field("client_id"),
                format!("duplicate client_id {client_id:?}"),
            ));
        }
        if let Some(id) = &app.spec.id
            && !app_ids.insert(id.clone())
        {
            return Err(ctx.err(&span, field("id"), format!("duplicate id {id:?}")));
        }
        if let Some(secret) = app.client_secret {
            client_secrets.insert(client_id, secret);
        }
        warnings.extend(app.warnings);
        plan.apps.push(app.spec);
    }

    // Signing keys.
    let mut kids = HashSet::new();
    for (i, entry) in raw.signing_keys.iter().enumerate() {
        let span = entry.span();
        let field = |f: &str| format!("signing_keys[{i}].{f}");
        let record = signing_key(entry.get_ref())
            .map_err(|(f, message)| ctx.err(&span, field(f), message))?;
        if !kids.insert(record.kid.clone()) {
            return Err(ctx.err(
                &span,
                field("kid"),
                format!("duplicate kid {:?}", record.kid),
            ));
        }
        for (state, message) in [
            (KeyState::Active, "only one signing key may be active"),
            (KeyState::Next, "only one signing key may be next"),
        ] {
            if record.state == state
                && plan
                    .signing_keys
                    .iter()
                    .any(|k: &SigningKeyRecord| k.state == state)
            {
                return Err(ctx.err(&span, field("state"), message));
            }
        }
        plan.signing_keys.push(record);
    }

    Ok(ParsedDomain {
        plan,
        passwords,
        client_secrets,
        warnings,
    })
}

/// An optional id: canonical UUID, unique among its kind in the file.
fn checked_id(
    ctx: &Ctx<'_>,
    span: &std::ops::Range<usize>,
    field: String,
    id: &Option<String>,
    seen: &mut HashSet<String>,
) -> Result<Option<String>, DomainFileError> {
    let Some(id) = id else { return Ok(None) };
    app_input::check_id("", id).map_err(|e| ctx.err(span, field.clone(), e.message))?;
    if !seen.insert(id.clone()) {
        return Err(ctx.err(span, field, format!("duplicate id {id:?}")));
    }
    Ok(Some(id.clone()))
}

/// A signing key entry, checked for form (whether it opens under this
/// master key is checked by `apply`, which holds the key).
fn signing_key(entry: &SigningKeyEntry) -> Result<SigningKeyRecord, (&'static str, String)> {
    use base64::Engine as _;
    if entry.kid.trim().is_empty() || entry.kid.chars().any(char::is_control) {
        return Err(("kid", "must not be empty or hold control characters".into()));
    }
    entry
        .alg
        .parse::<crate::keys::KeyAlgorithm>()
        .map_err(|e| ("alg", e))?;
    let state = KeyState::parse(&entry.state).ok_or_else(|| {
        (
            "state",
            format!(
                "unknown state {:?} (active, next, retiring or retired)",
                entry.state
            ),
        )
    })?;
    let jwk: serde_json::Value = serde_json::from_str(&entry.public_jwk)
        .map_err(|e| ("public_jwk", format!("not JSON: {e}")))?;
    if jwk.get("kid").and_then(|k| k.as_str()) != Some(entry.kid.as_str()) {
        return Err((
            "public_jwk",
            "its \"kid\" must equal the entry's kid".into(),
        ));
    }
    let encrypted = base64::engine::general_purpose::STANDARD
        .decode(&entry.encrypted_private_key)
        .map_err(|_| ("encrypted_private_key", "not base64".to_owned()))?;
    // Only the impossible combinations: keys made before retiring_at
    // existed are retiring without one.
    if state == KeyState::Active && entry.retiring_at.is_some() {
        return Err(("retiring_at", "not allowed for the active key".into()));
    }
    if state != KeyState::Retired && entry.retired_at.is_some() {
        return Err(("retired_at", "allowed only for a retired key".into()));
    }
    if state == KeyState::Next && entry.activates_at.is_none() {
        return Err(("activates_at", "required for the next key".into()));
    }
    if state == KeyState::Next && entry.retiring_at.is_some() {
        return Err(("retiring_at", "not allowed for the next key".into()));
    }
    Ok(SigningKeyRecord {
        kid: entry.kid.clone(),
        alg: entry.alg.clone(),
        encrypted_private_key: encrypted,
        public_jwk: entry.public_jwk.clone(),
        state,
        created_at: entry.created_at,
        activates_at: entry.activates_at,
        retiring_at: entry.retiring_at,
        retired_at: entry.retired_at,
    })
}

/// Deserializes the file, keeping where in it an error was found as a
/// field path (`users[2].active`): serde's own message names only the
/// expected type.
fn deserialize(text: &str) -> Result<RawFile, (toml::de::Error, String)> {
    let document = toml::Deserializer::parse(text).map_err(|e| (e, String::new()))?;
    serde_path_to_error::deserialize(document).map_err(|e| {
        let field = field_path(e.path());
        (e.into_inner(), field)
    })
}

/// `users[2].active` from serde's path, without the steps `Spanned`
/// adds (it reads each entry as a map of its span and its value).
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde's type errors repeat the value (`invalid type: integer
/// `12345678`, expected a string`), and that value may be a password
/// written without quotes: keep what kind of value it was, drop the value.
pub(super) fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        // Search from the right: the value may itself contain ", expected".
        let (unexpected, expected) = match rest.rfind(", expected ") {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let kind = unexpected
            .split(['`', '"'])
            .next()
            .unwrap_or_default()
            .trim_end();
        return format!("{prefix}{kind}{expected}");
    }
    message.to_owned()
}

fn check_name(
    ctx: &Ctx<'_>,
    span: &std::ops::Range<usize>,
    field: String,
    value: &str,
) -> Result<(), DomainFileError> {
    app_input::check_name("", value).map_err(|e| ctx.err(span, field, e.message))
}

fn roles(
    ctx: &Ctx<'_>,
    span: &std::ops::Range<usize>,
    field: String,
    names: &[String],
) -> Result<Vec<AppRole>, DomainFileError> {
    app_input::parse_roles("", names).map_err(|e| ctx.err(span, field, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[resource_servers]]
name = "HR API"
audience = "https://hr.example.com/"
scopes = ["employees.read", "employees.write"]

[[groups]]
name = "helpdesk"
app_roles = ["Help Desk Administrator"]

[[users]]
username = "alice"
password = "correct horse battery staple"
email = "alice@example.com"
groups = ["helpdesk"]
app_roles = ["User Administrator"]

[[apps]]
name = "HR Mobile"
type = "trusted"
client_secret = "0123456789abcdef0123"
grant_types = ["password", "refresh_token"]
redirect_uris = ["https://hr.example.com/callback"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
app_roles = ["User Administrator"]
access_token_ttl = "1h"
refresh_token_ttl = "7d"
"#;

    fn parse(text: &str) -> Result<ParsedDomain, DomainFileError> {
        parse_domain_file(text, &[], &[], &PasswordPolicy::default())
    }

    #[test]
    fn the_contract_example_parses() {
        let parsed = parse(GOOD).unwrap();
        assert_eq!(parsed.plan.apps[0].client_id, "hr-mobile");
        assert_eq!(parsed.plan.apps[0].refresh_token_ttl, 604_800);
        assert_eq!(parsed.passwords["alice"], "correct horse battery staple");
        assert_eq!(parsed.client_secrets["hr-mobile"], "0123456789abcdef0123");
        assert_eq!(
            parsed.plan.users[0].app_roles,
            vec![AppRole::UserAdministrator]
        );
    }

    fn error_for(replace: (&str, &str)) -> DomainFileError {
        let text = GOOD.replace(replace.0, replace.1);
        assert_ne!(text, GOOD, "replacement {replace:?} did not apply");
        parse(&text)
            .err()
            .unwrap_or_else(|| panic!("{replace:?} should be rejected"))
    }

    #[test]
    fn each_error_names_line_and_field() {
        let cases = [
            (
                ("groups = [\"helpdesk\"]", "groups = [\"nobody\"]"),
                15,
                "users[0].groups",
            ),
            (
                (
                    "app_roles = [\"Help Desk Administrator\"]",
                    "app_roles = [\"Boss\"]",
                ),
                9,
                "groups[0].app_roles",
            ),
            (
                ("type = \"trusted\"", "type = \"secret-agent\""),
                20,
                "apps[0].type",
            ),
            (
                ("employees.read\", \"offline_access\"", "employees.delete\""),
                24,
                "apps[0].scopes",
            ),
            (
                (
                    "https://hr.example.com/callback",
                    "http://hr.example.com/cb",
                ),
                23,
                "apps[0].redirect_uris",
            ),
            (
                ("refresh_token_ttl = \"7d\"", "refresh_token_ttl = \"7w\""),
                27,
                "apps[0].refresh_token_ttl",
            ),
            (
                ("\"0123456789abcdef0123\"", "\"short\""),
                21,
                "apps[0].client_secret",
            ),
            (("alice@example.com", "not-an-email"), 14, "users[0].email"),
        ];
        for (replace, line, field) in cases {
            let err = error_for(replace);
            assert_eq!(
                (err.line, err.field.as_str()),
                (line, field),
                "{replace:?}: {err}"
            );
        }
    }

    #[test]
    fn syntax_and_unknown_fields_name_the_line_without_quoting_it() {
        let err = error_for((
            "email = \"alice@example.com\"",
            "emial = \"alice@example.com\"",
        ));
        assert_eq!(err.line, 14);
        assert!(err.message.contains("emial"), "{err}");
        let err = error_for((
            "password = \"correct horse battery staple\"",
            "password = \"correct horse battery staple",
        ));
        assert_eq!(err.line, 13, "{err}");
        assert!(!err.to_string().contains("correct horse"), "{err}");
    }

    /// docs/domain-file.md promises the line and the field of a wrong type, and
    /// the value must not be repeated (it may be a password).
    #[test]
    fn type_errors_name_the_field_path_without_the_value() {
        let third_user = format!(
            "{GOOD}\n[[users]]\nusername = \"bob\"\n\n[[users]]\nusername = \"carol\"\nactive = \"yes\"\n"
        );
        let line = third_user
            .lines()
            .position(|l| l.starts_with("active"))
            .unwrap()
            + 1;
        let err = parse(&third_user).err().expect("a string is not a boolean");
        assert_eq!(
            (err.line, err.field.as_str()),
            (line, "users[2].active"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("line {line}: users[2].active: invalid type: string, expected a boolean")
        );
        let cases = [
            (
                ("username = \"alice\"", "username = 31337"),
                12,
                "users[0].username",
                "31337",
            ),
            (
                (
                    "scopes = [\"employees.read\", \"employees.write\"]",
                    "scopes = [\"employees.read\", 7]",
                ),
                5,
                "resource_servers[0].scopes[1]",
                "7",
            ),
            (
                ("access_token_ttl = \"1h\"", "access_token_ttl = true"),
                26,
                "apps[0].access_token_ttl",
                "true",
            ),
            (
                ("name = \"helpdesk\"", "name = [\"s3cr3t-value\"]"),
                8,
                "groups[0].name",
                "s3cr3t",
            ),
        ];
        for (replace, line, field, value) in cases {
            let err = error_for(replace);
            assert_eq!(
                (err.line, err.field.as_str()),
                (line, field),
                "{replace:?}: {err}"
            );
            assert!(!err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn passwords_follow_the_policy() {
        let err = error_for((
            "password = \"correct horse battery staple\"",
            "password = \"2short\"",
        ));
        assert_eq!((err.line, err.field.as_str()), (13, "users[0].password"));
        assert!(err.message.contains("at least 8"), "{err}");
        assert!(
            !err.to_string().contains("2short"),
            "the password is not echoed"
        );
    }

    #[test]
    fn role_and_type_rules() {
        let err = error_for(("type = \"trusted\"", "type = \"confidential\""));
        assert_eq!(err.field, "apps[0].app_roles");
        let err = error_for((
            "type = \"trusted\"\nclient_secret = \"0123456789abcdef0123\"",
            "type = \"public\"",
        ));
        assert_eq!(err.field, "apps[0].app_roles");
        let err = error_for((
            "password = \"correct horse battery staple\"",
            "password = \"x\"\npassword_hash = \"$2b$x\"",
        ));
        assert_eq!(err.field, "users[0].password_hash");
    }

    #[test]
    fn references_may_point_at_what_the_database_holds() {
        let text = "[[users]]\nusername = \"bob\"\ngroups = [\"ops\"]\n";
        assert!(parse(text).is_err());
        assert!(parse_domain_file(text, &["ops".into()], &[], &PasswordPolicy::default()).is_ok());
    }

    #[test]
    fn duplicate_natural_keys_are_rejected() {
        let text = "[[users]]\nusername = \"bob\"\n[[users]]\nusername = \"BOB\"\n";
        let err = parse(text).err().unwrap();
        assert_eq!((err.line, err.field.as_str()), (4, "users[1].username"));
    }

    const ID: &str = "0192d4e6-7b1c-7cc3-9a2e-3f5d8e1b2a40";

    #[test]
    fn ids_are_canonical_uuids_unique_per_kind() {
        let ok = format!(
            "[[groups]]\nid = \"{ID}\"\nname = \"ops\"\n[[users]]\nid = \"{ID}\"\nusername = \"bob\"\nlocked = true\ndisplay_name = \"Bob B.\"\nexternal_id = \"hr-42\"\n"
        );
        let parsed = parse(&ok).unwrap();
        assert_eq!(
            parsed.plan.users[0].id.as_deref(),
            Some(ID),
            "a group and a user may share an id"
        );
        assert_eq!(parsed.plan.users[0].locked, Some(true));
        assert_eq!(parsed.plan.users[0].display_name.as_deref(), Some("Bob B."));
        assert_eq!(parsed.plan.users[0].external_id.as_deref(), Some("hr-42"));
        let unset = parse("[[users]]\nusername = \"bob\"\n").unwrap();
        assert_eq!(
            unset.plan.users[0].locked, None,
            "absent: the stored lock is kept"
        );

        let upper = ok.replacen(ID, &ID.to_uppercase(), 1);
        let err = parse(&upper).err().unwrap();
        assert_eq!((err.line, err.field.as_str()), (2, "groups[0].id"));
        assert!(
            err.message.contains("not a UUID in canonical form"),
            "{err}"
        );
        let err = parse("[[users]]\nid = \"42\"\nusername = \"a\"\n")
            .err()
            .unwrap();
        assert_eq!(err.field, "users[0].id");
        let twice = format!(
            "[[users]]\nid = \"{ID}\"\nusername = \"a\"\n[[users]]\nid = \"{ID}\"\nusername = \"b\"\n"
        );
        let err = parse(&twice).err().unwrap();
        assert_eq!((err.line, err.field.as_str()), (5, "users[1].id"));
        assert!(err.message.contains("duplicate id"), "{err}");
        let apps = format!(
            "[[apps]]\nid = \"{ID}\"\nname = \"a\"\ntype = \"public\"\n[[apps]]\nid = \"{ID}\"\nname = \"b\"\ntype = \"public\"\n"
        );
        assert_eq!(parse(&apps).err().unwrap().field, "apps[1].id");
    }

    const HASH: &str = "hmac-sha256$eNV9tagvdd4OE0h67y_aWlN_T8_s4dWVfifKoudas8g";

    #[test]
    fn an_exported_secret_hash_is_taken_as_is() {
        let app = |extra: &str| format!("[[apps]]\nname = \"a\"\ntype = \"confidential\"\n{extra}");
        let parsed = parse(&app(&format!("client_secret_hash = \"{HASH}\"\n"))).unwrap();
        assert_eq!(parsed.plan.apps[0].secret, HashChange::Set(HASH.into()));
        assert!(parsed.client_secrets.is_empty());
        for (extra, field, message) in [
            (
                format!("client_secret_hash = \"{HASH}\"\nclient_secret = \"0123456789abcdef0\"\n"),
                "apps[0].client_secret_hash",
                "not both",
            ),
            (
                "client_secret_hash = \"hmac-sha256$short\"\n".to_owned(),
                "apps[0].client_secret_hash",
                "written by `latchkey export`",
            ),
            (
                format!("client_secret_hash = \"{HASH}\"\nclient_secret_jwt = true\n"),
                "apps[0].client_secret_sealed",
                "required",
            ),
            (
                "client_secret_sealed = \"c2VhbGVk\"\nclient_secret_jwt = true\n".to_owned(),
                "apps[0].client_secret_sealed",
                "only with client_secret_hash",
            ),
        ] {
            let err = parse(&app(&extra))
                .err()
                .unwrap_or_else(|| panic!("{extra} should fail"));
            assert_eq!(err.field, field, "{extra}: {err}");
            assert!(err.message.contains(message), "{extra}: {err}");
        }
        let public =
            format!("[[apps]]\nname = \"a\"\ntype = \"public\"\nclient_secret_hash = \"{HASH}\"\n");
        assert_eq!(
            parse(&public).err().unwrap().field,
            "apps[0].client_secret_hash"
        );
    }

    #[test]
    fn signing_key_entries_are_checked_for_form() {
        let key = |state: &str, extra: &str| {
            format!(
                "[[signing_keys]]\nkid = \"k1\"\nalg = \"ES256\"\nstate = \"{state}\"\ncreated_at = 1\npublic_jwk = '{{\"kid\":\"k1\",\"kty\":\"EC\"}}'\nencrypted_private_key = \"AAAA\"\n{extra}"
            )
        };
        let parsed = parse(&key("retiring", "retiring_at = 2\n")).unwrap();
        assert_eq!(parsed.plan.signing_keys[0].state, KeyState::Retiring);
        assert_eq!(
            parsed.plan.signing_keys[0].encrypted_private_key,
            vec![0, 0, 0]
        );
        let next = parse(&key("next", "activates_at = 301\n")).unwrap();
        assert_eq!(next.plan.signing_keys[0].state, KeyState::Next);
        assert_eq!(next.plan.signing_keys[0].activates_at, Some(301));
        for (text, field) in [
            (key("next", ""), "signing_keys[0].activates_at"),
            (
                key("next", "activates_at = 3\nretiring_at = 2\n"),
                "signing_keys[0].retiring_at",
            ),
            (
                format!(
                    "{}{}",
                    key("next", "activates_at = 3\n"),
                    key("next", "activates_at = 4\n").replace("k1", "k2")
                ),
                "signing_keys[1].state",
            ),
            (key("asleep", ""), "signing_keys[0].state"),
            (
                key("active", "retiring_at = 2\n"),
                "signing_keys[0].retiring_at",
            ),
            (
                key("retiring", "retired_at = 2\n"),
                "signing_keys[0].retired_at",
            ),
            (
                key("active", "").replace("ES256", "HS256"),
                "signing_keys[0].alg",
            ),
            (
                key("active", "").replace("\"kid\":\"k1\"", "\"kid\":\"k2\""),
                "signing_keys[0].public_jwk",
            ),
            (
                key("active", "").replace("\"AAAA\"", "\"not base64!\""),
                "signing_keys[0].encrypted_private_key",
            ),
            (
                format!(
                    "{}{}",
                    key("active", ""),
                    key("retired", "").replace("k1", "k2")
                )
                .replace("retired\"", "active\""),
                "signing_keys[1].state",
            ),
            (
                format!("{}{}", key("active", ""), key("retiring", "")),
                "signing_keys[1].kid",
            ),
        ] {
            let err = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{text} should fail"));
            assert_eq!(err.field, field, "{text}: {err}");
        }
    }

    #[test]
    fn a_keycloak_argon2_credential_is_stored_as_its_phc_string() {
        let credential = r#"{"type":"password","secretData":"{\"value\":\"/VqFvhfAZ0iizQpCGH4Pq08g5BKw2JxXFNTJ+OapkGw=\",\"salt\":\"ih8Dd8QZXiuQYdNKDrtyFg==\",\"additionalParameters\":{}}","credentialData":"{\"hashIterations\":5,\"algorithm\":\"argon2\",\"additionalParameters\":{\"hashLength\":[\"32\"],\"memory\":[\"7168\"],\"type\":[\"id\"],\"version\":[\"1.3\"],\"parallelism\":[\"1\"]}}"}"#;
        let parsed = parse(&format!(
            "[[users]]\nusername = \"carol\"\npassword_hash = '{credential}'\n"
        ))
        .unwrap();
        assert_eq!(
            parsed.plan.users[0].password,
            HashChange::Set("$argon2id$v=19$m=7168,t=5,p=1$ih8Dd8QZXiuQYdNKDrtyFg$/VqFvhfAZ0iizQpCGH4Pq08g5BKw2JxXFNTJ+OapkGw".into())
        );
        let broken = credential.replace("hashLength", "hashLen");
        let err = parse(&format!(
            "[[users]]\nusername = \"carol\"\npassword_hash = '{broken}'\n"
        ))
        .err()
        .unwrap();
        assert_eq!(
            (err.line, err.field.as_str()),
            (3, "users[0].password_hash")
        );
        assert!(err.message.contains("hashLength"), "{err}");
    }
}
