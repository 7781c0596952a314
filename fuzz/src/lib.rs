//! What the fuzz targets share: the one-app store behind client
//! authentication, and a way to run its futures without a runtime.

use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use latchkey_core::client_auth::{AssertionPolicy, ClientAuthenticator};
use latchkey_core::clock::FixedClock;
use latchkey_core::model::{App, AppType, GrantType};
use latchkey_core::secrets::MasterKey;
use latchkey_core::store::{AppRepo, AssertionReplayRepo, NewSecret, StoreError, StoreResult};

pub const CLIENT_ID: &str = "reports";
pub const ISSUER: &str = "https://id.example.com";
/// The secret of `client_secret_jwt` seeds (HS256).
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// The fuzzed server's clock: the seeds' `exp` lies just after it.
pub const NOW: i64 = 1_800_000_000;
pub const CERT: &str = include_str!("../../crates/core/testdata/client-keys/p256.cert.pem");
pub const KEY: &str = include_str!("../../crates/core/testdata/client-keys/p256.key.pem");
/// A fixed key, so that sealed secrets and seeds stay valid across runs.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct OneApp(App);

#[async_trait]
impl AppRepo for OneApp {
    async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        Ok((client_id == self.0.client_id).then(|| self.0.clone()))
    }
    async fn list(&self) -> StoreResult<Vec<App>> {
        Ok(vec![self.0.clone()])
    }
    async fn set_secret(&self, _: &str, _: &NewSecret, _: i64) -> StoreResult<()> {
        Err(StoreError::Other("read-only".into()))
    }
    async fn set_active(&self, _: &str, _: bool, _: i64) -> StoreResult<()> {
        Err(StoreError::Other("read-only".into()))
    }
    async fn delete(&self, _: &str) -> StoreResult<()> {
        Err(StoreError::Other("read-only".into()))
    }
}

#[derive(Default)]
struct Replay(Mutex<HashSet<(String, String)>>);

#[async_trait]
impl AssertionReplayRepo for Replay {
    async fn record_assertion(&self, client_id: &str, jti: &str, _: i64) -> StoreResult<bool> {
        let mut seen = self.0.lock().unwrap();
        Ok(seen.insert((client_id.to_owned(), jti.to_owned())))
    }
    async fn purge_assertions(&self, _: i64, _: u32) -> StoreResult<u64> {
        Ok(0)
    }
}

/// The authenticator the token endpoint uses, over one trusted app that
/// registered the P-256 test certificate and accepts `client_secret_jwt`.
/// A fresh replay cache each time, so every input is judged alone.
pub fn authenticator() -> ClientAuthenticator {
    let master = MasterKey::from_base64(MASTER_KEY).expect("a 32-byte key");
    let app = App {
        id: "a1".into(),
        client_id: CLIENT_ID.into(),
        name: "Reports".into(),
        app_type: AppType::Trusted,
        active: true,
        secret_hash: Some(master.secret_hasher().hash(SECRET)),
        secret_sealed: Some(master.seal_client_secret(CLIENT_ID, SECRET)),
        previous_secret: None,
        grant_types: vec![GrantType::Password],
        redirect_uris: vec![],
        scopes: vec![],
        app_roles: vec![],
        jwks: None,
        certificate: Some(CERT.into()),
        access_token_ttl: 3600,
        refresh_token_ttl: 3600,
        session_lifetime: None,
        created_at: 0,
        updated_at: 0,
    };
    ClientAuthenticator {
        apps: Arc::new(OneApp(app)),
        replay: Arc::new(Replay::default()),
        secrets: master.secret_hasher(),
        master,
        audiences: ClientAuthenticator::audiences_for(ISSUER),
        policy: AssertionPolicy::default(),
        clock: Arc::new(FixedClock::new(NOW)),
        budget: None,
    }
}

/// Runs a future that never waits (the fakes answer at once): a fuzz
/// iteration stays a plain function call, with no runtime in between.
pub fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}
