//! Property tests of the domain-file parser: for any text, a result or an
//! error naming a line that exists in the text, never a panic, and never
//! an error that repeats a password or client secret written in the file
//! (`apply` prints the error, and terminals and CI logs keep it).
//!
//! Secrets carry a marker (`Zq…` for passwords, `Zs…` for client
//! secrets) that no other generated value can contain, so "the error
//! contains the secret" has no false alarms.

use proptest::prelude::*;

use super::file::{parse_domain_file, without_value};
use crate::model::ResourceServer;
use crate::password_policy::PasswordPolicy;

/// Writes `s` as a TOML basic string (JSON escapes are TOML escapes,
/// except that TOML also refuses a raw DEL).
fn quoted(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string serializes")
        .replace('\u{7f}', "\\u007f")
}

/// The last line an error may name: the one after the last newline.
fn lines_in(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count() + 1
}

fn check(text: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    let known_servers = [ResourceServer {
        id: "rs0".into(),
        name: "Existing".into(),
        audience: "https://existing.example.com/".into(),
        scopes: vec!["read".into()],
        created_at: 0,
        updated_at: 0,
    }];
    let result = parse_domain_file(
        text,
        &["ops".to_owned()],
        &known_servers,
        &PasswordPolicy::default(),
    );
    if let Err(e) = result {
        prop_assert!(
            e.line >= 1 && e.line <= lines_in(text),
            "line {} of a {}-line text: {}",
            e.line,
            lines_in(text),
            e
        );
        let shown = e.to_string();
        for secret in secrets {
            prop_assert!(
                !shown.contains(secret.as_str()),
                "the error repeats the secret {:?}: {}",
                secret,
                shown
            );
        }
    }
    Ok(())
}

/// A value of any TOML type, or junk, for fields that want one type.
fn arb_toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ._-]{0,12}".prop_map(|s| quoted(&s)),
        any::<i32>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_owned()),
        Just("[\"a\", 1]".to_owned()),
        Just("{ x = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        "[^\n]{0,10}",
    ]
}

/// A field line: usually well-typed, sometimes another type, sometimes
/// mangled (missing quote, missing `=`, a misspelt key).
fn field(key: &'static str, good: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        8 => good.clone().prop_map(move |v| format!("{key} = {v}")),
        1 => arb_toml_value().prop_map(move |v| format!("{key} = {v}")),
        1 => good.clone().prop_map(move |v| format!("{key} = {}", v.trim_end_matches('"'))),
        1 => good.prop_map(move |v| format!("{key}x = {v}")),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-z][a-z0-9._-]{0,10}".prop_map(|s| quoted(&s)),
        1 => Just(quoted("")),
        1 => ".{0,8}".prop_map(|s| quoted(&s)),
        1 => Just(quoted(&"n".repeat(300))),
    ]
    .boxed()
}

fn string_list(item: BoxedStrategy<String>) -> BoxedStrategy<String> {
    proptest::collection::vec(item, 0..4)
        .prop_map(|items| format!("[{}]", items.join(", ")))
        .boxed()
}

fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(options).prop_map(quoted).boxed()
}

/// A password with the marker: long enough for the policy, or not.
fn password() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9 !#%&]{6,30}".prop_map(|s| format!("Zq{s}")),
        1 => "[0-9]{0,4}".prop_map(|s| format!("Zq{s}")),
        1 => "[A-Za-z0-9]{130,140}".prop_map(|s| format!("Zq{s}")),
    ]
}

fn client_secret() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[A-Za-z0-9]{20,40}".prop_map(|s| format!("Zs{s}")),
        1 => "[A-Za-z0-9]{0,10}".prop_map(|s| format!("Zs{s}")),
    ]
}

