//! JWKS, metadata and health endpoints.

use std::time::Duration;

use latchkey_core::keys::{KeyAlgorithm, KeyRing};
use latchkey_testkit::TestServer;
use serde_json::Value;

use crate::support::*;

on_both_engines!(the_metadata_lists_every_algorithm_the_server_may_sign_with);

async fn signing_algs(server: &TestServer) -> Vec<String> {
    let m: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// openid-client reads `id_token_signing_alg_values_supported` once and
/// refuses ID tokens signed otherwise: the list must hold every algorithm
/// a published key uses, and the configured one (the next scheduled
/// rotation's), not only the current key's.
async fn the_metadata_lists_every_algorithm_the_server_may_sign_with(server: &TestServer) {
    assert_eq!(signing_algs(server).await, ["ES256"]);
    // A node configured with another algorithm, on the same keys: it
    // signs ES256 now and EdDSA after its next scheduled rotation.
    let eddsa_node = server
        .start_sibling_with(|s| s.key_algorithm = KeyAlgorithm::EdDsa)
        .await;
    assert_eq!(signing_algs(&eddsa_node).await, ["ES256", "EdDSA"]);
    eddsa_node.stop().await;
    // A rotation to RS256: the ES256 key still verifies its tokens.
    let ctx = server.context().await;
    KeyRing::new(ctx.store.repos.keys.clone(), ctx.master.clone())
        .rotate_now(KeyAlgorithm::Rs256, 0)
        .await
        .unwrap();
    ctx.store.close().await;
    eventually(
        "the server signing RS256 and still listing ES256",
        Duration::from_secs(5),
        async || signing_algs(server).await == ["RS256", "ES256"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_the_same_on_all_three_paths_and_public_only() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let mut documents = Vec::new();
    for path in [
        "/admin/v1/SigningCert/jwk",
        "/oauth2/v1/keys",
        "/.well-known/jwks.json",
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        documents.push(response.json::<Value>().await.unwrap());
    }
    assert!(documents.windows(2).all(|w| w[0] == w[1]));
    let keys = documents[0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for key in keys {
        assert!(
            key["kid"].is_string() && key["alg"] == "ES256" && key["use"] == "sig",
            "{key}"
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_served_at_both_well_known_paths() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m: Value = reqwest::get(server.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["issuer"], server.issuer(), "{path}");
        assert_eq!(m["token_endpoint"], server.token_url());
        assert_eq!(m["jwks_uri"], server.url("/oauth2/v1/keys"));
        assert_eq!(
            m["introspection_endpoint"],
            server.url("/oauth2/v1/introspect")
        );
        assert_eq!(
            m["introspect_endpoint"],
            server.url("/oauth2/v1/introspect")
        );
        assert_eq!(m["revocation_endpoint"], server.url("/oauth2/v1/revoke"));
        let list = |k: &str| {
            m[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(list("grant_types_supported").contains(&"password".to_owned()));
        assert!(list("grant_types_supported").contains(&"refresh_token".to_owned()));
        for method in ["client_secret_basic", "client_secret_post", "none"] {
            assert!(list("token_endpoint_auth_methods_supported").contains(&method.to_owned()));
        }
        assert!(list("scopes_supported").contains(&latchkey_testkit::READ.to_owned()));
        assert!(list("scopes_supported").contains(&"offline_access".to_owned()));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_security_headers() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    for path in ["/health/live", "/health/ready"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a generated request id: {id}");
    }
    // The caller's request id is kept and returned.
    let response = reqwest::Client::new()
        .get(server.url("/health/live"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    server.stop().await;
}
