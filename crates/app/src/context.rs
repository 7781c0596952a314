//! Opening what every command needs: the database (migrated), the master
//! key and the password hasher.

use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use latchkey_core::clock::{Clock, SystemClock};
use latchkey_core::domain::DomainService;
use latchkey_core::password::PasswordHasher;
use latchkey_core::secrets::MasterKey;
use latchkey_store::Store;

use crate::config::Settings;
use crate::master_key;

pub struct Context {
    pub store: Store,
    pub master: MasterKey,
    pub hasher: Arc<PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub password_policy: latchkey_core::password_policy::PasswordPolicy,
    pub token_defaults: latchkey_core::domain::TokenDefaults,
    pub throttle: latchkey_core::throttle::ThrottlePolicy,
    pub key_rollover: latchkey_core::keys::KeyRollover,
}

impl Context {
    pub async fn open(settings: &Settings) -> anyhow::Result<Context> {
        // Master key first: a PostgreSQL deployment without one fails
        // before touching the database.
        let master = master_key::load(settings.master_key.as_deref(), &settings.database_url)
            .map_err(|e| anyhow!(e))?;
        let store = latchkey_store::open_with(
            &settings.database_url,
            latchkey_store::PoolSettings {
                max_connections: settings.db_max_connections,
                acquire_timeout: std::time::Duration::from_secs(settings.db_acquire_timeout_secs),
                sqlite_wal_limit_bytes: settings.sqlite_wal_limit_mib << 20,
            },
        )
        .await?;
        let hasher =
            PasswordHasher::new(settings.hash_params, settings.hash_pool).context("hashing")?;
        Ok(Context {
            store,
            master,
            hasher: Arc::new(hasher),
            clock: Arc::new(SystemClock),
            password_policy: settings.password_policy,
            token_defaults: settings.token_defaults,
            throttle: settings.throttle,
            key_rollover: settings.key_rollover,
        })
    }

    /// Apps, resource servers and keys, as the admin API manages them.
    pub fn registry(
        &self,
        key_algorithm: latchkey_core::keys::KeyAlgorithm,
    ) -> latchkey_core::admin::RegistryService {
        latchkey_core::admin::RegistryService {
            domain: self.domain_service(),
            keys: std::sync::Arc::new(self.key_ring()),
            key_algorithm,
        }
    }

    /// The signing keys, rolling over as configured.
    pub fn key_ring(&self) -> latchkey_core::keys::KeyRing {
        latchkey_core::keys::KeyRing::new(self.store.repos.keys.clone(), self.master.clone())
            .with_rollover(self.key_rollover)
            .with_clock(self.clock.clone())
    }

    /// Users and groups, as the admin API manages them (the CLI prints no
    /// SCIM locations, so there is no base URL).
    pub fn directory(&self) -> latchkey_core::admin::DirectoryService {
        latchkey_core::admin::DirectoryService {
            repos: self.store.repos.clone(),
            hasher: self.hasher.clone(),
            policy: self.password_policy,
            throttle: self.throttle,
            clock: self.clock.clone(),
            base_url: String::new(),
        }
    }

    pub fn domain_service(&self) -> DomainService {
        DomainService {
            repos: self.store.repos.clone(),
            hasher: self.hasher.clone(),
            secrets: self.master.secret_hasher(),
            master: self.master.clone(),
            clock: self.clock.clone(),
            policy: self.password_policy,
            token_defaults: self.token_defaults,
        }
    }
}
