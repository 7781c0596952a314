//! Configuration from the environment: every option of the TOML file can be
//! set with a `LATCHKEY_*` variable, and every secret can be read from a
//! file named by a `*_FILE` variable (Docker and systemd credentials).
//!
//! A section's option is `LATCHKEY_<SECTION>__<OPTION>` (two underscores
//! between them): `LATCHKEY_LOCKOUT__PAIR_THRESHOLD=10`,
//! `LATCHKEY_KEYS__ROTATE_EVERY=90d`,
//! `LATCHKEY_RATE_LIMIT__PER_IP='{ per_second = 20, burst = 40 }'`.
//! The top-level options without a flag of their own are
//! `LATCHKEY_TRUSTED_PROXIES` and `LATCHKEY_TRUSTED_PROXY_HEADER`; the others
//! (`LATCHKEY_LISTEN`, …) are the flags' variables.
//!
//! The same works on the command line, above the environment:
//! `--set lockout.pair_threshold=10`, `--set keys.rotate_every=90d`.
//!
//! A value is read as a TOML value when it is one (`10`, `true`,
//! `["10.0.0.0/8"]`, an inline table), else as a string (`90d`,
//! `x-forwarded-for`): so no quoting is needed, and a value such as
//! `012345`, which is no TOML number, stays the string it looks like.

use toml::{Table, Value};

const PREFIX: &str = "LATCHKEY_";

/// Top-level options that only the file and these variables set.
const TOP_LEVEL: &[&str] = &[
    "trusted_proxies",
    "trusted_proxy_header",
    "end_user_ip_clients",
    "internal_endpoints_on_listen",
];

/// One option set through the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvOverride {
    /// The variable, for error messages.
    pub variable: String,
    /// `[section, option]` or `[option]`.
    pub path: Vec<String>,
    pub value: Value,
}

/// The configuration overrides among `vars` (normally `std::env::vars()`).
/// Variables that are not options (`LATCHKEY_LOG`, the flags' own, …) are
/// left alone.
pub fn overrides_from(vars: impl IntoIterator<Item = (String, String)>) -> Vec<EnvOverride> {
    let mut found: Vec<EnvOverride> = vars
        .into_iter()
        .filter_map(|(variable, raw)| {
            let name = variable.strip_prefix(PREFIX)?.to_ascii_lowercase();
            let path: Vec<String> = match name.split_once("__") {
                Some((section, option)) if !section.is_empty() && !option.is_empty() => {
                    vec![section.to_owned(), option.to_owned()]
                }
                Some(_) => return None,
                None if TOP_LEVEL.contains(&name.as_str()) => vec![name],
                None => return None,
            };
            Some(EnvOverride {
                value: parse_value(&raw),
                variable,
                path,
            })
        })
        .collect();
    // Deterministic order, so the first error reported is always the same.
    found.sort_by(|a, b| a.variable.cmp(&b.variable));
    found
}

/// `--set SECTION.OPTION=VALUE` (or `OPTION=VALUE` for a top-level
/// option), read like an environment variable's value.
pub fn override_from_flag(text: &str) -> Result<EnvOverride, String> {
    let (key, raw) = text.split_once('=').ok_or_else(|| {
        format!("--set {text}: write OPTION=VALUE, e.g. lockout.pair_threshold=10")
    })?;
    let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
    if path.len() > 2 || path.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "--set {text}: the option is SECTION.OPTION or OPTION, e.g. lockout.pair_threshold"
        ));
    }
    Ok(EnvOverride {
        variable: format!("--set {}", key.trim()),
        path,
        value: parse_value(raw),
    })
}

fn parse_value(raw: &str) -> Value {
    // A TOML value parses as the right-hand side of a key.
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// Writes `over` into `table` (the parsed file). Fails, naming the
/// variable, when it names a section that is not a table in the file.
pub fn apply(table: &mut Table, over: &EnvOverride) -> Result<(), String> {
    match over.path.as_slice() {
        [option] => {
            table.insert(option.clone(), over.value.clone());
            Ok(())
        }
        [section, option] => {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(inner) => {
                    inner.insert(option.clone(), over.value.clone());
                    Ok(())
                }
                _ => Err(format!("{}: {section} is not a section", over.variable)),
            }
        }
        _ => Err(format!("{}: not an option", over.variable)),
    }
}

