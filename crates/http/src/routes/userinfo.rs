//! `GET`/`POST /oauth2/v1/userinfo` (OIDC Core §5.3), behind a bearer
//! token that holds `openid`. Errors per RFC 6750, with an OAuth JSON body.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::admin::render::{bearer_token, challenge_of};
use crate::state::AppState;

pub(crate) async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = match bearer_token(&headers, query.as_deref()) {
        Ok(token) => match state.bearer.verify_any_audience(&token).await {
            Ok(caller) => {
                latchkey_core::userinfo::userinfo(state.repos.users.as_ref(), &caller).await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let mut response = match result {
        Ok(claims) => axum::Json(claims).into_response(),
        Err(error) => match challenge_of(&error, &state.issuer) {
            Some((status, challenge, code, detail)) => {
                let mut response = (
                    status,
                    axum::Json(json!({"error": code, "error_description": detail})),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
