//! `kino secret encrypt` / `kino secret decrypt` against the real binary (stdin to stdout, the
//! key derived from the server secret), and the `[mail]` and `[auth]` settings from `KINO_*`.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::cli::kino;

const SECRET: &str = "cli-secret-cli-secret-cli-secret-42";

/// `kino secret <action>` with `input` on stdin.
fn secret(dir: &Path, action: &str, input: &str, env: &[(&str, &str)]) -> Output {
    let mut child = kino(dir, &["secret", action], env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kino runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_value_encrypted_on_the_command_line_decrypts_only_with_the_same_secret() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KINO_SECRET", SECRET)];
    let encrypted = secret(dir.path(), "encrypt", "smtp p@ss wörd\n", &env);
    assert!(encrypted.status.success(), "{}", text(&encrypted.stderr));
    let value = text(&encrypted.stdout);
    assert!(value.starts_with("v1.") && value.ends_with('\n') && !value.contains("p@ss"), "{value}");
    assert_ne!(
        text(&secret(dir.path(), "encrypt", "smtp p@ss wörd\n", &env).stdout),
        value,
        "a nonce per value"
    );

    let decrypted = secret(dir.path(), "decrypt", &value, &env);
    assert!(decrypted.status.success(), "{}", text(&decrypted.stderr));
    assert_eq!(text(&decrypted.stdout), "smtp p@ss wörd\n");

    let other =
        secret(dir.path(), "decrypt", &value, &[("KINO_SECRET", "another-secret-another-secret-xyz")]);
    assert!(!other.status.success());
    assert!(
        text(&other.stderr).contains("does not decrypt with this server secret"),
        "{}",
        text(&other.stderr)
    );
    assert!(other.stdout.is_empty());

    // One character changed in the middle: refused, nothing printed.
    let mut tampered = value.trim_end().to_owned().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = secret(dir.path(), "decrypt", &String::from_utf8(tampered).unwrap(), &env);
    assert!(!tampered.status.success() && tampered.stdout.is_empty());
    assert!(text(&tampered.stderr).contains("does not decrypt"), "{}", text(&tampered.stderr));

    let plain = secret(dir.path(), "decrypt", "not encrypted", &env);
    assert!(!plain.status.success());
    assert!(text(&plain.stderr).contains("expected v1.<base64url>"), "{}", text(&plain.stderr));
}

#[test]
fn without_a_configured_secret_the_data_dirs_generated_one_is_used_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let value = text(&secret(dir.path(), "encrypt", "hunter2", &[]).stdout);
    assert!(dir.path().join("data/secret").exists(), "the development secret was generated");
    let decrypted = secret(dir.path(), "decrypt", &value, &[]);
    assert_eq!(text(&decrypted.stdout), "hunter2\n", "{}", text(&decrypted.stderr));
    // An encrypted SMTP password never shows in `kino config`, nor does a plain one.
    let config =
        kino(dir.path(), &["config"], &[("KINO_MAIL_SMTP_PASSWORD", value.trim())]).output().unwrap();
    let shown = text(&config.stdout);
    assert!(shown.contains("smtp_password = \"[redacted]\""), "{shown}");
    assert!(!shown.contains(value.trim()));
}

#[test]
fn mail_and_token_settings_come_from_kino_mail_and_kino_auth_variables() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KINO_MAIL_TRANSPORT", "smtp"),
        ("KINO_MAIL_SMTP_HOST", "smtp.example.org"),
        ("KINO_MAIL_SMTP_PORT", "2525"),
        ("KINO_MAIL_SEND_TIMEOUT", "12s"),
        ("KINO_AUTH_ACCESS_TTL", "5m"),
    ];
    let output = kino(dir.path(), &["config"], &env).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    for line in [
        "transport = \"smtp\"",
        "smtp_host = \"smtp.example.org\"",
        "smtp_port = 2525",
        "send_timeout = \"12s\"",
        "access_ttl = \"5m\"",
    ] {
        assert!(shown.contains(line), "{line} missing in\n{shown}");
    }
    // SMTP without a host is refused, naming the variable to set.
    let output = kino(dir.path(), &["config"], &[("KINO_MAIL_TRANSPORT", "smtp")]).output().unwrap();
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("KINO_MAIL_SMTP_HOST"), "{}", text(&output.stderr));
}
