//! `POST /oauth2/v1/token` (RFC 6749 §3.2).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::meta::{END_USER_IP_HEADER, RequestMeta};
use latchkey_proto::TokenResponse;

use super::client_request::{self, Refused};
use crate::error::no_store;
use crate::state::AppState;

pub(crate) async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut grant_type = String::new();
    let answer = handle(&state, peer, &headers, body, &mut grant_type).await;
    let outcome = match &answer {
        Ok(_) => "issued",
        Err(Refused::TooLarge) => "invalid_request",
        Err(Refused::RateLimited(_)) => "rate_limited",
        Err(Refused::OAuth(error)) => error.outcome(),
    };
    crate::metrics::token_outcome(&state.metrics, &grant_type, outcome);
    match answer {
        Ok(response) => response,
        Err(refused) => refused.into_response(&state.issuer),
    }
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    grant_type: &mut String,
) -> Result<Response, Refused> {
    let ip = crate::client_ip::client_ip(
        peer,
        headers,
        &state.trusted_proxies,
        state.forwarded_header,
    );
    // A backend naming its end user's address is charged once it has
    // authenticated, on that address if it may name one (TokenService).
    let end_user_ip = headers
        .get(END_USER_IP_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if end_user_ip.is_none() {
        state
            .rate_limits
            .check_ip(ip)
            .map_err(Refused::RateLimited)?;
    }
    let (credentials, params) = client_request::read(headers, body)?;
    grant_type.push_str(params.get("grant_type").unwrap_or_default());
    client_request::log_client(&credentials);
    let meta = RequestMeta {
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip_limit_deferred: end_user_ip.is_some(),
        end_user_ip,
    };
    let issued = state.tokens.token(&credentials, &params, &meta).await?;
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in.max(0) as u64,
        scope: Some(issued.scope).filter(|s| !s.is_empty()),
        refresh_token: issued.refresh_token,
        id_token: issued.id_token,
    };
    let mut response = axum::Json(body).into_response();
    no_store(response.headers_mut());
    Ok(response)
}
