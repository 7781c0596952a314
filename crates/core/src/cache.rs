//! Short-lived read-through caches for what every token request reads and
//! almost nothing changes: apps and resource servers. Decorators over the
//! repository traits, so services do not know they exist.
//!
//! The TTL bounds how stale a running node can be after `apply` or the CLI
//! changed the database on another process (docs/deployment.md promises 5 s).
//! Users, sessions and refresh tokens are never cached: a lock, a
//! deactivation or a revocation must take effect at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::{App, ResourceServer};
use crate::store::{AppRepo, NewSecret, ResourceServerRepo, StoreResult};

/// Beyond this many cached client_ids, known or not, the cache starts over
/// (bounds memory when clients present many distinct client_ids).
const MAX_APPS: usize = 10_000;

/// Unknown client_ids are cached like known ones, in the same bounded map:
/// answering a known client from memory and an unknown one from the
/// database would tell them apart by timing. A flood of invented ids that
/// fills the map empties it for both alike.
pub struct CachedApps {
    inner: Arc<dyn AppRepo>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<App>)>>,
}

impl CachedApps {
    pub fn new(inner: Arc<dyn AppRepo>, ttl: Duration) -> Self {
        CachedApps {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn forget(&self) {
        self.entries.lock().expect("app cache lock").clear();
    }
}

#[async_trait]
impl AppRepo for CachedApps {
    async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        if let Some((at, app)) = self.entries.lock().expect("app cache lock").get(client_id)
            && at.elapsed() < self.ttl
        {
            return Ok(app.clone());
        }
        let found = self.inner.find_by_client_id(client_id).await?;
        let mut entries = self.entries.lock().expect("app cache lock");
        if entries.len() >= MAX_APPS {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), (Instant::now(), found.clone()));
        Ok(found)
    }

    async fn list(&self) -> StoreResult<Vec<App>> {
        self.inner.list().await
    }

    async fn set_secret(&self, app_id: &str, secret: &NewSecret, now: i64) -> StoreResult<()> {
        let result = self.inner.set_secret(app_id, secret, now).await;
        self.forget();
        result
    }

    async fn set_active(&self, app_id: &str, active: bool, now: i64) -> StoreResult<()> {
        let result = self.inner.set_active(app_id, active, now).await;
        self.forget();
        result
    }

    async fn delete(&self, app_id: &str) -> StoreResult<()> {
        let result = self.inner.delete(app_id).await;
        self.forget();
        result
    }

    fn changed(&self) {
        self.forget();
    }
}

pub struct CachedResourceServers {
    inner: Arc<dyn ResourceServerRepo>,
    ttl: Duration,
    entry: Mutex<Option<(Instant, Arc<Vec<ResourceServer>>)>>,
}

impl CachedResourceServers {
    pub fn new(inner: Arc<dyn ResourceServerRepo>, ttl: Duration) -> Self {
        CachedResourceServers {
            inner,
            ttl,
            entry: Mutex::new(None),
        }
    }
}

#[async_trait]
impl ResourceServerRepo for CachedResourceServers {
    async fn list(&self) -> StoreResult<Vec<ResourceServer>> {
        if let Some((at, servers)) = self
            .entry
            .lock()
            .expect("resource server cache lock")
            .as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(servers.as_ref().clone());
        }
        let servers = self.inner.list().await?;
        *self.entry.lock().expect("resource server cache lock") =
            Some((Instant::now(), Arc::new(servers.clone())));
        Ok(servers)
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let result = self.inner.delete(id).await;
        self.changed();
        result
    }

    fn changed(&self) {
        *self.entry.lock().expect("resource server cache lock") = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppType, GrantType};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    fn app() -> App {
        App {
            id: "id".into(),
            client_id: "c".into(),
            name: "n".into(),
            app_type: AppType::Public,
            active: true,
            secret_hash: None,
            secret_sealed: None,
            previous_secret: None,
            grant_types: vec![GrantType::Password],
            redirect_uris: vec![],
            scopes: vec![],
            app_roles: vec![],
            jwks: None,
            certificate: None,
            access_token_ttl: 1,
            refresh_token_ttl: 1,
            session_lifetime: None,
            refresh_token_reuse_interval: 30,
            created_at: 0,
            updated_at: 0,
            tokens_revoked_at: None,
        }
    }

    #[async_trait]
    impl AppRepo for Counting {
        async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok((client_id == "c").then(app))
        }
        async fn list(&self) -> StoreResult<Vec<App>> {
            Ok(vec![])
        }
        async fn set_secret(&self, _: &str, _: &NewSecret, _: i64) -> StoreResult<()> {
            Ok(())
        }
        async fn set_active(&self, _: &str, _: bool, _: i64) -> StoreResult<()> {
            Ok(())
        }
        async fn delete(&self, _: &str) -> StoreResult<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn known_and_unknown_client_ids_are_cached_alike() {
        let inner = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = CachedApps::new(inner.clone(), Duration::from_secs(60));
        assert!(cache.find_by_client_id("c").await.unwrap().is_some());
        assert!(cache.find_by_client_id("c").await.unwrap().is_some());
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        assert!(cache.find_by_client_id("x").await.unwrap().is_none());
        assert!(cache.find_by_client_id("x").await.unwrap().is_none());
        assert_eq!(
            inner.0.load(Ordering::SeqCst),
            2,
            "an unknown client_id is answered from memory too: no timing tells it apart"
        );
        // A write through the cache drops it.
        cache.set_active("id", false, 0).await.unwrap();
        cache.find_by_client_id("c").await.unwrap();
        cache.find_by_client_id("x").await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 4, "both forgotten");

        let expiring = CachedApps::new(inner.clone(), Duration::ZERO);
        expiring.find_by_client_id("c").await.unwrap();
        expiring.find_by_client_id("c").await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 6);

        // Invented ids cannot grow it beyond its bound.
        let bounded = CachedApps::new(inner.clone(), Duration::from_secs(60));
        for i in 0..MAX_APPS + 10 {
            bounded
                .find_by_client_id(&format!("invented-{i}"))
                .await
                .unwrap();
        }
        assert!(bounded.entries.lock().unwrap().len() <= MAX_APPS);
    }
}
