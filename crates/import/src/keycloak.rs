//! `latchkey import keycloak`: a Keycloak realm export (its
//! `RealmRepresentation` JSON) turned into a domain file, which `apply`
//! then validates and writes like any other. Whatever has no Latchkey
//! counterpart is listed, one line per item, in the report.
//!
//! Mapping: users (with their password credential: pbkdf2 as Keycloak's
//! credential JSON, argon2 as a PHC string), groups (nested groups by their
//! path), realm roles as groups of the same name (composites flattened, so
//! every holder of a role becomes a member of it and of what it includes),
//! clients as apps, client scopes as scopes of resource servers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use latchkey_core::domain::{
    AppInput, DomainFile, DurationInput, GroupEntry, MAX_ACCESS_TTL, MAX_REFRESH_TTL,
    MIN_CLIENT_SECRET_LEN, ResourceServerEntry, UserEntry, check_redirect_uri,
};
use latchkey_core::model::AppRole;
use latchkey_core::password::{is_supported_hash, keycloak_argon2_to_phc};
use latchkey_core::secrets::{MasterKey, SecretHasher};

/// Clients every Keycloak realm has; they administer Keycloak itself.
const BUILT_IN_CLIENTS: [&str; 6] = [
    "account",
    "account-console",
    "admin-cli",
    "broker",
    "realm-management",
    "security-admin-console",
];

/// Client scopes with a Latchkey counterpart of the same name.
const SPECIAL_SCOPES: [&str; 3] = ["profile", "email", "offline_access"];

/// Built-in client scopes that only shape Keycloak's tokens.
const SHAPING_SCOPES: [&str; 10] = [
    "roles",
    "web-origins",
    "acr",
    "basic",
    "microprofile-jwt",
    "address",
    "phone",
    "role_list",
    "organization",
    "saml_organization",
];

pub struct KeycloakOptions {
    /// Audience for client scopes without an audience mapper.
    pub audience: Option<String>,
}

pub struct KeycloakImport {
    pub file: DomainFile,
    /// What could not be mapped, one line each.
    pub unmapped: Vec<String>,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn flag(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    list(v, key)
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn attribute<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("attributes").and_then(|a| text(a, key))
}

/// Keycloak ids are UUIDs; keep them (a user's id becomes the `sub`).
fn canonical_id(id: Option<&str>) -> Option<String> {
    let id = id?;
    let parsed = uuid::Uuid::parse_str(id).ok()?;
    (parsed.hyphenated().to_string() == id).then(|| id.to_owned())
}

struct Importer<'a> {
    realm: String,
    unmapped: Vec<String>,
    secrets: &'a SecretHasher,
    master: &'a MasterKey,
    /// Client scope name → the Latchkey scope it became.
    scopes: BTreeMap<String, String>,
    /// Realm role → itself and the realm roles it includes.
    role_closure: BTreeMap<String, BTreeSet<String>>,
    /// Group path → the realm roles its members hold.
    group_roles: BTreeMap<String, Vec<String>>,
    /// Every group name written.
    groups: BTreeMap<String, GroupEntry>,
}

