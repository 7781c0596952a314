//! The JWKS (RFC 7517) and the authorization server metadata (RFC 8414).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::scope::SPECIAL_SCOPES;
use latchkey_proto::AuthorizationServerMetadata;

use crate::state::AppState;

pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    match state.keys.jwks() {
        Ok(jwks) => {
            let mut response = axum::Json(jwks).into_response();
            // Short, so a rotation reaches verifiers quickly; a new key is
            // published at least this long before it signs
            // (`keys.publish_ahead`), so no cached copy misses it.
            let max_age = state.keys.rollover().jwks_max_age;
            if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                response.headers_mut().insert(header::CACHE_CONTROL, value);
            }
            response
        }
        Err(e) => {
            tracing::error!(error = e.to_string(), "no signing keys loaded");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub(crate) async fn metadata(State(state): State<AppState>) -> Response {
    let servers = match state.repos.resource_servers.list().await {
        Ok(servers) => servers,
        Err(e) => {
            tracing::warn!(
                error = e.to_string(),
                "metadata: cannot list resource servers"
            );
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let mut scopes: Vec<String> = SPECIAL_SCOPES.iter().map(|s| s.to_string()).collect();
    for rs in &servers {
        scopes.extend(rs.scopes.iter().map(|s| format!("{}{}", rs.audience, s)));
    }
    // Every algorithm a token may be signed with: each published key's
    // (a rotation to another algorithm leaves the old one verifying), and
    // the configured one, which the next scheduled rotation uses. A client
    // that pins this list at start-up (openid-client does) keeps working
    // across a change of algorithm.
    let mut algs: Vec<String> = state
        .keys
        .published_algorithms()
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let configured = state.registry.key_algorithm.jws_name();
    if !algs.iter().any(|a| a == configured) {
        algs.push(configured.to_owned());
    }
    let issuer = &state.issuer;
    let metadata = AuthorizationServerMetadata {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}/oauth2/v1/token"),
        introspection_endpoint: format!("{issuer}/oauth2/v1/introspect"),
        introspect_endpoint: format!("{issuer}/oauth2/v1/introspect"),
        revocation_endpoint: format!("{issuer}/oauth2/v1/revoke"),
        userinfo_endpoint: format!("{issuer}/oauth2/v1/userinfo"),
        jwks_uri: format!("{issuer}/oauth2/v1/keys"),
        scopes_supported: scopes,
        response_types_supported: Vec::new(),
        grant_types_supported: vec![
            "password".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        token_endpoint_auth_methods_supported: auth_methods(),
        token_endpoint_auth_signing_alg_values_supported: Some(
            ASSERTION_ALGS.iter().map(|a| a.to_string()).collect(),
        ),
        introspection_endpoint_auth_methods_supported: auth_methods(),
        revocation_endpoint_auth_methods_supported: auth_methods(),
        id_token_signing_alg_values_supported: algs,
        subject_types_supported: vec!["public".into()],
        claims_supported: [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "sid",
            "preferred_username",
            "name",
            "given_name",
            "family_name",
            "updated_at",
            "email",
            "email_verified",
        ]
        .map(String::from)
        .to_vec(),
    };
    axum::Json(metadata).into_response()
}

/// Every client authentication method, on every client-authenticated
/// endpoint.
fn auth_methods() -> Vec<String> {
    [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
        "none",
    ]
    .map(String::from)
    .to_vec()
}

/// The `alg` values a client assertion may use.
const ASSERTION_ALGS: [&str; 12] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];
