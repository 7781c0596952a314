//! The README and `docs/` point only at files inside the repository, and
//! every file they link to exists.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// README.md and every docs/*.md.
fn documents() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

#[test]
fn links_resolve_inside_the_repository() {
    let root = workspace();
    let mut problems = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(&root).unwrap().display().to_string();
        for target in links(&text) {
            match doc.parent().unwrap().join(&target).canonicalize() {
                Ok(found) if found.starts_with(&root) => {}
                Ok(_) => problems.push(format!("{name}: {target} is outside the repository")),
                Err(_) => problems.push(format!("{name}: {target} does not exist")),
            }
        }
        // A path written as code, outside any link, is a pointer too.
        for (i, code) in text.split('`').enumerate() {
            if i % 2 == 1 && (code.starts_with("../") || code.contains("/shared/")) {
                problems.push(format!("{name}: `{code}` points outside the repository"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_link_finder_finds_links() {
    assert_eq!(
        links("see [a](docs/a.md#x), [b](https://example.com) and [c](../c.md)"),
        ["docs/a.md", "../c.md"]
    );
}

/// docs/cli.md is the command line's reference: a section per command,
/// naming each of its flags (the hidden ones, which carry secrets, in its
/// introduction).
#[test]
fn every_command_and_flag_is_documented() {
    use clap::CommandFactory as _;
    let text = std::fs::read_to_string(workspace().join("docs/cli.md")).unwrap();
    let mut missing = Vec::new();
    fn walk(command: &clap::Command, path: &str, text: &str, missing: &mut Vec<String>) {
        let heading = format!("## `{path}`");
        let section = match text.split_once(&heading) {
            Some((_, rest)) => rest.split("\n## ").next().unwrap_or_default(),
            None => {
                missing.push(format!("no section {heading}"));
                ""
            }
        };
        for arg in command.get_arguments() {
            // Hidden flags (secrets) are documented once, in the intro.
            if let Some(long) = arg.get_long()
                && !arg.is_hide_set()
                && !section.contains(&format!("--{long}"))
            {
                missing.push(format!("{path}: --{long}"));
            }
        }
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &format!("{path} {}", sub.get_name()), text, missing);
        }
    }
    for hidden in ["--master-key", "--admin-password"] {
        if !text
            .split("\n## ")
            .next()
            .unwrap_or_default()
            .contains(hidden)
        {
            missing.push(format!("the introduction: {hidden}"));
        }
    }
    walk(
        &latchkey::cli::Cli::command(),
        "latchkey",
        &text,
        &mut missing,
    );
    assert!(missing.is_empty(), "docs/cli.md lacks: {missing:#?}");
}
