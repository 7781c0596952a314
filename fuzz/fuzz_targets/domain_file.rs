//! The domain file, as `latchkey apply` parses it: every refusal names a
//! line of the text, and no refusal repeats the value of a `password` or
//! `client_secret` line.
#![no_main]

use latchkey_core::domain::parse_domain_file;
use latchkey_core::model::ResourceServer;
use latchkey_core::password_policy::PasswordPolicy;
use libfuzzer_sys::fuzz_target;

/// Where the values of `password = …` and `client_secret = …` lines are
/// (quotes stripped), when long enough that finding one in a message is
/// no coincidence.
fn secrets(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut found = vec![];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some((key, value)) = line.split_once('=')
            && matches!(key.trim(), "password" | "client_secret")
        {
            let trimmed = value.trim().trim_matches(['"', '\'']);
            if trimmed.len() >= 8 {
                let start = offset + key.len() + 1 + value.find(trimmed).unwrap_or(0);
                found.push(start..start + trimmed.len());
            }
        }
        offset += line.len();
    }
    found
}

fn parse(text: &str) -> Result<(), latchkey_core::domain::DomainFileError> {
    let known = [ResourceServer {
        id: "rs0".into(),
        name: "Existing".into(),
        audience: "https://existing.example.com/".into(),
        scopes: vec!["read".into()],
        created_at: 0,
        updated_at: 0,
    }];
    parse_domain_file(text, &["ops".into()], &known, &PasswordPolicy::default()).map(drop)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = parse(text) else {
        return;
    };
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    let shown = e.to_string();
    let secrets = secrets(text);
    if !secrets.iter().any(|r| shown.contains(&text[r.clone()])) {
        return;
    }
    // The message contains a secret's text: a leak only if that text came
    // from the secret. The fuzzer also writes passwords that copy the
    // message's own wording, so parse again with every secret blanked out
    // (same length, so every span stays put) and see whether it remains.
    let mut blanked = text.to_owned();
    for r in &secrets {
        blanked.replace_range(r.clone(), &"Q".repeat(r.len()));
    }
    let shown_blanked = parse(&blanked)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    for r in &secrets {
        let secret = &text[r.clone()];
        assert!(
            !shown.contains(secret) || shown_blanked.contains(secret),
            "the error repeats {secret:?}: {shown}"
        );
    }
});