/// One `[[section]]` entry; the secrets it writes are returned beside it.
fn entry() -> impl Strategy<Value = (String, Vec<String>)> {
    let server = (
        field("name", name()),
        field(
            "audience",
            pick(&[
                "https://hr.example.com/",
                "https://existing.example.com/",
                "urn:api",
                "",
            ]),
        ),
        field(
            "scopes",
            string_list(pick(&["read", "write", "a b", "", "x\"y", "read"])),
        ),
    )
        .prop_map(|(n, a, s)| (format!("[[resource_servers]]\n{n}\n{a}\n{s}\n"), vec![]))
        .boxed();
    let group = (
        field("name", name()),
        field(
            "app_roles",
            string_list(pick(&[
                "User Administrator",
                "Help Desk Administrator",
                "Boss",
            ])),
        ),
    )
        .prop_map(|(n, r)| (format!("[[groups]]\n{n}\n{r}\n"), vec![]))
        .boxed();
    let user = (
        field("username", name()),
        proptest::option::of(password()),
        // Twelve digits: no line number or count can contain them.
        100_000_000_000u64..999_999_999_999,
        prop::sample::select(&[0usize, 1, 2, 3, 4, 5][..]),
        proptest::option::of(field(
            "password_hash",
            pick(&[
                "$2b$x",
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                "md5:abc",
            ]),
        )),
        proptest::option::of(field(
            "email",
            pick(&["a@example.com", "not-an-email", "a @b"]),
        )),
        proptest::option::of(field(
            "active",
            any::<bool>().prop_map(|b| b.to_string()).boxed(),
        )),
        proptest::option::of(field(
            "groups",
            string_list(pick(&["ops", "helpdesk", "nobody"])),
        )),
        proptest::option::of(field(
            "app_roles",
            string_list(pick(&["User Administrator", "Nobody"])),
        )),
    )
        .prop_map(
            |(username, password, pin, style, hash, email, active, groups, roles)| {
                let mut text = format!("[[users]]\n{username}\n");
                let mut secrets = vec![];
                if let Some(pw) = password {
                    // Well-formed mostly; also the mistakes people make when
                    // typing a password into a file.
                    let line = match style {
                        0 | 1 => format!("password = {}", quoted(&pw)),
                        2 => format!("password = {}", quoted(&pw).trim_end_matches('"')),
                        3 => format!("password = '{pw}'"),
                        4 => format!("password = \"\"\"\n{pw}\n\"\"\""),
                        // A PIN-like password left unquoted: TOML reads an
                        // integer, which serde's message would quote.
                        _ => format!("password = {pin}"),
                    };
                    text.push_str(&line);
                    text.push('\n');
                    secrets.push(if style == 5 { pin.to_string() } else { pw });
                }
                for line in [hash, email, active, groups, roles].into_iter().flatten() {
                    text.push_str(&line);
                    text.push('\n');
                }
                (text, secrets)
            },
        )
        .boxed();
    let app = (
        (
            field("name", name()),
            proptest::option::of(field("client_id", name())),
            field(
                "type",
                pick(&["trusted", "confidential", "public", "secret-agent"]),
            ),
            proptest::option::of(client_secret()),
            proptest::option::of(field(
                "grant_types",
                string_list(pick(&[
                    "password",
                    "refresh_token",
                    "client_credentials",
                    "implicit",
                ])),
            )),
        ),
        (
            proptest::option::of(field(
                "redirect_uris",
                string_list(pick(&[
                    "https://hr.example.com/cb",
                    "http://x/cb",
                    "not a uri",
                ])),
            )),
            proptest::option::of(field(
                "scopes",
                string_list(pick(&[
                    "https://hr.example.com/read",
                    "https://existing.example.com/read",
                    "offline_access",
                    "nope",
                ])),
            )),
            proptest::option::of(field(
                "app_roles",
                string_list(pick(&["User Administrator", "Boss"])),
            )),
            proptest::option::of(field(
                "access_token_ttl",
                pick(&["1h", "7d", "0s", "soon", "-1h"]),
            )),
            proptest::option::of(field(
                "certificate",
                pick(&[
                    "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----",
                    "x",
                ]),
            )),
            proptest::option::of(field("jwks", pick(&["{\"keys\":[]}", "[]"]))),
        ),
    )
        .prop_map(
            |((n, id, t, secret, grants), (uris, scopes, roles, ttl, cert, jwks))| {
                let mut text = format!("[[apps]]\n{n}\n{t}\n");
                let mut secrets = vec![];
                if let Some(secret) = secret {
                    text.push_str(&format!("client_secret = {}\n", quoted(&secret)));
                    secrets.push(secret);
                }
                for line in [id, grants, uris, scopes, roles, ttl, cert, jwks]
                    .into_iter()
                    .flatten()
                {
                    text.push_str(&line);
                    text.push('\n');
                }
                (text, secrets)
            },
        )
        .boxed();
    prop_oneof![1 => server, 1 => group, 2 => user, 2 => app]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_text_names_a_line_in_it(text in "(?s).{0,400}") {
        check(&text, &[])?;
    }

    #[test]
    fn toml_shaped_noise_names_a_line_in_it(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("[[users]]"), Just("[[apps]]"), Just("[groups]"), Just("\n"), Just(" = "),
                Just("username"), Just("\"é\""), Just("'"), Just("\"\"\""), Just("["), Just("]"),
                Just(","), Just("#"), Just("\r\n"), Just("password"), Just("1"), Just("{"),
            ],
            0..40,
        )
    ) {
        check(&parts.concat(), &[])?;
    }

    #[test]
    fn plausible_files_never_echo_a_secret(
        entries in proptest::collection::vec(entry(), 0..6),
        blank_lines in proptest::collection::vec(0usize..3, 6),
    ) {
        let mut text = String::new();
        let mut secrets = vec![];
        for ((entry, entry_secrets), blank) in entries.into_iter().zip(blank_lines) {
            text.push_str(&entry);
            text.push_str(&"\n".repeat(blank));
            secrets.extend(entry_secrets);
        }
        check(&text, &secrets)?;
    }
}

/// Found by `plausible_files_never_echo_a_secret`: an unquoted numeric
/// password was repeated by serde's "invalid type: integer `…`" message.
#[test]
fn a_password_of_the_wrong_type_is_not_repeated() {
    let text = "[[users]]\nusername = \"a\"\npassword = 100000000000\n";
    let err = parse_domain_file(text, &[], &[], &PasswordPolicy::default())
        .err()
        .expect("an integer password is refused");
    assert_eq!(err.line, 3);
    assert_eq!(
        err.to_string(),
        "line 3: users[0].password: invalid type: integer, expected a string"
    );
    for (message, redacted) in [
        (
            "invalid type: integer `123`, expected a string",
            "invalid type: integer, expected a string",
        ),
        (
            "invalid type: floating point `1.5`, expected a string",
            "invalid type: floating point, expected a string",
        ),
        (
            r#"invalid value: string "a, expected b", expected a duration"#,
            "invalid value: string, expected a duration",
        ),
        ("invalid type: boolean `true`", "invalid type: boolean"),
        ("unknown field `emial`", "unknown field `emial`"),
    ] {
        assert_eq!(without_value(message), redacted);
    }
}