impl Importer<'_> {
    fn note(&mut self, line: String) {
        self.unmapped.push(line);
    }

    fn realm_settings(&mut self, realm: &Value) {
        for (key, what) in [
            ("identityProviders", "identity provider"),
            ("identityProviderMappers", "identity provider mapper"),
            ("authenticationFlows", "authentication flow"),
        ] {
            for item in list(realm, key) {
                if key == "authenticationFlows" && flag(item, "builtIn") == Some(true) {
                    continue;
                }
                let name = text(item, "alias")
                    .or_else(|| text(item, "name"))
                    .unwrap_or("?");
                self.note(format!(
                    "{what} {name:?}: not mapped (Latchkey signs users in only with a password)"
                ));
            }
        }
        if let Some(components) = realm.get("components").and_then(Value::as_object) {
            for (kind, items) in components {
                if kind.contains("UserStorageProvider") {
                    for item in items.as_array().into_iter().flatten() {
                        let name = text(item, "name").unwrap_or("?");
                        self.note(format!("user federation {name:?} ({}): not mapped; its users' passwords stay in that directory", text(item, "providerId").unwrap_or("?")));
                    }
                }
            }
        }
        if let Some(policy) = text(realm, "passwordPolicy") {
            self.note(format!("realm passwordPolicy {policy:?}: not mapped; set Latchkey's password policy in its configuration"));
        }
        if flag(realm, "bruteForceProtected") == Some(true) {
            self.note("realm brute-force detection settings: not mapped; Latchkey's throttle (configuration `lockout`) applies".into());
        }
        for action in list(realm, "requiredActions") {
            if flag(action, "enabled") == Some(true) && flag(action, "defaultAction") == Some(true)
            {
                let alias = text(action, "alias").unwrap_or("?");
                self.note(format!(
                    "required action {alias:?} (a default for new users): not mapped"
                ));
            }
        }
        if let Some(client_roles) = realm
            .get("roles")
            .and_then(|r| r.get("client"))
            .and_then(Value::as_object)
        {
            for (client, roles) in client_roles {
                if BUILT_IN_CLIENTS.contains(&client.as_str()) {
                    continue;
                }
                for role in roles.as_array().into_iter().flatten() {
                    let name = text(role, "name").unwrap_or("?");
                    self.note(format!(
                        "client role {client}/{name}: not mapped (Latchkey has no per-client roles)"
                    ));
                }
            }
        }
    }

    fn realm_roles(&mut self, realm: &Value) {
        let default_roles = format!("default-roles-{}", self.realm);
        let roles = realm
            .get("roles")
            .and_then(|r| r.get("realm"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut includes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for role in &roles {
            let Some(name) = text(role, "name") else {
                continue;
            };
            if name == default_roles || name == "offline_access" || name == "uma_authorization" {
                // Every user holds them: nothing to tell users apart by.
                continue;
            }
            let composites = role
                .get("composites")
                .map(|c| strings(c, "realm"))
                .unwrap_or_default();
            if role
                .get("composites")
                .and_then(|c| c.get("client"))
                .and_then(Value::as_object)
                .is_some_and(|c| !c.is_empty())
            {
                self.note(format!(
                    "realm role {name:?}: its client-role composites are not mapped"
                ));
            }
            includes.insert(name.to_owned(), composites);
            ids.insert(name.to_owned(), canonical_id(text(role, "id")));
        }
        let names: Vec<String> = includes.keys().cloned().collect();
        for name in names {
            let mut closure = BTreeSet::new();
            let mut todo = vec![name.clone()];
            while let Some(next) = todo.pop() {
                if includes.contains_key(&next) && closure.insert(next.clone()) {
                    todo.extend(includes[&next].iter().cloned());
                }
            }
            self.role_closure.insert(name.clone(), closure);
            // A realm role named like a Latchkey application role grants it.
            let app_roles = name
                .parse::<AppRole>()
                .map(|r| vec![r.as_str().to_owned()])
                .unwrap_or_default();
            self.groups.insert(
                name.clone(),
                GroupEntry {
                    // The role's id: re-importing the realm finds the same group.
                    id: ids.get(&name).cloned().flatten(),
                    name: name.clone(),
                    app_roles,
                },
            );
        }
    }

    fn roles_of(&self, names: &[String]) -> BTreeSet<String> {
        names
            .iter()
            .filter_map(|n| self.role_closure.get(n))
            .flatten()
            .cloned()
            .collect()
    }

    fn keycloak_groups(&mut self, groups: &[Value], parent: &str) {
        for group in groups {
            let Some(name) = text(group, "name") else {
                continue;
            };
            let path = if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}/{name}")
            };
            let mut roles = strings(group, "realmRoles");
            if let Some(parent_roles) = self.group_roles.get(parent) {
                // Keycloak: members of a subgroup hold its parent's roles.
                roles.extend(parent_roles.clone());
            }
            if group
                .get("clientRoles")
                .and_then(Value::as_object)
                .is_some_and(|c| !c.is_empty())
            {
                self.note(format!("group {path:?}: client roles not mapped"));
            }
            if group
                .get("attributes")
                .and_then(Value::as_object)
                .is_some_and(|a| !a.is_empty())
            {
                self.note(format!("group {path:?}: attributes not mapped"));
            }
            if self.groups.contains_key(&path) {
                self.note(format!("group {path:?}: a realm role has the same name; the two are merged into one group"));
            }
            self.groups.entry(path.clone()).or_insert(GroupEntry {
                id: canonical_id(text(group, "id")),
                name: path.clone(),
                app_roles: Vec::new(),
            });
            self.group_roles.insert(path.clone(), roles);
            self.keycloak_groups(list(group, "subGroups"), &path);
        }
    }

    fn client_scopes(&mut self, realm: &Value, audience: &str) -> Vec<ResourceServerEntry> {
        let mut servers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for scope in list(realm, "clientScopes") {
            let Some(name) = text(scope, "name") else {
                continue;
            };
            if text(scope, "protocol").is_some_and(|p| p != "openid-connect") {
                self.note(format!(
                    "client scope {name:?}: protocol {} not mapped",
                    text(scope, "protocol").unwrap_or("?")
                ));
                continue;
            }
            if SPECIAL_SCOPES.contains(&name) {
                self.scopes.insert(name.to_owned(), name.to_owned());
                continue;
            }
            if SHAPING_SCOPES.contains(&name) {
                self.note(format!(
                    "client scope {name:?}: shapes Keycloak's tokens only; no Latchkey counterpart"
                ));
                continue;
            }
            // The audience a scope's audience mapper adds, if any.
            let mapped = list(scope, "protocolMappers").iter().find_map(|m| {
                (text(m, "protocolMapper") == Some("oidc-audience-mapper"))
                    .then(|| {
                        m.get("config").and_then(|c| {
                            text(c, "included.custom.audience")
                                .or_else(|| text(c, "included.client.audience"))
                        })
                    })
                    .flatten()
            });
            for mapper in list(scope, "protocolMappers") {
                if text(mapper, "protocolMapper") != Some("oidc-audience-mapper") {
                    let mapper_name = text(mapper, "name").unwrap_or("?");
                    self.note(format!(
                        "client scope {name:?}: protocol mapper {mapper_name:?} not mapped"
                    ));
                }
            }
            let audience = match mapped {
                Some(a) if a.ends_with('/') || a.ends_with(':') => a.to_owned(),
                Some(a) => format!("{a}/"),
                None => {
                    self.note(format!("client scope {name:?}: no audience mapper, so it became {audience}{name} (choose the audience with --audience)"));
                    audience.to_owned()
                }
            };
            self.scopes
                .insert(name.to_owned(), format!("{audience}{name}"));
            servers.entry(audience).or_default().push(name.to_owned());
        }
        servers
            .into_iter()
            .map(|(audience, scopes)| ResourceServerEntry {
                name: audience.trim_end_matches(['/', ':']).to_owned(),
                audience,
                scopes,
            })
            .collect()
    }

    fn user(&mut self, user: &Value) -> Option<UserEntry> {
        let username = text(user, "username")?.to_owned();
        let who = format!("user {username:?}");
        if let Some(client) = text(user, "serviceAccountClientId") {
            self.note(format!("{who}: service account of client {client:?}, not imported (client_credentials needs no user)"));
            return None;
        }
        if text(user, "federationLink").is_some() {
            self.note(format!(
                "{who}: federated from a user storage provider; its password is not in the export"
            ));
        }
        let mut password_hash = None;
        for credential in list(user, "credentials") {
            let kind = text(credential, "type").unwrap_or("?");
            if kind != "password" {
                self.note(format!("{who}: {kind} credential not mapped"));
                continue;
            }
            if password_hash.is_some() {
                self.note(format!(
                    "{who}: a second password credential, ignored (the first is kept)"
                ));
                continue;
            }
            match password_credential(credential) {
                Ok(hash) => password_hash = Some(hash),
                Err(why) => self.note(format!(
                    "{who}: password credential not imported: {why}; the user needs a new password"
                )),
            }
        }
        if password_hash.is_none()
            && list(user, "credentials")
                .iter()
                .all(|c| text(c, "type") != Some("password"))
        {
            self.note(format!(
                "{who}: no password credential; the user cannot sign in until given a password"
            ));
        }
        for action in strings(user, "requiredActions") {
            self.note(format!("{who}: required action {action:?} not mapped"));
        }
        if let Some(attributes) = user.get("attributes").and_then(Value::as_object) {
            for key in attributes.keys() {
                self.note(format!("{who}: attribute {key:?} not mapped"));
            }
        }
        if user
            .get("clientRoles")
            .and_then(Value::as_object)
            .is_some_and(|c| {
                c.iter().any(|(client, roles)| {
                    !BUILT_IN_CLIENTS.contains(&client.as_str())
                        && roles.as_array().is_some_and(|r| !r.is_empty())
                })
            })
        {
            self.note(format!("{who}: client roles not mapped"));
        }
        for link in list(user, "federatedIdentities") {
            let provider = text(link, "identityProvider").unwrap_or("?");
            self.note(format!(
                "{who}: link to identity provider {provider:?} not mapped"
            ));
        }
        if flag(user, "totp") == Some(true) {
            self.note(format!("{who}: TOTP enrolment not mapped"));
        }

        let keycloak_groups: Vec<String> = strings(user, "groups")
            .into_iter()
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect();
        let mut roles = strings(user, "realmRoles");
        for group in &keycloak_groups {
            if !self.groups.contains_key(group) {
                self.note(format!("{who}: member of unknown group {group:?}, ignored"));
                continue;
            }
            roles.extend(self.group_roles.get(group).cloned().unwrap_or_default());
        }
        let mut groups: BTreeSet<String> = keycloak_groups
            .into_iter()
            .filter(|g| self.groups.contains_key(g))
            .collect();
        groups.extend(self.roles_of(&roles));

        let email = text(user, "email")
            .filter(|e| e.contains('@') && !e.chars().any(char::is_whitespace))
            .map(str::to_owned);
        if email.is_none()
            && let Some(bad) = text(user, "email")
        {
            self.note(format!(
                "{who}: email {bad:?} is not an address, not imported"
            ));
        }
        let id = canonical_id(text(user, "id"));
        if id.is_none()
            && let Some(raw) = text(user, "id")
        {
            self.note(format!(
                "{who}: id {raw:?} is not a UUID; a new id is assigned (tokens get a new sub)"
            ));
        }
        Some(UserEntry {
            id,
            username,
            password: None,
            password_hash,
            given_name: text(user, "firstName").map(str::to_owned),
            family_name: text(user, "lastName").map(str::to_owned),
            display_name: None,
            external_id: None,
            email,
            active: Some(flag(user, "enabled").unwrap_or(true)),
            locked: None,
            groups: groups.into_iter().collect(),
            app_roles: Vec::new(),
        })
    }

    fn client(&mut self, client: &Value, ttls: (Option<i64>, Option<i64>)) -> Option<AppInput> {
        let client_id = text(client, "clientId")?.to_owned();
        let who = format!("client {client_id:?}");
        if BUILT_IN_CLIENTS.contains(&client_id.as_str())
            || client_id == format!("{}-realm", self.realm)
        {
            return None;
        }
        if text(client, "protocol").is_some_and(|p| p != "openid-connect") {
            self.note(format!(
                "{who}: protocol {} not mapped",
                text(client, "protocol").unwrap_or("?")
            ));
            return None;
        }
        if flag(client, "bearerOnly") == Some(true) {
            self.note(format!("{who}: bearer-only (a resource server in Keycloak), not imported as an app; give it a [[resource_servers]] entry"));
            return None;
        }
        let public = flag(client, "publicClient") == Some(true);
        let mut grants = Vec::new();
        if flag(client, "directAccessGrantsEnabled") == Some(true) {
            grants.push("password".to_owned());
            if attribute(client, "use.refresh.tokens") != Some("false") {
                grants.push("refresh_token".to_owned());
            }
        }
        if !public && flag(client, "serviceAccountsEnabled") == Some(true) {
            grants.push("client_credentials".to_owned());
        }
        let mut unsupported = Vec::new();
        if flag(client, "standardFlowEnabled") != Some(false) {
            unsupported.push("authorization code (standardFlowEnabled)");
        }
        if flag(client, "implicitFlowEnabled") == Some(true) {
            unsupported.push("implicit (implicitFlowEnabled)");
        }
        if attribute(client, "oauth2.device.authorization.grant.enabled") == Some("true") {
            unsupported.push("device authorization");
        }
        if attribute(client, "oidc.ciba.grant.enabled") == Some("true") {
            unsupported.push("CIBA");
        }
        if grants.is_empty() {
            self.note(format!(
                "{who}: only {} flows, which Latchkey does not offer; not imported",
                if unsupported.is_empty() {
                    "no".to_owned()
                } else {
                    unsupported.join(", ")
                }
            ));
            return None;
        }
        for flow in unsupported {
            self.note(format!(
                "{who}: {flow} flow not mapped (the app keeps its other grants)"
            ));
        }
        for mapper in list(client, "protocolMappers") {
            let name = text(mapper, "name").unwrap_or("?");
            self.note(format!("{who}: protocol mapper {name:?} not mapped"));
        }

        let mut input = AppInput {
            id: canonical_id(text(client, "id")),
            name: text(client, "name")
                .filter(|n| !n.is_empty() && !n.starts_with("${"))
                .unwrap_or(&client_id)
                .to_owned(),
            client_id: Some(client_id.clone()),
            app_type: if public { "public" } else { "confidential" }.to_owned(),
            grant_types: Some(grants),
            active: Some(flag(client, "enabled").unwrap_or(true)),
            ..AppInput::default()
        };

        if !public {
            let authenticator = text(client, "clientAuthenticatorType").unwrap_or("client-secret");
            match authenticator {
                "client-secret" | "client-secret-jwt" => {
                    let jwt = authenticator == "client-secret-jwt";
                    match text(client, "secret") {
                        Some(secret) if secret.chars().count() >= MIN_CLIENT_SECRET_LEN => {
                            // Hashed here: the domain file never holds the plaintext.
                            input.client_secret_hash = Some(self.secrets.hash(secret));
                            if jwt {
                                input.client_secret_jwt = Some(true);
                                input.client_secret_sealed = Some(self.master.seal_client_secret(&client_id, secret));
                            }
                        }
                        Some(_) => self.note(format!("{who}: secret shorter than {MIN_CLIENT_SECRET_LEN} characters, not imported; a new one is generated and printed")),
                        None => self.note(format!("{who}: no secret in the export (exported without secrets?); a new one is generated and printed")),
                    }
                }
                "client-jwt" => {
                    input.app_type = "trusted".into();
                    if let Some(jwks) = attribute(client, "jwks.string").filter(|_| attribute(client, "use.jwks.string") == Some("true")) {
                        input.jwks = Some(jwks.to_owned());
                    } else if let Some(cert) = attribute(client, "jwt.credential.certificate") {
                        input.certificate = Some(pem_certificate(cert));
                    } else if let Some(url) = attribute(client, "jwks.url") {
                        self.note(format!("{who}: keys at jwks.url {url:?} not mapped (register its JWKS in the domain file)"));
                    }
                }
                other => self.note(format!("{who}: client authenticator {other:?} not mapped; a secret is generated and printed")),
            }
        }

        let mut redirects = Vec::new();
        for uri in strings(client, "redirectUris") {
            match check_redirect_uri(&uri) {
                Ok(()) => redirects.push(uri),
                Err(why) => self.note(format!("{who}: redirect URI dropped: {why}")),
            }
        }
        input.redirect_uris = redirects;

        let mut scopes = vec!["openid".to_owned()];
        for name in strings(client, "defaultClientScopes")
            .into_iter()
            .chain(strings(client, "optionalClientScopes"))
        {
            if let Some(mapped) = self.scopes.get(&name)
                && !scopes.contains(mapped)
            {
                scopes.push(mapped.clone());
            }
        }
        input.scopes = scopes;

        let lifespan = attribute(client, "access.token.lifespan")
            .and_then(|s| s.parse::<i64>().ok())
            .or(ttls.0);
        if let Some(seconds) = lifespan {
            if (1..=MAX_ACCESS_TTL).contains(&seconds) {
                input.access_token_ttl = Some(DurationInput::Seconds(seconds));
            } else {
                self.note(format!(
                    "{who}: access token lifespan {seconds}s out of range, the default applies"
                ));
            }
        }
        if let Some(seconds) = ttls.1.filter(|s| (1..=MAX_REFRESH_TTL).contains(s)) {
            input.refresh_token_ttl = Some(DurationInput::Seconds(seconds));
        }
        Some(input)
    }
}

