//! The dependency licence policy, checked against every package in `Cargo.lock`.
//!
//! kino is MIT OR Apache-2.0, and everything it links must let it stay that: permissive licences
//! only. A 40-line check here instead of cargo-deny, whose build costs minutes on a 2-core CI
//! machine and whose advisory database cannot be fetched from it.

use std::process::Command;

/// Permissive licences a dependency may use (SPDX ids).
const ALLOWED: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "BSL-1.0",
    "CC0-1.0",
    "Unlicense",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "CDLA-Permissive-2.0",
];

/// Whether an SPDX expression (`A OR B`, `A AND (B OR C)`, `A WITH exception`, old `A/B`) can
/// be satisfied with allowed licences.
fn acceptable(expression: &str) -> bool {
    let spaced = expression.replace('/', " OR ").replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut position = 0;
    let ok = or_expression(&tokens, &mut position);
    ok && position == tokens.len()
}

fn or_expression(tokens: &[&str], at: &mut usize) -> bool {
    let mut ok = and_expression(tokens, at);
    while tokens.get(*at) == Some(&"OR") {
        *at += 1;
        ok |= and_expression(tokens, at);
    }
    ok
}

fn and_expression(tokens: &[&str], at: &mut usize) -> bool {
    let mut ok = licence(tokens, at);
    while tokens.get(*at) == Some(&"AND") {
        *at += 1;
        ok &= licence(tokens, at);
    }
    ok
}

fn licence(tokens: &[&str], at: &mut usize) -> bool {
    let Some(&token) = tokens.get(*at) else { return false };
    *at += 1;
    let ok = if token == "(" {
        let inner = or_expression(tokens, at);
        let closed = tokens.get(*at) == Some(&")");
        *at += 1;
        inner && closed
    } else {
        ALLOWED.contains(&token)
    };
    // Exceptions (e.g. LLVM-exception) only ever grant more rights.
    if tokens.get(*at) == Some(&"WITH") {
        *at += 2;
    }
    ok
}

#[test]
fn spdx_expressions_are_evaluated() {
    assert!(acceptable("MIT OR Apache-2.0"));
    assert!(acceptable("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(acceptable("Apache-2.0 WITH LLVM-exception OR MIT"));
    assert!(acceptable("MIT/Apache-2.0"));
    assert!(acceptable("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(!acceptable("GPL-3.0-only"));
    assert!(!acceptable("MIT AND GPL-2.0-only"));
    assert!(!acceptable("(MIT"));
}

#[test]
fn every_dependency_has_a_permissive_licence() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    assert!(packages.len() > 100, "the whole dependency tree is checked");
    let refused: Vec<String> = packages
        .iter()
        .filter(|p| !p["license"].as_str().is_some_and(acceptable))
        .map(|p| format!("{} {}: {}", p["name"], p["version"], p["license"]))
        .collect();
    assert!(refused.is_empty(), "licences outside the policy:\n{}", refused.join("\n"));
}