/// A secret given directly (`value`, from `NAME` or a flag) or in the file
/// named by `NAME_FILE`; one of them at most. A trailing newline of the
/// file is not part of the secret.
pub fn secret(
    name: &str,
    value: Option<String>,
    file_variable: Option<String>,
) -> Result<Option<String>, String> {
    match (value, file_variable) {
        (Some(_), Some(_)) => Err(format!(
            "{name} and {name}_FILE are both set; set one of them"
        )),
        (Some(value), None) => Ok(Some(value)),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{name}_FILE: cannot read {path}: {e}"))?;
            let secret = text.trim_end_matches(['\n', '\r']).to_owned();
            if secret.is_empty() {
                return Err(format!("{name}_FILE: {path} is empty"));
            }
            Ok(Some(secret))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_options_are_taken_and_values_are_typed() {
        let found = overrides_from(vars(&[
            ("LATCHKEY_LOG", "debug"),
            ("LATCHKEY_LISTEN", "0.0.0.0:1"),
            ("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "10"),
            ("LATCHKEY_KEYS__ROTATE_EVERY", "90d"),
            ("LATCHKEY_PASSWORD_POLICY__REJECT_BREACHED", "false"),
            ("LATCHKEY_TRUSTED_PROXIES", r#"["10.0.0.0/8"]"#),
            (
                "LATCHKEY_RATE_LIMIT__PER_IP",
                "{ per_second = 5, burst = 9 }",
            ),
            ("LATCHKEY_AUDIT__RETENTION", "012345"),
            ("LATCHKEY___X", "1"),
            ("OTHER__THING", "1"),
        ]));
        let by_name = |n: &str| {
            found
                .iter()
                .find(|o| o.variable == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        assert_eq!(found.len(), 6, "{found:?}");
        assert_eq!(
            by_name("LATCHKEY_LOCKOUT__PAIR_THRESHOLD").value,
            Value::Integer(10)
        );
        assert_eq!(
            by_name("LATCHKEY_LOCKOUT__PAIR_THRESHOLD").path,
            ["lockout", "pair_threshold"]
        );
        assert_eq!(
            by_name("LATCHKEY_KEYS__ROTATE_EVERY").value,
            Value::String("90d".into())
        );
        assert_eq!(
            by_name("LATCHKEY_PASSWORD_POLICY__REJECT_BREACHED").value,
            Value::Boolean(false)
        );
        assert!(by_name("LATCHKEY_TRUSTED_PROXIES").value.is_array());
        assert!(by_name("LATCHKEY_RATE_LIMIT__PER_IP").value.is_table());
        assert_eq!(
            by_name("LATCHKEY_AUDIT__RETENTION").value,
            Value::String("012345".into()),
            "not a TOML number: stays a string"
        );
    }

    #[test]
    fn set_flags_name_an_option_and_a_value() {
        let over = override_from_flag("lockout.pair_threshold=10").unwrap();
        assert_eq!(over.path, ["lockout", "pair_threshold"]);
        assert_eq!(over.value, Value::Integer(10));
        assert_eq!(over.variable, "--set lockout.pair_threshold");
        let top = override_from_flag("trusted_proxy_header=forwarded").unwrap();
        assert_eq!(top.path, ["trusted_proxy_header"]);
        assert_eq!(top.value, Value::String("forwarded".into()));
        assert_eq!(
            override_from_flag("keys.rotate_every=90d").unwrap().value,
            Value::String("90d".into())
        );
        for bad in ["lockout.pair_threshold", "a.b.c=1", ".x=1", "=1"] {
            assert!(override_from_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_come_from_one_place() {
        let dir = std::env::temp_dir().join(format!("latchkey-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "s3cret\n").unwrap();
        let file = Some(path.display().to_string());
        assert_eq!(
            secret("LATCHKEY_X", None, file.clone()).unwrap().as_deref(),
            Some("s3cret")
        );
        assert!(
            secret("LATCHKEY_X", Some("a".into()), file)
                .unwrap_err()
                .contains("both set")
        );
        assert!(
            secret("LATCHKEY_X", None, Some("/no/such/file".into()))
                .unwrap_err()
                .starts_with("LATCHKEY_X_FILE: cannot read /no/such/file")
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(
            secret("LATCHKEY_X", None, Some(path.display().to_string()))
                .unwrap_err()
                .contains("is empty")
        );
        assert_eq!(secret("LATCHKEY_X", None, None).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
