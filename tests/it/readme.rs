//! The README as a newcomer reads it: the files it names exist, the scripts it runs can be run,
//! and its URLs and `curl` lines answer against a server listening as `cargo run` does.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::{TestApp, spawn_app_with};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md")
}

/// Every `code` span of the README.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The app listening on `localhost` (both loopback addresses), like the defaults.
async fn spawn_like_cargo_run() -> TestApp {
    spawn_app_with(|config| {
        config.http_addr = kino::config::ListenAddr::localhost(0);
        config.https_addr = kino::config::ListenAddr::localhost(0);
    })
    .await
}

/// A README line written for the default ports, pointed at the test server's ports and CA.
fn localised(text: &str, app: &TestApp) -> String {
    let ca = app.cert_dir().join("ca.pem");
    text.replace(":8443", &format!(":{}", app.https.port()))
        .replace(":8080", &format!(":{}", app.http.port()))
        .replace("certs/ca.pem", ca.to_str().unwrap())
}

#[test]
fn every_repository_path_the_readme_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tops = [
        "src/",
        "tests/",
        "benches/",
        "crates/",
        "dev/",
        "docs/",
        "media/",
        "static/",
        "templates/",
        "migrations/",
        ".ci/",
    ];
    let mut checked = 0;
    for span in code_spans(&readme()) {
        let path = span.split_whitespace().next().unwrap_or("");
        let named = tops.iter().any(|top| path.starts_with(top))
            || ["Cargo.toml", "config.example.toml", "rust-toolchain.toml", "LICENSE", "ARCHITECTURE.md"]
                .contains(&path);
        // Paths with placeholders (`data/images/<id>/…`) or globs are patterns, not files.
        if !named || path.contains(['<', '*', '{']) {
            continue;
        }
        assert!(root.join(path).exists(), "the README names {path}, which is not in the repository");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} paths found: has the README's format changed?");
}

#[test]
fn scripts_the_readme_runs_are_executable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let scripts: Vec<&str> = code_spans(&text)
        .into_iter()
        .filter(|s| s.starts_with("benches/") || s.starts_with("dev/"))
        .filter_map(|s| s.split_whitespace().next().filter(|w| w.ends_with(".sh")))
        .collect();
    assert!(!scripts.is_empty(), "the README runs benches/peers.sh");
    for script in scripts {
        let mode = std::fs::metadata(root.join(script)).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{script} is shown as a command but has no run bit");
    }
}

#[tokio::test]
async fn quick_start_urls_answer_on_localhost() {
    let app = spawn_like_cargo_run().await;
    let text = readme();
    let quick_start = text.split("## Configuration").next().unwrap();
    let urls: Vec<&str> = quick_start
        .split(['<', '>'])
        .filter(|s| s.starts_with("https://localhost:") || s.starts_with("http://localhost:"))
        .collect();
    assert!(urls.len() >= 2, "the quick start links the HTTPS and plain origins: {urls:?}");
    let paths: Vec<&str> = code_spans(quick_start)
        .into_iter()
        .filter(|s| s.starts_with('/') && !s.contains('{') && !s.contains(' '))
        .flat_map(|s| s.split(", "))
        .collect();
    assert!(paths.contains(&"/healthz") && paths.contains(&"/api/videos"), "{paths:?}");

    let ca = reqwest::Certificate::from_pem(&app.ca_pem).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    for url in urls {
        let url = localised(url, &app);
        let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(response.status(), 200, "{url}");
        for path in &paths {
            let url = format!("{}{}", url.trim_end_matches('/'), path);
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
        }
    }
    // The stream URL the table points to is the one `/api/videos` gives.
    let videos: serde_json::Value =
        client.get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    let stream = videos["videos"][0]["stream_url"].as_str().unwrap();
    assert!(stream.starts_with("/stream/"), "{stream}");
    let response = client.get(app.tls_url(stream)).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!(response.status(), 206);
}

#[tokio::test]
async fn curl_lines_in_the_readme_work_as_printed() {
    let Ok(version) = Command::new("curl").arg("--version").output() else {
        eprintln!("\n!!! SKIPPED: curl is not installed !!!\n");
        return;
    };
    let has_http3 = String::from_utf8_lossy(&version.stdout).contains("HTTP3");
    let app = spawn_like_cargo_run().await;
    let text = readme();
    let lines: Vec<&str> = code_spans(&text).into_iter().filter(|s| s.starts_with("curl ")).collect();
    assert!(lines.len() >= 3, "{lines:?}");
    let mut ran = 0;
    for line in lines {
        if line.contains("--http3") && !has_http3 {
            continue; // The README says Debian's curl has no HTTP/3.
        }
        let line = localised(line, &app);
        let mut words = line.split_whitespace();
        let program = words.next().unwrap();
        let output = tokio::task::spawn_blocking({
            let args: Vec<String> = words.map(str::to_owned).collect();
            let program = program.to_owned();
            move || {
                Command::new(program)
                    .args(&args)
                    .args(["--fail", "--silent", "--show-error", "--max-time", "10", "-o", "/dev/null"])
                    .output()
            }
        })
        .await
        .unwrap()
        .unwrap();
        assert!(output.status.success(), "{line}: {}", String::from_utf8_lossy(&output.stderr));
        ran += 1;
    }
    assert!(ran >= 2, "ran {ran} curl lines");
}

#[tokio::test]
async fn the_upload_commands_work_as_printed() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("\n!!! SKIPPED: curl is not installed !!!\n");
        return;
    }
    let app = spawn_like_cargo_run().await;
    let text = readme();
    let section = text.split("**Uploads need an uploader**").nth(1).expect("the uploads paragraph");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("its commands");
    assert!(block.contains("/api/auth/token") && block.contains("/api/videos"), "{block}");
    // The account the README's `kino user add` line makes, made over the API here.
    let account = serde_json::json!({"email": "you@example.org", "password": "a long passphrase"});
    let signed_up = app.plain().post(app.plain_url("/api/users")).json(&account).send().await.unwrap();
    assert_eq!(signed_up.status(), 201);
    let script = localised(block, &app);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let video: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(video["stream_url"].as_str().is_some_and(|u| u.starts_with("/stream/")), "{video}");
}
