//! `kino doctor`: checks what the server needs from its machine and configuration (ports,
//! certificates, data dir, database, media roots, clock, limits) and says how to fix each problem.

use std::fmt;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cert;
use crate::config::Config;

/// Descriptors kino needs beside its connections: the database, media files being served, the
/// listeners, logs.
const FD_HEADROOM: u64 = 512;
/// A leaf certificate closer than this to its end gets a warning.
const EXPIRY_WARNING_SECS: i64 = 14 * 24 * 3600;
/// The clock is wrong if it says an earlier time than this (2025-01-01): this code is newer.
const CLOCK_FLOOR: i64 = 1_735_689_600;
/// The UDP socket buffer QUIC wants at least: quic-go's measured 7 MiB (quinn relies on the same
/// kernel limits), or the connection receive window when that is larger.
const UDP_BUFFER_FLOOR: u64 = 7 * 1024 * 1024;
/// Debian's and Ubuntu's system trust store.
const SYSTEM_TRUST_STORE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Fine.
    Ok,
    /// Works, but something will go wrong or is not as it should be.
    Warn,
    /// The server will not start or not work.
    Fail,
}

/// One check's outcome, with the fix when there is something to fix.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    level: Level,
    topic: &'static str,
    message: String,
    fix: Option<String>,
}

impl Finding {
    fn ok(topic: &'static str, message: impl Into<String>) -> Self {
        Self { level: Level::Ok, topic, message: message.into(), fix: None }
    }

    fn warn(topic: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { level: Level::Warn, topic, message: message.into(), fix: Some(fix.into()) }
    }

    fn fail(topic: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { level: Level::Fail, topic, message: message.into(), fix: Some(fix.into()) }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{level}  {:<12} {}", self.topic, self.message)?;
        if let Some(fix) = &self.fix {
            for line in fix.lines() {
                write!(f, "\n      {:<12} {line}", "")?;
            }
        }
        Ok(())
    }
}

/// Runs every check, prints each finding and a summary; an error when any check failed.
pub(crate) fn run(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut findings = ports(config);
    findings.extend(certificates(config));
    findings.extend(data_dir(config));
    findings.push(runtime.block_on(database(&config.data_dir)));
    findings.extend(media_roots(config));
    findings.push(clock());
    findings.push(fd_limit(config));
    findings.push(udp_buffers(config));
    for finding in &findings {
        println!("{finding}");
    }
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    let (ok, warn, fail) = (count(Level::Ok), count(Level::Warn), count(Level::Fail));
    println!("{ok} ok, {warn} to look at, {fail} failed");
    if fail > 0 {
        anyhow::bail!("doctor: {fail} check{} failed", if fail == 1 { "" } else { "s" });
    }
    Ok(())
}

