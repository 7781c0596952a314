//! What a first start creates: the `admin` user, and with `--demo` a demo
//! domain with ready-to-paste `curl` commands.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::model::AppRole;
use latchkey_core::password::Password;
use latchkey_core::secrets::random_token;
use latchkey_core::store::NewUser;

use crate::context::Context;

pub const ADMIN_USERNAME: &str = "admin";

/// What a start found or made of the first admin's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPassword {
    /// Generated now: printed this once.
    Generated(String),
    /// Generated at an earlier start and never changed since: it is not
    /// shown again, so every start says how to set a new one.
    GeneratedEarlier,
    /// Chosen by someone (`LATCHKEY_ADMIN_PASSWORD`, or changed since).
    Chosen,
}

impl AdminPassword {
    pub fn generated(&self) -> Option<&str> {
        match self {
            AdminPassword::Generated(password) => Some(password),
            _ => None,
        }
    }
}

/// Printed at every start while the generated password is unchanged.
pub fn unchanged_password_notice() -> String {
    format!(
        "The password generated for {ADMIN_USERNAME} at first start has never been changed, and is not shown again.\n\
         If it is lost, set a new one (printed once; or pipe one in with --password-stdin), with this server's database settings:\n  \
         latchkey user set-password {ADMIN_USERNAME}\n"
    )
}