/// Keycloak keeps a client's certificate as bare base64 DER.
fn pem_certificate(base64_der: &str) -> String {
    if base64_der.contains("-----BEGIN") {
        return base64_der.to_owned();
    }
    let body: String = base64_der.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A password credential as a `password_hash` Latchkey verifies: argon2
/// as its PHC string, pbkdf2 as the compact credential JSON.
fn password_credential(credential: &Value) -> Result<String, String> {
    let (Some(secret), Some(data)) = (
        text(credential, "secretData"),
        text(credential, "credentialData"),
    ) else {
        if credential.get("hashedSaltedValue").is_some() {
            return Err("the pre-Keycloak-11 credential format (hashedSaltedValue); export from Keycloak 11 or later".into());
        }
        return Err("no secretData/credentialData".into());
    };
    let compact = serde_json::json!({"secretData": secret, "credentialData": data}).to_string();
    if let Some(phc) = keycloak_argon2_to_phc(&compact) {
        return phc;
    }
    if is_supported_hash(&compact) {
        Ok(compact)
    } else {
        let algorithm = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|d| text(&d, "algorithm").map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        Err(format!(
            "algorithm {algorithm:?} is not supported (pbkdf2, pbkdf2-sha256, pbkdf2-sha512 and argon2 are)"
        ))
    }
}

/// Converts a realm export. Fails only when the text is not a realm.
pub fn import_keycloak(
    text_in: &str,
    options: &KeycloakOptions,
    secrets: &SecretHasher,
    master: &MasterKey,
) -> Result<KeycloakImport, String> {
    let realm: Value = serde_json::from_str(text_in).map_err(|e| format!("not JSON: {e}"))?;
    let name = text(&realm, "realm")
        .ok_or("not a Keycloak realm export (no \"realm\" field)")?
        .to_owned();
    let mut importer = Importer {
        realm: name.clone(),
        unmapped: Vec::new(),
        secrets,
        master,
        scopes: BTreeMap::new(),
        role_closure: BTreeMap::new(),
        group_roles: BTreeMap::new(),
        groups: BTreeMap::new(),
    };
    let audience = options
        .audience
        .clone()
        .unwrap_or_else(|| format!("urn:keycloak:{name}:"));
    importer.realm_settings(&realm);
    importer.realm_roles(&realm);
    importer.keycloak_groups(list(&realm, "groups"), "");
    let mut file = DomainFile {
        resource_servers: importer.client_scopes(&realm, &audience),
        ..DomainFile::default()
    };
    let ttls = (
        realm.get("accessTokenLifespan").and_then(Value::as_i64),
        realm
            .get("offlineSessionIdleTimeout")
            .and_then(Value::as_i64),
    );
    for client in list(&realm, "clients") {
        if let Some(app) = importer.client(client, ttls) {
            file.apps.push(app);
        }
    }
    for user in list(&realm, "users") {
        if let Some(user) = importer.user(user) {
            file.users.push(user);
        }
    }
    file.groups = importer.groups.into_values().collect();
    file.users.sort_by_key(|u| u.username.to_lowercase());
    file.apps.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(KeycloakImport {
        file,
        unmapped: importer.unmapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = include_str!("../../testkit/tests/fixtures/keycloak-realm-acme.json");

    fn import() -> (KeycloakImport, MasterKey) {
        let master = MasterKey::generate();
        let options = KeycloakOptions { audience: None };
        let imported = import_keycloak(REALM, &options, &master.secret_hasher(), &master).unwrap();
        (imported, master)
    }

    #[test]
    fn users_keep_their_ids_and_hashes_and_roles_become_groups() {
        let (imported, _) = import();
        let file = &imported.file;
        let names: Vec<&str> = file.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(
            names,
            ["alice", "bob", "carol", "dave"],
            "no service account"
        );
        let alice = &file.users[0];
        assert_eq!(
            alice.id.as_deref(),
            Some("4c7e1a2b-9f3d-4e5a-8b6c-0d1e2f3a4b5c")
        );
        // hr-editor includes hr-viewer; helpdesk's members hold hr-viewer.
        assert_eq!(alice.groups, ["hr-editor", "hr-viewer", "staff/helpdesk"]);
        assert!(
            alice
                .password_hash
                .as_deref()
                .unwrap()
                .contains("pbkdf2-sha256")
        );
        assert!(
            file.users[2]
                .password_hash
                .as_deref()
                .unwrap()
                .starts_with("$argon2id$v=19$m=7168,t=5,p=1$")
        );
        assert_eq!(file.users[3].active, Some(false));
        assert_eq!(file.users[3].password_hash, None);
        let group = |name: &str| file.groups.iter().find(|g| g.name == name).unwrap();
        assert_eq!(
            group("User Administrator").app_roles,
            ["User Administrator"]
        );
        assert_eq!(
            group("staff").id.as_deref(),
            Some("1e0c2f9a-5d1b-4a6c-a9e4-7f8a3b0d6c19")
        );
        assert_eq!(
            group("hr-viewer").id.as_deref(),
            Some("4e7c6f3a-9d5b-4a0c-83e8-1f2a7b4d0c53")
        );
        assert!(
            !file
                .groups
                .iter()
                .any(|g| g.name.starts_with("default-roles"))
        );
    }

    #[test]
    fn clients_become_apps_with_hashed_secrets() {
        let (imported, master) = import();
        let apps = &imported.file.apps;
        let ids: Vec<&str> = apps
            .iter()
            .map(|a| a.client_id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["hr-cli", "hr-mobile", "reporting"]);
        let (cli, mobile, reporting) = (&apps[0], &apps[1], &apps[2]);
        assert_eq!(cli.app_type, "public");
        assert_eq!(
            cli.grant_types.as_deref().unwrap(),
            ["password"],
            "use.refresh.tokens = false"
        );
        assert_eq!(
            mobile.grant_types.as_deref().unwrap(),
            ["password", "refresh_token"]
        );
        assert_eq!(
            mobile.scopes,
            [
                "openid",
                "profile",
                "email",
                "https://hr.acme.example/employees.read",
                "offline_access",
                "urn:keycloak:acme:employees.write"
            ]
        );
        assert_eq!(mobile.redirect_uris, ["https://hr.acme.example/callback"]);
        assert_eq!(
            mobile.access_token_ttl,
            Some(DurationInput::Seconds(600)),
            "the client's own lifespan"
        );
        assert_eq!(
            cli.access_token_ttl,
            Some(DurationInput::Seconds(300)),
            "the realm's"
        );
        let hasher = master.secret_hasher();
        assert!(hasher.verify(
            "hr-mobile-kc-secret-0123456789",
            mobile.client_secret_hash.as_deref().unwrap()
        ));
        assert!(mobile.client_secret.is_none(), "no plaintext in the file");
        assert!(
            !imported.file.to_toml().contains("kc-secret"),
            "no plaintext in the file"
        );
        assert_eq!(
            reporting.grant_types.as_deref().unwrap(),
            ["client_credentials"]
        );
        assert_eq!(reporting.client_secret_jwt, Some(true));
        let sealed = reporting.client_secret_sealed.as_deref().unwrap();
        assert_eq!(
            master.open_client_secret("reporting", sealed).unwrap(),
            "reporting-kc-secret-abcdefghijkl"
        );
        let servers: Vec<(&str, &[String])> = imported
            .file
            .resource_servers
            .iter()
            .map(|r| (r.audience.as_str(), r.scopes.as_slice()))
            .collect();
        assert_eq!(
            servers,
            [
                (
                    "https://hr.acme.example/",
                    &["employees.read".to_owned()][..]
                ),
                ("urn:keycloak:acme:", &["employees.write".to_owned()][..])
            ]
        );
    }

    #[test]
    fn everything_unmapped_is_reported_once_and_precisely() {
        let (imported, _) = import();
        let expected = [
            "identity provider \"google\": not mapped (Latchkey signs users in only with a password)",
            "authentication flow \"browser with otp\": not mapped (Latchkey signs users in only with a password)",
            "user federation \"corp-ldap\" (ldap): not mapped; its users' passwords stay in that directory",
            "realm passwordPolicy \"length(12) and notUsername(undefined)\": not mapped; set Latchkey's password policy in its configuration",
            "realm brute-force detection settings: not mapped; Latchkey's throttle (configuration `lockout`) applies",
            "required action \"CONFIGURE_TOTP\" (a default for new users): not mapped",
            "client role hr-api/writer: not mapped (Latchkey has no per-client roles)",
            "realm role \"hr-editor\": its client-role composites are not mapped",
            "group \"staff\": attributes not mapped",
            "group \"staff/helpdesk\": client roles not mapped",
            "client scope \"roles\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"web-origins\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"acr\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"basic\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"address\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"phone\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"microprofile-jwt\": shapes Keycloak's tokens only; no Latchkey counterpart",
            "client scope \"saml_organization\": protocol saml not mapped",
            "client scope \"employees.write\": no audience mapper, so it became urn:keycloak:acme:employees.write (choose the audience with --audience)",
            "client \"hr-mobile\": protocol mapper \"department\" not mapped",
            "client \"hr-mobile\": redirect URI dropped: \"/*\" is not an absolute URI: relative URL without a base",
            "client \"hr-web\": only authorization code (standardFlowEnabled) flows, which Latchkey does not offer; not imported",
            "client \"hr-api\": bearer-only (a resource server in Keycloak), not imported as an app; give it a [[resource_servers]] entry",
            "client \"hr-cli\": authorization code (standardFlowEnabled) flow not mapped (the app keeps its other grants)",
            "client \"https://intranet.acme.example/saml\": protocol saml not mapped",
            "user \"alice\": otp credential not mapped",
            "user \"alice\": attribute \"department\" not mapped",
            "user \"bob\": required action \"UPDATE_PASSWORD\" not mapped",
            "user \"dave\": no password credential; the user cannot sign in until given a password",
            "user \"dave\": link to identity provider \"google\" not mapped",
            "user \"service-account-reporting\": service account of client \"reporting\", not imported (client_credentials needs no user)",
        ];
        assert_eq!(imported.unmapped, expected);
    }

    #[test]
    fn what_is_not_a_realm_is_refused() {
        let master = MasterKey::generate();
        let options = KeycloakOptions { audience: None };
        let run = |text: &str| {
            import_keycloak(text, &options, &master.secret_hasher(), &master)
                .err()
                .unwrap()
        };
        assert!(run("{").starts_with("not JSON"));
        assert!(run("{\"users\": []}").contains("no \"realm\" field"));
    }

    #[test]
    fn unsupported_credentials_are_reported_not_guessed() {
        let master = MasterKey::generate();
        let realm = r#"{"realm": "r", "users": [
            {"username": "old", "credentials": [{"type": "password", "hashedSaltedValue": "x", "salt": "y", "hashIterations": 1}]},
            {"username": "md5", "id": "not-a-uuid", "credentials": [{"type": "password", "secretData": "{\"value\":\"eA==\",\"salt\":\"eQ==\"}", "credentialData": "{\"hashIterations\":1,\"algorithm\":\"md5\"}"}]}
        ]}"#;
        let imported = import_keycloak(
            realm,
            &KeycloakOptions {
                audience: Some("https://api.r/".into()),
            },
            &master.secret_hasher(),
            &master,
        )
        .unwrap();
        assert_eq!(imported.file.users.len(), 2);
        assert!(
            imported
                .file
                .users
                .iter()
                .all(|u| u.password_hash.is_none() && u.id.is_none())
        );
        assert_eq!(
            imported.unmapped,
            [
                "user \"old\": password credential not imported: the pre-Keycloak-11 credential format (hashedSaltedValue); export from Keycloak 11 or later; the user needs a new password",
                "user \"md5\": password credential not imported: algorithm \"md5\" is not supported (pbkdf2, pbkdf2-sha256, pbkdf2-sha512 and argon2 are); the user needs a new password",
                "user \"md5\": id \"not-a-uuid\" is not a UUID; a new id is assigned (tokens get a new sub)",
            ]
        );
    }
}
