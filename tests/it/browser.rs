//! A real browser: headless Chromium plays and seeks the samples over HTTP/2 and HTTP/3.
//!
//! Chromium is driven through the DevTools protocol over a WebSocket with a few hand-written
//! commands (navigate, evaluate, screenshot) instead of a CDP crate: the generated bindings of
//! those crates take minutes to compile on a 2-core machine for three commands.
//!
//! Without Chromium these tests print a loud skip, unless `KINO_REQUIRE_BROWSER=1` (CI) makes
//! them fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestApp, spawn_app_with};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with a fresh profile, killed on drop.
pub(crate) struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium, or `None` (after saying so) when it is not installed and not required.
pub(crate) fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    assert!(
        std::env::var("KINO_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "KINO_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)"
    );
    eprintln!("\n!!! SKIPPED: browser test needs {CHROMIUM} (apt-get install chromium) !!!\n");
    None
}

/// Listens on `localhost` (127.0.0.1 and ::1), as `cargo run` does by default: the origin the
/// printed Chromium command opens.
pub(crate) fn on_localhost(config: &mut kino::Config) {
    config.http_addr = kino::config::ListenAddr::localhost(0);
    config.https_addr = kino::config::ListenAddr::localhost(0);
}

/// The app on `localhost`.
pub(crate) async fn spawn_on_localhost() -> TestApp {
    spawn_app_with(on_localhost).await
}

/// What `kino cert` prints for the app's certificates and port: the Chromium command that the
/// README and the start-up log tell people to run, split into its flags and its URL.
pub(crate) fn printed_chrome_command(app: &TestApp) -> (Vec<String>, String) {
    let dir = app.cert_dir();
    let args = [
        "cert",
        "--cert-dir",
        dir.to_str().unwrap(),
        "--https-addr",
        &format!("localhost:{}", app.https.port()),
    ];
    let output = crate::cli::kino(&dir, &args, &[]).output().expect("kino cert runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text.lines().map(str::trim).find(|l| l.starts_with("chromium ")).expect("a chromium line");
    let mut words: Vec<String> = line.split_whitespace().skip(1).map(str::to_owned).collect();
    let url = words.pop().expect("the URL comes last");
    assert!(words.iter().any(|w| w.contains(&app.spki_sha256)), "the printed SPKI is the app's: {line}");
    (words, url)
}

impl Browser {
    /// Starts Chromium with the `flags` kino printed (trust by SPKI hash, forced QUIC); without
    /// `quic` the forced-QUIC flag is replaced by `--disable-quic`, so the page comes over HTTP/2.
    pub(crate) async fn launch(binary: &str, flags: &[String], quic: bool) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new(binary);
        command.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ]);
        command.arg(format!("--user-data-dir={}", profile.path().display()));
        for flag in flags {
            if quic || !flag.starts_with("--origin-to-force-quic-on=") {
                command.arg(flag);
            }
        }
        if !quic {
            command.arg("--disable-quic");
        }
        command.arg("about:blank");
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromium starts");
        let port = devtools_port(profile.path()).await;
        let targets: Value =
            reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await.unwrap().json().await.unwrap();
        let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target");
        let (socket, _) =
            tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        Self { child, _profile: profile, socket, next_id: 0 }
    }

    /// Sends one DevTools command and waits for its result (events in between are skipped).
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(result) => result,
            Err(reply) => panic!("{method} failed: {reply}"),
        }
    }

    /// Sends one DevTools command; its result, or the whole reply when DevTools answers with an
    /// error.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let frame =
                tokio::time::timeout_at(deadline, self.socket.next()).await.expect("DevTools answers");
            let Message::Text(text) = frame.unwrap().unwrap() else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                return if reply.get("error").is_some() { Err(reply) } else { Ok(reply["result"].clone()) };
            }
        }
    }

    /// Evaluates a JavaScript expression (awaiting promises) and returns its value.
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Navigates and waits until the document has loaded.
    pub(crate) async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'").await;
    }

    /// Polls `condition` until it holds. An evaluation that lands while the page navigates is
    /// refused by DevTools ("execution context was destroyed"): that is "not yet", not a failure.
    pub(crate) async fn wait_for(&mut self, condition: &str) {
        let start = Instant::now();
        let params = json!({ "expression": format!("!!({condition})"), "returnByValue": true });
        loop {
            let answer = self.try_call("Runtime.evaluate", params.clone()).await;
            if answer.as_ref().is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {condition}: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page when `KINO_SCREENSHOTS` names a folder (used for the README).
    pub(crate) async fn screenshot(&mut self, name: &str) {
        let Ok(folder) = std::env::var("KINO_SCREENSHOTS") else { return };
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(PathBuf::from(folder).join(name), png).unwrap();
    }
}

/// Waits for Chromium to write the port it chose into the profile.
async fn devtools_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some(port) = text.lines().next().and_then(|l| l.parse().ok())
        {
            return port;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Chromium did not open its DevTools port");
}

/// Plays the video on the current page for a moment, seeks to the middle, reports what happened.
pub(crate) const PLAY_AND_SEEK: &str = r#"(async () => {
  const v = document.querySelector('video');
  v.muted = true;
  const event = (name, ms) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(name + ' timed out; error ' + (v.error && v.error.message))), ms);
    v.addEventListener(name, () => { clearTimeout(timer); resolve(); }, { once: true });
    v.addEventListener('error', () => reject(new Error('media error ' + (v.error && v.error.message))), { once: true });
  });
  if (v.readyState < 3) await event('canplay', 15000);
  const ready = v.readyState;
  await v.play();
  const start = v.currentTime;
  await new Promise(r => setTimeout(r, 1200));
  const played = v.currentTime;
  const target = v.duration / 2;
  const seeked = event('seeked', 15000);
  v.currentTime = target;
  await seeked;
  return { ready, start, played, target, landed: v.currentTime, duration: v.duration, error: v.error && v.error.message };
})()"#;

