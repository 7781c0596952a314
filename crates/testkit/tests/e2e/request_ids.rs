//! Audit events carry the id of the request they happened in (the
//! caller's `X-Request-Id`, or the one the server made and returned), so
//! an event can be joined with that request's log lines.

use latchkey_core::audit::{AuditQuery, kind};
use latchkey_testkit::{HR_SECRET, TestServer};

use crate::support::{Answer, FORM_CT, basic, eventually, form, on_both_engines};

async fn wrong_password(server: &TestServer, request_id: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", basic("hr-mobile", HR_SECRET))
        .header("content-type", FORM_CT)
        .body(form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "not alice's password"),
        ]));
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    Answer::read(request.send().await.expect("the server answers")).await
}

async fn sign_in_request_ids(server: &TestServer) -> Vec<Option<String>> {
    server
        .audit_events(AuditQuery {
            event_type: Some(kind::SIGN_IN.into()),
            start_index: 1,
            count: 100,
            ..AuditQuery::default()
        })
        .await
        .into_iter()
        .map(|e| e.request_id)
        .collect()
}

async fn audit_events_carry_the_request_id(server: &TestServer) {
    let answer = wrong_password(server, Some("trace-audit-17")).await;
    answer.assert_error(400, "invalid_grant");
    eventually(
        "the refused sign-in is audited",
        std::time::Duration::from_secs(10),
        async || {
            sign_in_request_ids(server)
                .await
                .contains(&Some("trace-audit-17".to_owned()))
        },
    )
    .await;
}

async fn a_generated_request_id_is_the_one_returned(server: &TestServer) {
    // A fresh server: no earlier refusal for this event to be folded into.
    let answer = wrong_password(server, None).await;
    let returned = answer
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the server returns the id it made")
        .to_owned();
    eventually(
        "the refused sign-in is audited",
        std::time::Duration::from_secs(10),
        async || {
            sign_in_request_ids(server)
                .await
                .contains(&Some(returned.clone()))
        },
    )
    .await;
}

on_both_engines!(
    audit_events_carry_the_request_id,
    a_generated_request_id_is_the_one_returned
);
