//! The `kino` binary: layered configuration, `${VAR}` references, production rules, signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `kino <args>` in `dir`, with no KINO_* variable inherited from the test's environment.
pub(crate) fn kino(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kino"));
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("KINO_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    kino(dir, args, env).output().expect("kino runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_documents_every_flag_with_its_environment_twin() {
    let dir = tempfile::tempdir().unwrap();
    let help = stdout(&run(dir.path(), &["--help"], &[]));
    for twin in
        ["KINO_HTTP_ADDR", "KINO_HTTPS_ADDR", "KINO_DATA_DIR", "KINO_MEDIA_DIRS", "KINO_ENV", "KINO_CONFIG"]
    {
        assert!(help.contains(twin), "{twin} missing from:\n{help}");
    }
    for command in ["serve", "cert", "config"] {
        assert!(help.contains(command), "{command} missing");
    }
}

#[test]
fn layers_apply_in_order_file_dotenv_environment_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kino.toml"),
        "http_addr = \"127.0.0.1:1001\"\nhttps_addr = \"127.0.0.1:1002\"\ndata_dir = \"from-file\"\n[limits]\nidle_timeout = \"5s\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "KINO_HTTPS_ADDR=127.0.0.1:2002\nKINO_DATA_DIR=from-dotenv\n")
        .unwrap();
    let output = run(
        dir.path(),
        &["config", "--data-dir", "from-flag"],
        &[("KINO_DATA_DIR", "from-env"), ("KINO_LIMITS_IDLE_TIMEOUT", "9s")],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config = stdout(&output);
    assert!(config.contains("http_addr = \"127.0.0.1:1001\""), "file: {config}");
    assert!(config.contains("https_addr = \"127.0.0.1:2002\""), ".env over file: {config}");
    assert!(config.contains("data_dir = \"from-flag\""), "flag over env: {config}");
    assert!(config.contains("idle_timeout = \"9s\""), "env over file, nested: {config}");
}

#[test]
fn variable_references_resolve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "KINO_PUBLIC_URL=https://${KINO_HOST}:8443\n").unwrap();
    let output = run(dir.path(), &["config"], &[("KINO_HOST", "media.example")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout(&output).contains("public_url = \"https://media.example:8443\""), "{}", stdout(&output));

    let output = run(dir.path(), &["config"], &[("KINO_PUBLIC_URL", "https://${NOT_SET_ANYWHERE}/")]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOT_SET_ANYWHERE"));
}

#[test]
fn production_refuses_a_missing_or_default_secret_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (vec![], "KINO_SECRET"),
        (vec![("KINO_SECRET", "change-me")], "example secret"),
        (vec![("KINO_SECRET", "short")], "at least 32"),
    ];
    for (mut env, expected) in cases {
        env.push(("KINO_ENV", "production"));
        let output = run(dir.path(), &["serve"], &env);
        assert!(!output.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
    let typo = run(dir.path(), &["serve"], &[("KINO_ENV", "prod")]);
    assert!(!typo.status.success(), "a misspelt environment must not fall back to development");
    assert!(String::from_utf8_lossy(&typo.stderr).contains("prod"));

    let strong = "0123456789abcdef0123456789abcdef-strong";
    let output = run(dir.path(), &["config"], &[("KINO_ENV", "production"), ("KINO_SECRET", strong)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout(&output).contains(strong), "the secret is redacted");
    assert!(stdout(&output).contains("[redacted]"));
}

#[test]
fn cert_prints_the_spki_hash_and_chrome_flags() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["cert"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = stdout(&output);
    assert!(text.contains("--origin-to-force-quic-on=localhost:8443"), "{text}");
    assert!(text.contains("--ignore-certificate-errors-spki-list="), "{text}");
    assert!(dir.path().join("certs/ca.pem").exists());
}

#[test]
fn serve_starts_answers_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = kino(
        dir.path(),
        &["serve", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"],
        &[("KINO_LOG_FORMAT", "json"), ("KINO_SECRET", "a-test-secret-that-is-long-enough-000")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let http = loop {
        assert!(Instant::now() < deadline, "no start-up banner");
        let line = lines.next().expect("log line").unwrap();
        assert!(!line.contains("a-test-secret"), "secret in the log: {line}");
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if let Some(url) = log["http"].as_str() {
            break url.to_owned();
        }
    };
    let addr = http.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: kino\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("stopped"))), "logged its stop");
}

#[test]
fn scan_catalogues_the_media_roots_and_is_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let media = concat!(env!("CARGO_MANIFEST_DIR"), "/media");
    let first = run(dir.path(), &["scan", "--media-dir", media], &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let files = std::fs::read_dir(media).unwrap().count();
    assert_eq!(
        stdout(&first).trim(),
        format!("{files} files, {files} new or changed, 0 removed, 0 videos unreadable")
    );
    assert!(dir.path().join("data/kino.db").exists());
    let second = run(dir.path(), &["scan", "--media-dir", media], &[]);
    assert_eq!(
        stdout(&second).trim(),
        format!("{files} files, 0 new or changed, 0 removed, 0 videos unreadable")
    );
}

#[test]
fn a_zero_send_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["config"], &[("KINO_LIMITS_SEND_TIMEOUT", "0s")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.send_timeout"), "{stderr}");
}

fn doctor(dir: &Path, http: &str, https: &str) -> Output {
    let media = concat!(env!("CARGO_MANIFEST_DIR"), "/media");
    run(dir, &["doctor", "--http-addr", http, "--https-addr", https, "--media-dir", media], &[])
}

#[test]
fn doctor_checks_the_setup_and_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = doctor(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let text = stdout(&fresh);
    assert!(fresh.status.success(), "warnings only on a fresh dir:\n{text}");
    for topic in ["ports", "certificate", "data dir", "database", "media", "clock", "fd limit", "udp buffers"]
    {
        assert!(text.lines().any(|l| l[6..].starts_with(topic)), "{topic} missing:\n{text}");
    }
    assert!(text.contains("warn  certificate  none in certs yet"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    media") && l.ends_with(" files")), "{text}");

    // Once the certificates exist they are checked, and the untrusted CA gets the hint.
    assert!(run(dir.path(), &["cert"], &[]).status.success());
    let text = stdout(&doctor(dir.path(), "127.0.0.1:0", "127.0.0.1:0"));
    assert!(text.contains("ok    certificate  certs/cert.pem valid for "), "{text}");
    assert!(text.contains("`kino cert` prints the Chromium command"), "{text}");

    // A port another process holds fails, with the fix, and so does the exit code.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let failed = doctor(dir.path(), &format!("127.0.0.1:{port}"), "127.0.0.1:0");
    let text = stdout(&failed);
    assert!(!failed.status.success(), "{text}");
    assert!(text.contains(&format!("FAIL  ports        127.0.0.1:{port} (TCP) is in use")), "{text}");
    assert!(text.contains(&format!("sport = :{port}")) && text.contains("--http-addr"), "{text}");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("doctor: 1 check failed"));

    // A secret others can read fails too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let secret = dir.path().join("data/secret");
    std::fs::write(&secret, "x".repeat(64)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = stdout(&doctor(dir.path(), "127.0.0.1:0", "127.0.0.1:0"));
    assert!(text.contains("FAIL  secret") && text.contains("chmod 600 data/secret"), "{text}");
}