pub(crate) async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.plain().get(app.plain_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Opens the library at `url` (the printed `https://localhost:<port>/`), clicks a video, plays it
/// and seeks; returns the player's report.
async fn play_from_library(browser: &mut Browser, url: &str, title: &str) -> Value {
    browser.open(url).await;
    browser.wait_for(LOADED).await;
    assert_eq!(browser.eval(STYLED_WITH_IMAGES).await, true, "the page's CSP blocks nothing it loads");
    browser.screenshot("library.png").await;
    let click = format!(
        "[...document.querySelectorAll('a.video')].find(a => a.textContent.includes('{title}')).click()"
    );
    browser.eval(&click).await;
    browser.wait_for("location.pathname.startsWith('/watch/') && document.readyState === 'complete'").await;
    let report = browser.eval(PLAY_AND_SEEK).await;
    browser.screenshot("watch.png").await;
    report
}

/// The page and its images have finished loading.
const LOADED: &str = "document.readyState === 'complete' && [...document.images].every(i => i.complete)";
/// The stylesheet applied and every image decoded: what a too-strict `Content-Security-Policy`
/// would block first (a blocked sheet's rules throw, so the reason comes back as text).
const STYLED_WITH_IMAGES: &str = "(() => { try { return document.styleSheets.length === 1 \
    && document.styleSheets[0].cssRules.length > 0 && document.images.length > 0 \
    && [...document.images].every(i => i.naturalWidth > 0); } catch (e) { return String(e); } })()";

/// The player reached `readyState ≥ 3`, time advanced while playing, and the seek landed.
pub(crate) fn assert_played(report: &Value) {
    assert!(report["ready"].as_i64().unwrap() >= 3, "{report}");
    assert!(
        report["played"].as_f64().unwrap() > report["start"].as_f64().unwrap(),
        "time advanced: {report}"
    );
    let (target, landed) = (report["target"].as_f64().unwrap(), report["landed"].as_f64().unwrap());
    assert!((landed - target).abs() < 1.0, "seek landed near the middle: {report}");
    assert!(report["error"].is_null(), "{report}");
}

/// Plays the H.264 sample from the library over HTTP/2 or (forced QUIC) HTTP/3 with the command
/// `kino cert` prints, and checks the protocol on both ends: the page's `nextHopProtocol` and the
/// server's per-protocol metrics.
async fn plays_and_seeks_over(quic: bool, protocol: &str) {
    let Some(binary) = chromium() else { return };
    let app = spawn_on_localhost().await;
    let (flags, url) = printed_chrome_command(&app);
    assert_eq!(url, format!("https://localhost:{}/", app.https.port()));
    let mut browser = Browser::launch(binary, &flags, quic).await;
    let started = Instant::now();
    let report = play_from_library(&mut browser, &url, "sample h264").await;
    assert_played(&report);
    let negotiated = browser.eval("performance.getEntriesByType('navigation')[0].nextHopProtocol").await;
    assert_eq!(negotiated, protocol);
    let ranges = metric(&app, &format!("kino_partial_responses_total{{protocol=\"{protocol}\"}}")).await;
    assert!(ranges >= 1, "the server saw the player's range requests over {protocol}");
    eprintln!("{protocol} browser run: {:?}, {ranges} range responses, report {report}", started.elapsed());
}

#[tokio::test]
async fn chromium_plays_and_seeks_over_http2() {
    plays_and_seeks_over(false, "h2").await;
}

#[tokio::test]
async fn chromium_plays_and_seeks_over_http3() {
    plays_and_seeks_over(true, "h3").await;
}

#[tokio::test]
async fn chromium_plays_the_webm_and_shows_the_404_page() {
    let Some(binary) = chromium() else { return };
    let app = spawn_on_localhost().await;
    let (flags, url) = printed_chrome_command(&app);
    let mut browser = Browser::launch(binary, &flags, false).await;
    let report = play_from_library(&mut browser, &url, "sample vp9").await;
    assert_played(&report);
    browser.open(&format!("{url}watch/does-not-exist")).await;
    let heading = browser.eval("document.querySelector('h1').textContent").await;
    assert_eq!(heading, "404 Not Found");
}

/// What the stats pages' charts look like once drawn: how many, how wide, how many lines with
/// a length (a polyline with bad points draws nothing), and whether the stylesheet applied.
const CHARTS_DRAWN: &str = "(() => { const svgs = [...document.querySelectorAll('figure.chart svg')]; \
    const lines = [...document.querySelectorAll('figure.chart polyline')]; \
    return { charts: svgs.length, width: Math.min(...svgs.map(s => s.getBoundingClientRect().width)), \
    lines: lines.length, drawn: lines.filter(l => l.getTotalLength() > 100).length, \
    dots: document.querySelectorAll('figure.chart circle').length, \
    styled: document.styleSheets.length === 1 && document.styleSheets[0].cssRules.length > 0 }; })()";

/// Loads both stats pages in Chromium after some traffic (and a seeded day of history) and
/// checks the SVG is drawn; `KINO_SCREENSHOTS=docs` saves docs/stats-server.png and
/// docs/stats-video.png.
#[tokio::test]
async fn chromium_draws_the_stats_pages() {
    let Some(binary) = chromium() else { return };
    let app = spawn_app_with(|config| {
        on_localhost(config);
        crate::stats::fast_stats(config);
        config.stats.public = true;
    })
    .await;
    let (id, url) = crate::stats::sample(&app).await;
    crate::stats::seed_history(&app.data_dir(), &id).await;
    for protocol in crate::common::ALL_PROTOCOLS {
        let cookie = crate::stats::viewer(&app, &id).await;
        crate::stats::traffic(&app, protocol, &url, &cookie).await;
    }
    crate::stats::page_showing(&app, "/stats?window=hour", "<th scope=\"row\">4xx</th><td>3</td>").await;
    let (flags, origin) = printed_chrome_command(&app);
    let mut browser = Browser::launch(binary, &flags, false).await;
    // Tall enough that a screenshot shows both charts of a page.
    let viewport = json!({ "width": 1280, "height": 1500, "deviceScaleFactor": 1, "mobile": false });
    browser.call("Emulation.setDeviceMetricsOverride", viewport).await;

    browser.open(&format!("{origin}stats?window=hour")).await;
    let drawn = browser.eval(CHARTS_DRAWN).await;
    assert_eq!(drawn["charts"], 2, "{drawn}");
    assert_eq!((drawn["lines"].as_u64(), drawn["drawn"].as_u64()), (Some(6), Some(6)), "{drawn}");
    assert!(drawn["width"].as_f64().unwrap() > 500.0, "{drawn}");
    assert_eq!(drawn["styled"], true, "the CSP lets the stylesheet apply: {drawn}");
    browser.screenshot("stats-server.png").await;

    browser.open(&format!("{origin}videos/{id}/stats")).await;
    let drawn = browser.eval(CHARTS_DRAWN).await;
    assert_eq!((drawn["charts"].as_u64(), drawn["dots"].as_u64()), (Some(2), Some(10)), "{drawn}");
    assert_eq!(drawn["drawn"], 2, "{drawn}");
    browser.screenshot("stats-video.png").await;
}

/// Sign-up, the flash message, the header and sign-out through the forms in a real browser: its
/// own `Origin`, `__Host-` cookie handling, the page CSP's `form-action` and method override.
#[tokio::test]
async fn chromium_signs_up_sees_the_flash_once_and_signs_out_through_the_forms() {
    let Some(binary) = chromium() else { return };
    let app = spawn_on_localhost().await;
    let (flags, url) = printed_chrome_command(&app);
    let mut browser = Browser::launch(binary, &flags, false).await;
    browser.open(&format!("{url}signup")).await;
    browser
        .eval(
            "document.querySelector('#email').value = 'ada@example.org';
             document.querySelector('#display_name').value = 'Ada';
             document.querySelector('#password').value = 'analytical engine';
             document.querySelector('form.account-form button').click()",
        )
        .await;
    browser.wait_for("location.pathname === '/account' && document.readyState === 'complete'").await;
    let flash = browser.eval("document.querySelector('[role=status]').textContent").await;
    assert_eq!(
        flash,
        "Welcome, Ada: your account is ready and you are signed in. We mailed you a link to confirm your \
         address."
    );
    assert_eq!(browser.eval("document.querySelector('nav.account a').textContent").await, "Ada");
    assert_eq!(browser.eval("document.querySelectorAll('dd')[2].textContent").await, "admin");
    // HttpOnly: the page's scripts never see the session cookie.
    assert_eq!(browser.eval("document.cookie.includes('kino_session')").await, false);

    browser.open(&format!("{url}account")).await;
    assert_eq!(browser.eval("document.querySelector('[role=status]') === null").await, true, "shown once");
    browser.eval("document.querySelector('form[action=\"/session\"] button').click()").await;
    browser.wait_for("location.pathname === '/' && document.querySelector('[role=status]') !== null").await;
    assert_eq!(browser.eval("document.querySelector('[role=status]').textContent").await, "Signed out.");
    assert_eq!(browser.eval("document.querySelector('nav.account a').textContent").await, "Sign in");
    browser.open(&format!("{url}account")).await;
    assert_eq!(browser.eval("location.pathname").await, "/signin", "signed out for good");
}

/// Both tracks' cues once loaded: a track loads only when it is not `disabled`, so each is made
/// `hidden` (loaded, not drawn) first.
const TRACK_CUES: &str = "(() => { const tracks = [...document.querySelector('video').textTracks]; \
    tracks.forEach(t => t.mode = 'hidden'); \
    return tracks.map(t => ({ lang: t.language, label: t.label, cues: t.cues ? t.cues.length : -1, \
    first: t.cues && t.cues.length ? t.cues[0].text : null })); })()";

/// The watch page of the H.264 sample gives the player both sample caption files as text
/// tracks, and Chromium parses their cues: the WebVTT as written and the SubRip as converted.
#[tokio::test]
async fn chromium_loads_the_sample_captions_as_text_tracks_with_cues() {
    let Some(binary) = chromium() else { return };
    let app = spawn_on_localhost().await;
    let (flags, url) = printed_chrome_command(&app);
    let videos: Value =
        app.plain().get(app.plain_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    let sample = videos["videos"].as_array().unwrap().iter().find(|v| v["title"] == "sample h264").unwrap();
    let mut browser = Browser::launch(binary, &flags, false).await;
    browser.open(&format!("{url}watch/{}", sample["id"].as_str().unwrap())).await;
    assert_eq!(browser.eval("document.querySelector('video').textTracks.length").await, 2);
    browser.eval(TRACK_CUES).await;
    browser
        .wait_for("[...document.querySelector('video').textTracks].every(t => t.cues && t.cues.length > 0)")
        .await;
    let tracks = browser.eval(TRACK_CUES).await;
    assert_eq!(
        tracks,
        json!([
            { "lang": "en", "label": "English", "cues": 3, "first": "A test pattern, counting up." },
            { "lang": "fr", "label": "French", "cues": 3, "first": "Une mire de test qui compte." },
        ])
    );
    // For the README (`KINO_SCREENSHOTS=docs`): the English cue drawn over the picture.
    browser.eval("(() => { const v = document.querySelector('video'); v.textTracks[0].mode = 'showing'; v.currentTime = 2; })()").await;
    browser.wait_for("document.querySelector('video').textTracks[0].activeCues.length > 0").await;
    browser.screenshot("watch-captions.png").await;
}