/// Creates `admin` with the Identity Domain Administrator role when no
/// user holds that role; a generated password is remembered (by a digest
/// of its hash) so later starts can tell whether it was ever changed.
pub async fn ensure_admin(
    ctx: &Context,
    configured_password: Option<&str>,
) -> anyhow::Result<AdminPassword> {
    let users = &ctx.store.repos.users;
    if users
        .exists_with_role(AppRole::IdentityDomainAdministrator)
        .await?
    {
        return generated_earlier(ctx).await;
    }
    if users.find_by_username(ADMIN_USERNAME).await?.is_some() {
        tracing::warn!(
            "no user holds the Identity Domain Administrator role, and a user named admin exists without it"
        );
        return Ok(AdminPassword::Chosen);
    }
    let generated = configured_password.is_none().then(random_token);
    if let Some(configured) = configured_password {
        ctx.password_policy
            .check(configured)
            .map_err(|e| anyhow::anyhow!("LATCHKEY_ADMIN_PASSWORD: {e}"))?;
    }
    let password = configured_password
        .map(str::to_owned)
        .or(generated.clone())
        .expect("one of them is set");
    let hash = ctx
        .hasher
        .hash(&Password::new(password))
        .await
        .context("hashing the admin password")?;
    let digest = latchkey_core::secrets::sha256_hex(&hash);
    let created = users
        .create(
            NewUser {
                username: ADMIN_USERNAME.to_owned(),
                password_hash: Some(hash),
                given_name: None,
                family_name: Some("Administrator".to_owned()),
                email: None,
                app_roles: vec![AppRole::IdentityDomainAdministrator],
            },
            ctx.clock.now(),
        )
        .await;
    let admin = match created {
        Ok(admin) => admin,
        // Nodes starting together: another one created it first.
        Err(latchkey_core::store::StoreError::Conflict(_)) => {
            tracing::info!("another node created the admin user");
            return Ok(AdminPassword::Chosen);
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!("created the admin user");
    match generated {
        Some(password) => {
            users
                .remember_generated_password(&admin.id, &digest)
                .await
                .context("remembering that the admin password was generated")?;
            Ok(AdminPassword::Generated(password))
        }
        None => Ok(AdminPassword::Chosen),
    }
}

/// Whether `admin` still has the password generated at its first start.
async fn generated_earlier(ctx: &Context) -> anyhow::Result<AdminPassword> {
    let users = &ctx.store.repos.users;
    let Some(admin) = users.find_by_username(ADMIN_USERNAME).await? else {
        return Ok(AdminPassword::Chosen);
    };
    let unchanged = match (
        &admin.password_hash,
        users.generated_password_digest(&admin.id).await?,
    ) {
        (Some(hash), Some(digest)) => latchkey_core::secrets::sha256_hex(hash) == digest,
        _ => false,
    };
    Ok(if unchanged {
        AdminPassword::GeneratedEarlier
    } else {
        AdminPassword::Chosen
    })
}

/// Creates the built-in console app, or puts it back as it must be (its
/// secret, roles and lifetimes follow the master key and the console
/// settings). Idempotent: a start that finds it right changes nothing.
pub async fn ensure_console_app(
    ctx: &Context,
    policy: &latchkey_core::console::ConsolePolicy,
) -> anyhow::Result<()> {
    let file = latchkey_core::console::console_app_file(
        &latchkey_core::console::ConsoleKeys::new(&ctx.master),
        policy,
    );
    let domain = ctx.domain_service();
    match domain.apply(&file).await {
        Ok(_) => Ok(()),
        // Nodes starting together: another one created it first; applying
        // again finds it and settles any difference.
        Err(latchkey_core::domain::ApplyError::Store(
            latchkey_core::store::StoreError::Conflict(_),
        )) => {
            domain.apply(&file).await.context("the console app")?;
            Ok(())
        }
        Err(e) => Err(e).context("the console app"),
    }
}

/// No domain yet: nothing but the built-in console app.
async fn domain_is_empty(ctx: &Context) -> anyhow::Result<bool> {
    let repos = &ctx.store.repos;
    if repos.domain.is_empty().await? {
        return Ok(true);
    }
    Ok(repos.resource_servers.list().await?.is_empty()
        && repos
            .apps
            .list()
            .await?
            .iter()
            .all(|a| a.client_id == latchkey_core::console::CONSOLE_CLIENT_ID))
}

pub const DEMO_AUDIENCE: &str = "https://api.demo.latchkey/";
pub const DEMO_CLIENT_ID: &str = "demo-app";
pub const DEMO_USERNAME: &str = "demo.user";

/// Demo credentials, regenerated at each `--demo` start so the printed
/// commands always work (secrets are stored only as hashes and cannot be
/// shown again).
pub struct Demo {
    pub client_secret: String,
    pub password: String,
}

/// Seeds the demo domain on an empty database, or re-keys it when it is
/// already there. `None` when the database holds another domain.
pub async fn seed_demo(ctx: &Context) -> anyhow::Result<Option<Demo>> {
    let has_demo = ctx
        .store
        .repos
        .apps
        .find_by_client_id(DEMO_CLIENT_ID)
        .await?
        .is_some();
    if !has_demo && !domain_is_empty(ctx).await? {
        return Ok(None);
    }
    let demo = Demo {
        client_secret: random_token(),
        password: random_token(),
    };
    let file = format!(
        r#"
[[resource_servers]]
name = "Demo API"
audience = "{DEMO_AUDIENCE}"
scopes = ["read", "write"]

[[users]]
username = "{DEMO_USERNAME}"
password = "{password}"
given_name = "Demo"
family_name = "User"
email = "demo.user@example.com"

[[apps]]
name = "Demo App"
client_id = "{DEMO_CLIENT_ID}"
type = "trusted"
client_secret = "{secret}"
grant_types = ["password", "refresh_token"]
redirect_uris = ["http://localhost/callback"]
scopes = ["{DEMO_AUDIENCE}read", "{DEMO_AUDIENCE}write", "offline_access", "openid", "profile", "email"]
"#,
        password = demo.password,
        secret = demo.client_secret,
    );
    ctx.domain_service()
        .apply(&file)
        .await
        .context("seeding the demo domain")?;
    Ok(Some(demo))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn form_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, FORM).to_string()
}

/// The commands printed by `serve --demo`, in the exact form of Oracle's
/// documentation.
pub fn demo_instructions(issuer: &str, demo: &Demo) -> String {
    let basic = STANDARD.encode(format!(
        "{}:{}",
        form_encode(DEMO_CLIENT_ID),
        form_encode(&demo.client_secret)
    ));
    let scope = form_encode(&format!("{DEMO_AUDIENCE}read offline_access"));
    format!(
        "Demo domain ready: app {DEMO_CLIENT_ID}, user {DEMO_USERNAME} (credentials regenerated at each --demo start).\n\
         \n\
         # The web console (sign in as {ADMIN_USERNAME}):\n\
         {issuer}/console\n\
         \n\
         # Password grant (Oracle's example, verbatim form), with a refresh token:\n\
         curl -i -H 'Authorization: Basic {basic}' -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' --request POST {issuer}/oauth2/v1/token -d 'grant_type=password&username={DEMO_USERNAME}&password={password}&scope={scope}'\n\
         \n\
         # Refresh (paste the refresh_token from the answer above):\n\
         curl -i -H 'Authorization: Basic {basic}' -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' --request POST {issuer}/oauth2/v1/token -d 'grant_type=refresh_token&refresh_token=PASTE_REFRESH_TOKEN'\n\
         \n\
         # Keys and metadata:\n\
         curl {issuer}/oauth2/v1/keys\n\
         curl {issuer}/.well-known/oauth-authorization-server\n",
        password = demo.password,
    )
}
