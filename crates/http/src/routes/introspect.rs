//! `POST /oauth2/v1/introspect` (RFC 7662) and `POST /oauth2/v1/revoke`
//! (RFC 7009).

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client_request::{self, Refused};
use crate::error::no_store;
use crate::state::AppState;

pub(crate) async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result: Result<Response, Refused> = async {
        let (credentials, params) = client_request::read_limited(&state, peer, &headers, body)?;
        let answer = state
            .introspection
            .introspect(&credentials, &params)
            .await?;
        let mut response = axum::Json(answer).into_response();
        no_store(response.headers_mut());
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|refused| refused.into_response(&state.issuer))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result: Result<Response, Refused> = async {
        let (credentials, params) = client_request::read_limited(&state, peer, &headers, body)?;
        state.introspection.revoke(&credentials, &params).await?;
        let mut response = StatusCode::OK.into_response();
        no_store(response.headers_mut());
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|refused| refused.into_response(&state.issuer))
}