/// Every listening socket can be bound: TCP for both listeners, UDP for QUIC.
fn ports(config: &Config) -> Vec<Finding> {
    let http = config.http_addr.addrs_on(config.http_addr.port());
    let https = config.https_addr.addrs_on(config.https_addr.port());
    let mut findings = Vec::new();
    let sockets = http
        .iter()
        .map(|a| (*a, "TCP", "--http-addr"))
        .chain(https.iter().map(|a| (*a, "TCP", "--https-addr")))
        .chain(https.iter().map(|a| (*a, "UDP", "--https-addr")));
    let mut free = Vec::new();
    for (addr, transport, flag) in sockets {
        match bind(addr, transport) {
            Ok(()) => free.push(format!("{addr}/{}", transport.to_lowercase())),
            // localhost binds what the machine has: without IPv6, ::1 is skipped by the server.
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable && config_is_localhost(config, flag) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => findings.push(Finding::fail(
                "ports",
                format!("{addr} ({transport}) is in use"),
                format!(
                    "stop what holds it (`ss -{}lnp 'sport = :{}'` names it) or choose another port with {flag}",
                    if transport == "TCP" { "t" } else { "u" },
                    addr.port()
                ),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => findings.push(Finding::fail(
                "ports",
                format!("{addr} ({transport}): permission denied"),
                format!("ports below 1024 need CAP_NET_BIND_SERVICE (`sudo setcap cap_net_bind_service=+ep $(which kino)`), or use {flag} with a port ≥ 1024"),
            )),
            Err(e) => findings.push(Finding::fail(
                "ports",
                format!("{addr} ({transport}): {e}"),
                format!("choose another address with {flag}"),
            )),
        }
    }
    if findings.is_empty() {
        findings.push(Finding::ok("ports", format!("free: {}", free.join(", "))));
    }
    findings
}

fn config_is_localhost(config: &Config, flag: &str) -> bool {
    if flag == "--http-addr" { config.http_addr.is_localhost() } else { config.https_addr.is_localhost() }
}

fn bind(addr: SocketAddr, transport: &str) -> std::io::Result<()> {
    if transport == "TCP" { TcpListener::bind(addr).map(drop) } else { UdpSocket::bind(addr).map(drop) }
}

/// The certificate: present, valid now and for a while, for localhost, its CA trusted.
fn certificates(config: &Config) -> Vec<Finding> {
    let topic = "certificate";
    if let Some(path) = &config.tls.cert_path {
        return vec![match cert::facts(path) {
            Ok(facts) => expiry(topic, path, &facts, "renew it with its issuer"),
            Err(error) => {
                Finding::fail(topic, format!("{error:#}"), "fix tls.cert_path (KINO_TLS_CERT_PATH)")
            }
        }];
    }
    let [ca, leaf, key] = cert::generated_paths(&config.tls.cert_dir);
    if !leaf.exists() || !key.exists() {
        return vec![Finding::warn(
            topic,
            format!("none in {} yet", config.tls.cert_dir.display()),
            "`kino cert` (or the first start) creates a local CA and a certificate",
        )];
    }
    let mut findings = Vec::new();
    match cert::facts(&leaf) {
        Ok(facts) => {
            findings.push(expiry(topic, &leaf, &facts, "`kino cert` (or the next start) issues a new one"));
            if !facts.names.contains("localhost") {
                findings.push(Finding::warn(
                    topic,
                    format!("{} is not for localhost ({:?})", leaf.display(), facts.names),
                    "delete it and run `kino cert`: the generated certificate always covers localhost",
                ));
            }
        }
        Err(error) => findings.push(Finding::fail(
            topic,
            format!("{error:#}"),
            format!("delete {} and run `kino cert`", leaf.display()),
        )),
    }
    findings.push(trust(&ca, config));
    findings
}

fn expiry(topic: &'static str, path: &Path, facts: &cert::Facts, renew: &str) -> Finding {
    let left = facts.not_after - now();
    if facts.not_before > now() {
        Finding::fail(topic, format!("{} is not valid yet", path.display()), "check the clock (see below)")
    } else if left < 0 {
        Finding::fail(topic, format!("{} has expired", path.display()), renew)
    } else if left < EXPIRY_WARNING_SECS {
        Finding::warn(topic, format!("{} expires in {} days", path.display(), left / 86_400), renew)
    } else {
        Finding::ok(topic, format!("{} valid for {} more days", path.display(), left / 86_400))
    }
}

/// Whether the local CA is in the system trust store; browsers warn otherwise.
fn trust(ca: &Path, config: &Config) -> Finding {
    let topic = "trust";
    let facts = match cert::facts(ca) {
        Ok(facts) => facts,
        Err(_) => {
            return Finding::fail(
                topic,
                format!("the local CA {} is missing", ca.display()),
                "delete the certificates in the cert dir and run `kino cert` to make a new CA and certificate",
            );
        }
    };
    let store = std::fs::read(SYSTEM_TRUST_STORE).unwrap_or_default();
    let trusted = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(&store).flatten().any(|c| c.as_ref() == facts.der.as_slice())
    };
    if trusted {
        return Finding::ok(topic, format!("{} is in the system trust store", ca.display()));
    }
    Finding::warn(
        topic,
        format!("the local CA {} is not trusted by this system; browsers will warn", ca.display()),
        format!(
            "`kino cert` prints the Chromium command that trusts it for HTTP/3 (--https-addr {}), or trust it system-wide:\n\
             sudo cp {} /usr/local/share/ca-certificates/kino-local-ca.crt && sudo update-ca-certificates",
            config.https_addr,
            ca.display()
        ),
    )
}

/// The data dir exists (or can be made), is writable, not open to everyone; the secret is 0600.
fn data_dir(config: &Config) -> Vec<Finding> {
    let dir = &config.data_dir;
    let topic = "data dir";
    let Ok(meta) = std::fs::metadata(dir) else {
        return vec![Finding::warn(
            topic,
            format!("{} does not exist yet", dir.display()),
            "the first start creates it; check that its parent is writable by the server's user",
        )];
    };
    if !meta.is_dir() {
        return vec![Finding::fail(
            topic,
            format!("{} is not a directory", dir.display()),
            "set data_dir to a directory",
        )];
    }
    let mut findings = Vec::new();
    match tempfile::tempfile_in(dir) {
        Ok(_) => {
            let mode = meta.permissions().mode() & 0o777;
            findings.push(if mode & 0o002 != 0 {
                Finding::warn(
                    topic,
                    format!("{} is writable by everyone (mode {mode:o})", dir.display()),
                    format!("chmod 750 {}", dir.display()),
                )
            } else {
                Finding::ok(topic, format!("{} is writable (mode {mode:o})", dir.display()))
            });
        }
        Err(error) => findings.push(Finding::fail(
            topic,
            format!("cannot write in {}: {error}", dir.display()),
            format!(
                "chown the directory to the server's user, or set data_dir elsewhere ({})",
                dir.display()
            ),
        )),
    }
    let secret = dir.join("secret");
    if let Ok(meta) = std::fs::metadata(&secret) {
        let mode = meta.permissions().mode() & 0o777;
        findings.push(if mode & 0o077 != 0 {
            Finding::fail(
                "secret",
                format!("{} is readable by others (mode {mode:o})", secret.display()),
                format!("chmod 600 {}", secret.display()),
            )
        } else {
            Finding::ok("secret", format!("{} is private (mode {mode:o})", secret.display()))
        });
    }
    findings
}

/// The database opens and its migrations match this binary's.
async fn database(data_dir: &Path) -> Finding {
    let topic = "database";
    match crate::db::migrations(data_dir).await {
        Ok(None) => Finding::warn(topic, "no database yet", "the first start (or `kino scan`) creates it"),
        Ok(Some(m)) if m.failed > 0 || m.unknown > 0 => Finding::fail(
            topic,
            format!("{} failed and {} unknown migrations", m.failed, m.unknown),
            "a newer kino migrated this database, or a migration broke: restore a backup or use that kino",
        ),
        Ok(Some(m)) if m.pending > 0 => Finding::warn(
            topic,
            format!("{} migrations pending", m.pending),
            "the next start applies them (back up data/kino.db first)",
        ),
        Ok(Some(_)) => Finding::ok(topic, "opens; migrations are current"),
        Err(error) => Finding::fail(topic, format!("{error:#}"), "check the file's owner and permissions"),
    }
}

/// Every media root is a readable directory; how many files it holds.
fn media_roots(config: &Config) -> Vec<Finding> {
    config
        .media_dirs
        .iter()
        .map(|root| match std::fs::read_dir(root) {
            Ok(_) => {
                let files = walkdir::WalkDir::new(root)
                    .into_iter()
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_file())
                    .count();
                Finding::ok("media", format!("{}: {files} files", root.display()))
            }
            Err(error) => Finding::fail(
                "media",
                format!("{}: {error}", root.display()),
                "fix the path (--media-dir, KINO_MEDIA_DIRS) or let the server's user read it",
            ),
        })
        .collect()
}

