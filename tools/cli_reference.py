#!/usr/bin/env python3
"""Writes docs/cli.md from `latchkey --help` of every command.

Run after changing a command or flag (crates/app/tests/docs.rs fails until
the page names each one):  cargo build -p latchkey && python3 tools/cli_reference.py
"""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "debug" / "latchkey"

INTRO = """# Command line

`latchkey` is one binary: the server (`serve`) and the operator's tools,
which work on the same database and master key as the server (from the
same configuration: [configuration](configuration.md)). Every change made
here is checked by the same services as the admin API and the console
(privilege rules included; the operator at the command line holds every
role) and audited with actor `cli` ([admin API](admin-api.md#audit-events)).
Secrets are read from stdin or generated and shown once, never taken as
arguments (they would land in the shell's history and in `ps`).

Two flags carry secrets and are left out of `--help` for that reason:
`--master-key` (env `LATCHKEY_MASTER_KEY`, every command that opens the
database: base64 of 32 bytes, the key that seals signing keys and other
secrets at rest) and `--admin-password` (env `LATCHKEY_ADMIN_PASSWORD`,
`serve` and `config check`: the password of the `admin` user created on
first start; generated and printed once when absent). Prefer the
environment variables, or the configuration file, to the flags.

Every command and flag follows, as `latchkey … --help` prints it
(`tools/cli_reference.py` writes this page; `crates/app/tests/docs.rs`
checks it names each one).
"""


def help_of(path):
    return subprocess.run([str(BINARY), *path, "--help"], capture_output=True, text=True, check=True).stdout


def subcommands(text):
    found = re.search(r"Commands:\n((?:  .*\n)+)", text)
    if not found:
        return []
    return [line.split()[0] for line in found.group(1).splitlines() if line.split() and line.split()[0] != "help"]


def walk(path, out):
    text = help_of(path)
    out.append((path, text))
    for sub in subcommands(text):
        walk(path + [sub], out)


def main():
    pages = []
    walk([], pages)
    parts = [INTRO]
    for path, text in pages:
        title = " ".join(["latchkey", *path])
        parts.append(f"\n## `{title}`\n\n```text\n{text.strip()}\n```\n")
    (ROOT / "docs" / "cli.md").write_text("".join(parts))


if __name__ == "__main__":
    main()
