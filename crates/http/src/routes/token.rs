//! `POST /oauth2/v1/token` (RFC 6749 §3.2).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::OAuthError;
use latchkey_core::grant::TokenParams;
use latchkey_core::meta::RequestMeta;
use latchkey_proto::TokenResponse;

use crate::client_credentials;
use crate::error::{OAuthResponse, no_store};
use crate::form;
use crate::state::AppState;

pub(crate) async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&state, peer, &headers, body).await {
        Ok(response) => response,
        Err(error) => OAuthResponse {
            error,
            realm: &state.issuer,
        }
        .into_response(),
    }
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(too_large());
        }
        Err(rejection) => {
            return Err(
                OAuthError::invalid_request("the request body could not be read")
                    .with_detail(rejection.body_text()),
            );
        }
    };
    form::check_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )?;
    let mut params = form::parse(&body)?;
    let credentials = client_credentials::extract(headers, &mut params)?;
    let meta = RequestMeta {
        ip: Some(peer.ip()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        request_id: None,
    };
    let issued = state
        .tokens
        .token(&credentials, &TokenParams::new(params), &meta)
        .await?;
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

fn too_large() -> Response {
    let error = latchkey_proto::OAuthErrorBody {
        error: "invalid_request".to_owned(),
        error_description: Some("the request body is too large".to_owned()),
    };
    let mut response = (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(error)).into_response();
    no_store(response.headers_mut());
    response
}