/// The wall clock is plausible: view windows, certificates and statistics depend on it.
fn clock() -> Finding {
    let now = now();
    if now < CLOCK_FLOOR {
        Finding::fail(
            "clock",
            format!("the system clock says {now} s since 1970, before this kino was made"),
            "set the time and keep it set: `sudo timedatectl set-ntp true`",
        )
    } else {
        let utc = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Finding::ok(
            "clock",
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute()
            ),
        )
    }
}

/// The open-file limit covers `limits.max_connections` and the rest.
fn fd_limit(config: &Config) -> Finding {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let want = u64::from(config.limits.max_connections) + FD_HEADROOM;
    match limit.current {
        Some(soft) if soft < want => Finding::warn(
            "fd limit",
            format!(
                "open files limit {soft} < limits.max_connections {} + {FD_HEADROOM}",
                config.limits.max_connections
            ),
            format!(
                "`ulimit -n {want}` before starting (hard limit: {}), LimitNOFILE={want} in a systemd unit, or lower limits.max_connections",
                limit.maximum.map_or_else(|| "unlimited".to_owned(), |m| m.to_string())
            ),
        ),
        Some(soft) => Finding::ok("fd limit", format!("open files limit {soft} ≥ {want}")),
        None => Finding::ok("fd limit", "open files unlimited"),
    }
}

/// The kernel lets UDP sockets buffer a QUIC burst; too small a buffer drops packets under load.
fn udp_buffers(config: &Config) -> Finding {
    let want = UDP_BUFFER_FLOOR.max(u64::from(config.limits.quic_receive_window));
    let read = |name| {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    match (read("rmem_max"), read("wmem_max")) {
        (Some(r), Some(w)) if r >= want && w >= want => {
            Finding::ok("udp buffers", format!("net.core.rmem_max {r}, wmem_max {w} ≥ {want}"))
        }
        (Some(r), Some(w)) => Finding::warn(
            "udp buffers",
            format!("net.core.rmem_max {r}, wmem_max {w}: HTTP/3 wants {want} (limits.quic_receive_window)"),
            format!(
                "sudo sysctl -w net.core.rmem_max={want} net.core.wmem_max={want}\n\
                 and to keep it: printf 'net.core.rmem_max={want}\\nnet.core.wmem_max={want}\\n' | sudo tee /etc/sysctl.d/60-kino.conf"
            ),
        ),
        _ => Finding::warn(
            "udp buffers",
            "cannot read /proc/sys/net/core/rmem_max and wmem_max",
            format!("make sure both are at least {want}"),
        ),
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_print_their_level_topic_and_fix() {
        let text = Finding::fail("ports", "127.0.0.1:8080 (TCP) is in use", "stop it\nor move").to_string();
        assert_eq!(
            text,
            "FAIL  ports        127.0.0.1:8080 (TCP) is in use\n                   stop it\n                   or move"
        );
        assert_eq!(Finding::ok("clock", "fine").to_string(), "ok    clock        fine");
    }
}
