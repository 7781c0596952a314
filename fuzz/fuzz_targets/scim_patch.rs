//! A SCIM PATCH request body (RFC 7644 §3.5.2), read and applied as the
//! Users and Groups endpoints do, to a typical user and group document.
#![no_main]

use latchkey_core::scim::patch::{apply, parse_operations};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// As in `admin::users` and `admin::groups`.
const USER_READ_ONLY: &[&str] = &["id", "meta", "groups"];
const GROUP_READ_ONLY: &[&str] = &["id", "meta"];
const PATCH_TYPES: [&str; 6] = [
    "invalidSyntax",
    "invalidPath",
    "invalidValue",
    "noTarget",
    "mutability",
    "invalidFilter",
];

fn documents() -> [(Value, &'static [&'static str], &'static str); 2] {
    [
        (
            json!({
                "schemas": [USER], "id": "u1", "meta": {"version": "W/\"1\""},
                "userName": "alice", "name": {"givenName": "Alice"},
                "emails": [{"value": "a@x.org", "type": "work", "primary": true}],
                "groups": [{"value": "g1"}], "active": true,
            }),
            USER_READ_ONLY,
            USER,
        ),
        (
            json!({
                "schemas": [GROUP], "id": "g1", "meta": {"version": "W/\"1\""},
                "displayName": "ops", "members": [{"value": "u1", "type": "User"}],
            }),
            GROUP_READ_ONLY,
            GROUP,
        ),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let operations = match parse_operations(&body) {
        Ok(operations) => operations,
        Err(e) => {
            assert!(
                e.status == 400 && e.scim_type.is_some_and(|t| PATCH_TYPES.contains(&t)),
                "{e}"
            );
            return;
        }
    };
    for (original, read_only, uri) in documents() {
        let mut doc = original.clone();
        match apply(&mut doc, &operations, read_only, uri) {
            Ok(()) => {
                for name in read_only.iter().chain(&["schemas"]) {
                    assert_eq!(doc[*name], original[*name], "{name} changed");
                }
            }
            Err(e) => assert!(
                e.status == 400 && e.scim_type.is_some_and(|t| PATCH_TYPES.contains(&t)),
                "{e}"
            ),
        }
    }
});
