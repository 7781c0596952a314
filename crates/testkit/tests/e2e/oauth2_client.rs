//! Interoperability: the `oauth2` crate's password exchange and refresh
//! against Latchkey.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, TokenResponse, TokenUrl,
};

use latchkey_testkit::{ALICE_PASSWORD, HR_SECRET, READ};

use crate::support::domain_server;

/// `oauth2`'s HTTP client trait, implemented over reqwest 0.13.
async fn http(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let client = reqwest::Client::new();
    let (parts, body) = request.into_parts();
    let mut builder = client
        .request(
            parts.method.as_str().parse().unwrap(),
            parts.uri.to_string(),
        )
        .body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let response = builder.send().await.map_err(std::io::Error::other)?;
    let mut out = oauth2::http::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        out = out.header(name.as_str(), value.as_bytes());
    }
    let bytes = response.bytes().await.map_err(std::io::Error::other)?;
    out.body(bytes.to_vec()).map_err(std::io::Error::other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_signs_in_and_refreshes() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let client = BasicClient::new(ClientId::new("hr-mobile".into()))
        .set_client_secret(ClientSecret::new(HR_SECRET.into()))
        .set_auth_type(AuthType::BasicAuth)
        .set_token_uri(TokenUrl::new(server.token_url()).unwrap());

    let token = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(ALICE_PASSWORD.into()),
        )
        .add_scope(Scope::new(READ.into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("password exchange");
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, vec![READ.to_owned(), "offline_access".to_owned()]);
    let refresh = token
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret()
    );

    let failure = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("wrong".into()),
        )
        .request_async(&http)
        .await
        .unwrap_err();
    match failure {
        RequestTokenError::ServerResponse(e) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant)
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    // Within the reuse interval the rotated-out token still answers (a
    // retry after a lost response); once the client has gone on past it,
    // it is a replay and refused.
    let again = client
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
        .expect("a retry within the reuse interval");
    client
        .exchange_refresh_token(again.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("the retry's token goes on");
    let replay = client
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await;
    assert!(replay.is_err(), "a token generations back is refused");
    server.stop().await;
}
