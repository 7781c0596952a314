//! The command line (docs/cli.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An OAuth 2.0 authorization server for the password grant"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "LATCHKEY_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Where the database is, shared by every command.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: sqlite://PATH (default sqlite://latchkey-data/latchkey.db) or postgres://…
    #[arg(long, env = "LATCHKEY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Master key (base64 of 32 bytes) that encrypts signing keys at rest.
    #[arg(
        long = "master-key",
        env = "LATCHKEY_MASTER_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub master_key: Option<String>,
    /// Set any option of the configuration file, above the file and the
    /// environment: `--set lockout.pair_threshold=10` (repeatable).
    #[arg(long = "set", value_name = "OPTION=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Check the configuration, or print a commented example.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply a domain file: create what is missing, update what differs.
    Apply {
        /// The domain file (TOML).
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write the whole domain as a domain file (stdout), for `apply`.
    Export {
        /// Also export the signing keys, still encrypted under the master
        /// key: importing them needs the same master key.
        #[arg(long)]
        include_keys: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Import a domain from another system.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage groups and their members (members hold the group's roles).
    Group {
        #[command(subcommand)]
        command: GroupCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Read the audit trail, newest first.
    Audit {
        /// Only this event type (e.g. user.signin, user.locked).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only events about this subject (a user id or name, a group id).
        #[arg(long)]
        subject: Option<String>,
        /// Only refused sign-ins of this username that names no user
        /// (recorded as a keyed hash, never as typed).
        #[arg(long, conflicts_with = "subject")]
        unknown_user: Option<String>,
        /// Only events of the last DURATION (e.g. 24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        count: u32,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a Keycloak realm export (JSON): users with their password
    /// hashes, groups, clients, client scopes, realm roles as groups. What
    /// cannot be mapped is reported on stderr.
    Keycloak {
        /// The realm export (`kc.sh export --realm …` or the admin console's partial export).
        file: PathBuf,
        /// Write the domain file here instead of applying it.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Audience of the resource server that receives client scopes
        /// without an audience mapper (default: urn:keycloak:REALM:).
        #[arg(long)]
        audience: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration `serve` would use (file, env, flags)
    /// without starting; an error names the option.
    Check(Box<ServeArgs>),
    /// Print a configuration file with every option, its default and what
    /// it does.
    Example,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_LISTEN")]
    pub listen: Option<String>,
    /// Issuer URL (default: http://<listen>).
    #[arg(long, env = "LATCHKEY_ISSUER")]
    pub issuer: Option<String>,
    /// Serve GET /metrics and /admin/v1/openapi.json on this address instead of on --listen.
    #[arg(long, env = "LATCHKEY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Signing key algorithm for a new key: RS256 (default), ES256 or EdDSA.
    #[arg(long, env = "LATCHKEY_KEY_ALGORITHM")]
    pub key_algorithm: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, env = "LATCHKEY_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "LATCHKEY_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// TLS ends in a proxy in front of Latchkey: allow plain HTTP off loopback.
    #[arg(long, env = "LATCHKEY_BEHIND_TLS_PROXY")]
    pub behind_tls_proxy: bool,
    /// Seed a demo domain and print ready-to-paste curl commands.
    #[arg(long)]
    pub demo: bool,
    /// Password of the admin user created on first start (default: generated, printed once).
    #[arg(
        long = "admin-password",
        env = "LATCHKEY_ADMIN_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub admin_password: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// List groups with their member counts.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a group: its members and roles.
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Add a user to a group.
    AddMember { name: String, username: String },
    /// Remove a user from a group (they lose the roles they hold through it).
    RemoveMember { name: String, username: String },
    /// Grant an identity domain application role to a group, and so to its members.
    GrantRole { name: String, role: String },
    /// Revoke a role from a group.
    RevokeRole { name: String, role: String },
    /// Delete a group (its members lose the roles they hold through it).
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is read from stdin with --password-stdin, else generated and printed once).
    Add {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        /// An identity domain application role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List users.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one user.
    Show {
        username: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Set a user's password (from stdin with --password-stdin, else generated and printed once).
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Allow the user to sign in again.
    Activate { username: String },
    /// Stop the user from signing in.
    Deactivate { username: String },
    /// Lock the user out (no sign-in until unlocked) and end their sessions.
    Lock { username: String },
    /// Lift an administrator's lock and forget the user's failed sign-ins.
    Unlock { username: String },
    /// Grant an identity domain application role to the user directly.
    GrantRole { username: String, role: String },
    /// Revoke a directly granted role (roles held through groups stay).
    RevokeRole { username: String, role: String },
    /// Delete a user and everything of theirs.
    Delete { username: String },
    /// List a user's live sessions.
    Sessions {
        username: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// End every session of a user (their refresh and access tokens stop working).
    Logout { username: String },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List apps.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one app.
    Show {
        client_id: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Register an app; a confidential or trusted app gets a generated secret, printed once.
    Create {
        /// The app's name.
        #[arg(long)]
        name: String,
        /// trusted, confidential or public.
        #[arg(long = "type")]
        app_type: String,
        /// Default: the name, lower-cased, dashes for spaces.
        #[arg(long)]
        client_id: Option<String>,
        /// Read the client secret from stdin (at least 16 characters)
        /// instead of generating one.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Create the app deactivated.
        #[arg(long)]
        inactive: bool,
        #[command(flatten)]
        fields: AppFields,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Change an app: each given flag replaces that field; the rest stay.
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type")]
        app_type: Option<String>,
        #[command(flatten)]
        fields: AppFields,
        /// Remove the registered JWKS or certificate.
        #[arg(long, conflicts_with_all = ["jwks_file", "certificate_file"])]
        remove_keys: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Generate a new client secret, printed once.
    RotateSecret {
        client_id: String,
        /// Keep the old secret valid this long (e.g. 24h), so clients can
        /// be moved over without downtime. Default: it stops at once.
        #[arg(long)]
        grace: Option<String>,
    },
    /// Let a deactivated app authenticate again.
    Activate { client_id: String },
    /// Refuse the app's authentication and end its sessions.
    Deactivate { client_id: String },
    /// Delete an app and its sessions.
    Delete { client_id: String },
}

/// The fields of an app shared by `app create` and `app update`. A list
/// flag may be repeated; given at all, it replaces the whole list.
#[derive(Debug, Default, Args)]
pub struct AppFields {
    /// A grant type the app may use (password, refresh_token, client_credentials).
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A scope the app may be granted (audience + scope, or a special scope).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// An identity domain application role (trusted apps only).
    #[arg(long = "app-role")]
    pub app_roles: Vec<String>,
    /// Public keys for private_key_jwt, as a JWK Set (JSON file).
    #[arg(long, conflicts_with = "certificate_file")]
    pub jwks_file: Option<std::path::PathBuf>,
    /// A PEM certificate or public key for private_key_jwt.
    #[arg(long)]
    pub certificate_file: Option<std::path::PathBuf>,
    /// Accept client_secret_jwt (the secret is then also kept sealed under the master key).
    #[arg(long)]
    pub client_secret_jwt: Option<bool>,
    #[arg(long)]
    pub access_token_ttl: Option<String>,
    #[arg(long)]
    pub refresh_token_ttl: Option<String>,
    #[arg(long)]
    pub session_lifetime: Option<String>,
    /// How long a rotated-out refresh token may be presented again (0 to 60s; 0: never).
    #[arg(long)]
    pub refresh_token_reuse_interval: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Publish a new signing key, which signs after keys.publish_ahead
    /// (default 5m); the previous one signs until then and stays published.
    Rotate {
        /// RS256, ES256 or EdDSA (default: the algorithm of the active key).
        #[arg(long)]
        algorithm: Option<String>,
        /// Emergency only (a compromised key): the new key signs at once.
        /// Verifiers that cached the JWKS refuse its tokens until they
        /// fetch it again (up to keys.jwks_max_age).
        #[arg(long)]
        now: bool,
    },
}
