//! Users imported with other systems' password hashes sign in without a
//! reset, and their hashes are upgraded to argon2id on the way.

use latchkey_testkit::HR_SECRET;

use crate::support::*;

// Computed independently with Python's hashlib (except bcrypt, made here).
const DJANGO: &str =
    "pbkdf2_sha256$10000$qLDpxFvgXrHh$WERlhAyD/63uHxUsQ5PRF3i1LWsKgr9+sPLVgf3c/nc=";
const PHC_PBKDF2: &str =
    "$pbkdf2-sha256$i=1000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$J44b5N39k/I+El3+VNTs1j2fLRxoqCcNUg7pzCimFuA";
const SCRYPT: &str =
    "$scrypt$ln=10,r=8,p=1$TmFDbC1zYWx0LTE2Ynl0ZQ$gkjuJFs/EcPBaq4PINEJDtMUKZqNDASRkiG2Vv24NBg";
const KEYCLOAK: &str = r#"{"type": "password", "secretData": "{\"value\": \"CDEls1MZqEQ32Ep0wE9OcjsBDiAxsRpm8NysUFs3jado8lX5gyhP/uMp6BREfyM5J4kKu0qaWXwpcUtBzl+3Mw==\", \"salt\": \"a2V5Y2xvYWstc2FsdC0xNg==\", \"additionalParameters\": {}}", "credentialData": "{\"hashIterations\": 27500, \"algorithm\": \"pbkdf2-sha512\", \"additionalParameters\": {}}"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_hashes_sign_in_and_are_upgraded() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let bcrypt_hash = bcrypt::hash("bcrypt password", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let users = [
        ("from-django", DJANGO, "lètmein"),
        ("from-phc", PHC_PBKDF2, "phc password"),
        ("from-scrypt", SCRYPT, "correct horse"),
        ("from-keycloak", KEYCLOAK, "kc password"),
        ("from-bcrypt", bcrypt_hash.as_str(), "bcrypt password"),
    ];
    let mut file = String::new();
    for (name, hash, _) in &users {
        file.push_str(&format!(
            "[[users]]\nusername = \"{name}\"\npassword_hash = '''{hash}'''\n\n"
        ));
    }
    server.apply(&file).await.expect("every format is accepted");

    let ctx = server.context().await;
    for (name, hash, password) in users {
        let grant = async |password: &str| {
            token_basic(
                &server,
                "hr-mobile",
                HR_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", name),
                    ("password", password),
                ],
            )
            .await
        };
        grant("not the password")
            .await
            .assert_error(400, "invalid_grant");
        grant(password).await.assert_ok();
        let stored = ctx
            .store
            .repos
            .users
            .find_by_username(name)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert_ne!(stored, hash);
        assert!(
            stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{name}: upgraded to {stored}"
        );
        grant(password).await.assert_ok();
    }
    ctx.store.close().await;

    let err = server
        .apply("[[users]]\nusername = \"md5\"\npassword_hash = \"$1$salt$hash\"\n")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("users[0].password_hash: unsupported hash format"),
        "{err}"
    );
    server.stop().await;
}
