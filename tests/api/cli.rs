//! The `baton` binary: configuration errors are one clear line, never print secrets, its help
//! lists only the commands an operator runs, and `docs/configuration.md` lists exactly the
//! settings `baton serve` takes.

use std::collections::BTreeSet;
use std::process::Command;

fn baton(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run baton");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://baton:db-password-xyz@127.0.0.1:1/baton",
    ),
    ("BATON_PUBLIC_URL", "https://baton.example.com"),
    ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
    ("TWILIO_AUTH_TOKEN", "auth-token-should-never-print"),
    ("TWILIO_WORKSPACE_SID", "WS00000000000000000000000000000001"),
    ("BATON_OPS_TOKEN", "ops-token-should-never-print"),
];

fn with(
    overrides: &[(&'static str, &'static str)],
    without: &[&str],
) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = GOOD
        .iter()
        .copied()
        .filter(|(k, _)| !without.contains(k))
        .collect();
    for (k, v) in overrides {
        env.retain(|(key, _)| key != k);
        env.push((k, v));
    }
    env
}

fn assert_one_line(stderr: &str, expected: &str) {
    assert_eq!(
        stderr.trim_end(),
        format!("baton: configuration error: {expected}")
    );
    for secret in [
        "auth-token-should-never-print",
        "ops-token-should-never-print",
        "db-password-xyz",
    ] {
        assert!(!stderr.contains(secret), "secret printed: {stderr}");
    }
}

#[test]
fn missing_settings_are_named() {
    let (code, stderr) = baton(&with(&[], &["TWILIO_ACCOUNT_SID"]));
    assert_eq!(code, Some(2));
    assert_one_line(&stderr, "TWILIO_ACCOUNT_SID is not set");
    let (code, stderr) = baton(&[]);
    assert_eq!(code, Some(2));
    assert_one_line(&stderr, "DATABASE_URL is not set");
}

#[test]
fn malformed_settings_are_named() {
    let (code, stderr) = baton(&with(
        &[("TWILIO_WORKSPACE_SID", "WQ00000000000000000000000000000001")],
        &[],
    ));
    assert_eq!(code, Some(2));
    assert_one_line(
        &stderr,
        "TWILIO_WORKSPACE_SID must start with WS (a TaskRouter workspace SID)",
    );
    let (_, stderr) = baton(&with(&[("BATON_PUBLIC_URL", "baton.example.com")], &[]));
    assert_one_line(
        &stderr,
        "BATON_PUBLIC_URL is not a valid URL (relative URL without a base)",
    );
    let (_, stderr) = baton(&with(&[("BATON_LISTEN", "everywhere")], &[]));
    assert_one_line(
        &stderr,
        "BATON_LISTEN must be an address and port such as 127.0.0.1:8080",
    );
}

#[test]
fn backfill_settings_errors_are_one_line_too() {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["backfill", "events", "--since", "last tuesday"])
        .env_clear()
        .envs(GOOD.iter().copied())
        .output()
        .expect("run baton");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line(
        &String::from_utf8_lossy(&out.stderr),
        "--since \"last tuesday\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["backfill", "events", "--since", "2d"])
        .env_clear()
        .envs(with(&[], &["TWILIO_WORKSPACE_SID"]))
        .output()
        .expect("run baton");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line(
        &String::from_utf8_lossy(&out.stderr),
        "TWILIO_WORKSPACE_SID is not set",
    );
}

/// The subcommands `baton --help` lists, in its order.
fn listed_commands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("--help")
        .env_clear()
        .output()
        .expect("run baton");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let section = help
        .split_once("\nCommands:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no Commands section in:\n{help}"));
    section
        .lines()
        .take_while(|line| !line.trim().is_empty())
        // A command's line starts two spaces in; longer indents continue a description.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_lists_only_the_operator_commands() {
    assert_eq!(
        listed_commands(),
        ["serve", "migrate", "sweep", "backfill", "history", "workflow", "help"]
    );
    // The load and benchmark tools are `baton-load`'s, not baton's.
    for tool in ["loadgen", "loadgen-e2e", "bench-history"] {
        let out = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args([tool, "--help"])
            .env_clear()
            .output()
            .expect("run baton");
        assert_eq!(out.status.code(), Some(2), "baton {tool}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"),
            "baton {tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What `baton serve --help` prints: every `--flag` of its option lines and every variable of
/// its `[env: NAME=…]` (or `[env: NAME]` for a hidden value) annotations.
fn serve_help_settings() -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("run baton");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let flags = help
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .flat_map(|line| {
            // The option's own names come before its value name and description.
            line.split_whitespace()
                .take_while(|word| word.starts_with('-'))
                .map(|word| word.trim_end_matches(',').to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|flag| flag.starts_with("--"))
        .collect();
    let variables = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .collect();
    (flags, variables)
}

/// The variables (first column) and flags (second column) of the settings table of
/// `docs/configuration.md`: the section headed "## Settings of `baton serve`".
fn documented_serve_settings() -> (BTreeSet<String>, BTreeSet<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let doc = std::fs::read_to_string(path).expect("read docs/configuration.md");
    let section = doc
        .split_once("\n## Settings of `baton serve`")
        .map(|(_, rest)| rest)
        .expect("docs/configuration.md has a section \"## Settings of `baton serve`\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    let backticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let (mut flags, mut variables) = (BTreeSet::new(), BTreeSet::new());
    for row in section.lines().filter(|line| line.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        if cells.len() < 4 {
            continue;
        }
        variables.extend(backticked(cells[1]));
        flags.extend(
            backticked(cells[2])
                .into_iter()
                .filter(|f| f.starts_with('-')),
        );
    }
    (flags, variables)
}

#[test]
fn every_serve_setting_is_documented_and_every_documented_one_exists() {
    let (help_flags, help_variables) = serve_help_settings();
    assert!(
        help_flags.contains("--database-url") && help_variables.contains("DATABASE_URL"),
        "--help was not read: {help_flags:?} {help_variables:?}"
    );
    let (doc_flags, doc_variables) = documented_serve_settings();
    let clap_own = ["--help", "-h", "--version", "-V"];
    let undocumented: Vec<&String> = help_flags
        .iter()
        .filter(|f| !clap_own.contains(&f.as_str()))
        .filter(|f| !doc_flags.contains(*f))
        .chain(help_variables.difference(&doc_variables))
        .collect();
    assert!(
        undocumented.is_empty(),
        "`baton serve --help` prints settings docs/configuration.md does not list: {undocumented:?}"
    );
    let stale: Vec<&String> = doc_flags
        .iter()
        .filter(|f| !clap_own.contains(&f.as_str()))
        .filter(|f| !help_flags.contains(*f))
        .chain(doc_variables.difference(&help_variables))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/configuration.md lists settings `baton serve --help` no longer prints: {stale:?}"
    );
}
