//! The typed server configuration, layered from defaults, `kino.toml`, `.env`, `KINO_*` and flags.
//!
//! Precedence, lowest first: built-in defaults for the selected environment < `kino.toml` <
//! `.env` < the process environment (`KINO_*`) < command-line flags. Values may reference other
//! variables as `${NAME}`; the merged tree is interpolated once, then validated into [`Config`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

mod auth;
mod interpolate;
mod listen;
mod secret;

pub use auth::{AuthConfig, MailConfig, MailTransport};
pub(crate) use interpolate::interpolate;
pub use listen::ListenAddr;
pub(crate) use secret::derive_key;

/// The nested configuration sections; `KINO_<SECTION>_<KEY>` maps to `<section>.<key>`.
const SECTIONS: &[&str] =
    &["tls", "log", "limits", "views", "images", "cors", "rate_limit", "auth", "mail", "stats", "accounts"];

/// Secrets that ship in examples and docs; production refuses them.
const KNOWN_DEFAULT_SECRETS: &[&str] = &["change-me", "changeme", "secret", "development"];

/// The shortest secret production accepts: 32 bytes gives HMAC-SHA256 its full strength.
const MIN_SECRET_LEN: usize = 32;

/// Which set of defaults and rules applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Human-readable logs; a secret is generated and kept in the data dir when none is set.
    #[default]
    Development,
    /// Like development, for automated tests.
    Test,
    /// JSON logs; refuses to start without a real secret.
    Production,
}

/// The validated configuration every part of the server reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The environment whose defaults and rules apply.
    pub env: Environment,
    /// Plain-text HTTP/1.1 (and h2c prior knowledge) listener.
    pub http_addr: ListenAddr,
    /// TLS listener (HTTP/1.1 and HTTP/2 over TCP) and QUIC listener (HTTP/3 over UDP).
    pub https_addr: ListenAddr,
    /// Where uploads, the database and generated state live.
    pub data_dir: PathBuf,
    /// Read-only media roots served and catalogued.
    #[serde(deserialize_with = "string_or_list")]
    pub media_dirs: Vec<PathBuf>,
    /// The URL users reach the server at, when it differs from the listener (shown at start-up).
    pub public_url: Option<String>,
    /// The server secret behind every HMAC (viewer keys, checkpoints); never logged.
    #[serde(
        default,
        serialize_with = "secret::serialize_redacted",
        deserialize_with = "secret::deserialize"
    )]
    pub secret: Option<SecretString>,
    /// Certificates.
    pub tls: TlsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Limits and timeouts for every transport.
    pub limits: Limits,
    /// The rules that turn delivered bytes into views.
    pub views: ViewRules,
    /// Image processing.
    #[serde(default)]
    pub images: ImageConfig,
    /// Which other sites' pages may call the API and tus uploads from a browser.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` / `Forwarded` name the client.
    #[serde(default, deserialize_with = "cidr_list")]
    pub trust_proxies: Vec<ipnet::IpNet>,
    /// Request budgets per client address.
    #[serde(default)]
    pub rate_limit: RateLimits,
    /// API tokens.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Outgoing mail.
    #[serde(default)]
    pub mail: MailConfig,
    /// Request statistics in the database and the stats pages.
    #[serde(default)]
    pub stats: StatsConfig,
    /// Accounts and their sessions.
    #[serde(default)]
    pub accounts: AccountsConfig,
}

/// Request statistics (README "Statistics"): how long they are kept, how often written, who sees them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsConfig {
    /// Whether `/stats` and `/videos/{id}/stats` answer everyone, anonymous visitors included;
    /// when false, `/stats` is for admins and a video's page for its owner and admins.
    pub public: bool,
    /// How long hourly statistics are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long per-minute statistics are kept (at least 2 h: the hourly roll-up reads them).
    #[serde(with = "humantime_serde")]
    pub minute_retention: Duration,
    /// How often the in-memory aggregate is written to the database.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            public: false,
            retention: Duration::from_secs(30 * 24 * 3600),
            // Two days of minutes: yesterday at full resolution, ~100 rows a minute at most.
            minute_retention: Duration::from_secs(48 * 3600),
            flush_interval: Duration::from_secs(60),
        }
    }
}

/// Accounts and sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountsConfig {
    /// How long a session lasts after its last change (sign-in starts it).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long the link of an email verification mail works.
    #[serde(with = "humantime_serde")]
    pub verify_ttl: Duration,
    /// How long the link of a password reset mail works.
    #[serde(with = "humantime_serde")]
    pub reset_ttl: Duration,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            // Two weeks: a person who watches every weekend stays signed in.
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            // Two days: a sign-up on Friday evening is still confirmed on Sunday.
            verify_ttl: Duration::from_secs(48 * 3600),
            // An hour: the link lets whoever holds it take the account, so it lives briefly.
            reset_ttl: Duration::from_secs(3600),
        }
    }
}

/// Cross-origin access to `/api` (tus included); media answers any origin whatever this says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorsConfig {
    /// Origins (`https://app.example`) allowed to call the API, or `["*"]` for any; empty: none.
    #[serde(deserialize_with = "string_or_list")]
    pub origins: Vec<String>,
    /// Whether listed origins may send cookies; refused together with `*`.
    pub credentials: bool,
    /// How long browsers may cache a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        // Chromium caps the preflight cache at 2 hours; longer gains nothing there.
        Self { origins: Vec::new(), credentials: false, max_age: Duration::from_secs(2 * 3600) }
    }
}

/// Token-bucket budgets per client address (IPv4, or IPv6 /64), one per class of request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimits {
    /// Whether any budget applies.
    pub enabled: bool,
    /// Pages and API calls.
    pub page: Budget,
    /// Media bytes (`/stream`, `/media`, `/images`, `/static`): a player asks for many ranges.
    pub stream: Budget,
    /// Sign-in attempts (`/api/auth/*`), strict against password guessing.
    pub auth: Budget,
    /// New uploads (`POST` of a video, an image, a tus upload); tus chunks count as API calls.
    pub upload: Budget,
}

/// One token bucket: `rate` requests per `per` sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Requests refilled per `per`; 0 turns this budget off.
    pub rate: u32,
    /// The period `rate` is counted over.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Requests allowed at once from a full bucket.
    pub burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        Self {
            enabled: true,
            // A page pulls a handful of API calls; a person never clicks 50 times a second.
            page: Budget { rate: 50, per: second, burst: 100 },
            // Seeking fires dozens of ranges; 200/s serves several players behind one address.
            stream: Budget { rate: 200, per: second, burst: 400 },
            // 10 guesses a minute: 14,400 a day, hopeless against any real password.
            auth: Budget { rate: 10, per: minute, burst: 10 },
            upload: Budget { rate: 10, per: minute, burst: 10 },
        }
    }
}

/// Image processing (`POST /api/images`, `GET /images/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Memory all image jobs may hold at once, bytes, by each job's estimate from its header;
    /// jobs wait for their share, and one needing more than all of it is refused (413).
    pub memory_budget: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        // Every image the 50 MP cap admits fits, alone: a 50 MP RGBA PNG or a quarter-turned
        // phone photo estimates ~430 MB. A 12 MP photo (~60 MB) runs eight at a time.
        Self { memory_budget: 512 * 1024 * 1024 }
    }
}

/// When delivered bytes count as a view (see ARCHITECTURE.md §4 and the `views` module).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewRules {
    /// Checkpoints per video (at most 32).
    pub checkpoints: u32,
    /// Checkpoints a viewer must reach, at a watching pace, for one view.
    pub min_checkpoints: u32,
    /// Wall seconds needed per media second between the earliest checkpoint of a view and each
    /// later one; 0 turns the pace rule off.
    pub pace: f64,
    /// Time allowed ahead of the pace, so players that buffer ahead still count.
    #[serde(with = "humantime_serde")]
    pub slack: Duration,
    /// One view per viewer and video within this window.
    #[serde(with = "humantime_serde")]
    pub dedupe_window: Duration,
    /// A session idle this long ends and is recorded for retention statistics.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// Responses carrying fewer file bytes are probes (Safari's `bytes=0-1`) and reach nothing.
    pub probe_bytes: u64,
    /// Views counted per network (/24 of IPv4, /64 of IPv6) and video within the dedupe window;
    /// 0 turns the cap off.
    pub max_per_network: u32,
}

impl Default for ViewRules {
    fn default() -> Self {
        Self {
            checkpoints: 10,
            min_checkpoints: 3,
            pace: 0.5,
            slack: Duration::from_secs(60),
            dedupe_window: Duration::from_secs(3600),
            session_idle: Duration::from_secs(30 * 60),
            probe_bytes: 1024,
            // A household watching together; a script on one network gains no more per hour.
            max_per_network: 5,
        }
    }
}

/// Where the certificates come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsConfig {
    /// Folder of the generated local CA and leaf certificate.
    pub cert_dir: PathBuf,
    /// Extra host names or IPs for the generated leaf (localhost, 127.0.0.1 and ::1 are always in).
    #[serde(deserialize_with = "string_or_list")]
    pub hosts: Vec<String>,
    /// A certificate chain (PEM) to use instead of the generated one.
    pub cert_path: Option<PathBuf>,
    /// The private key (PEM) that goes with `cert_path`.
    pub key_path: Option<PathBuf>,
    /// Send `Strict-Transport-Security` over TLS; needs `cert_path` (a browser pinned to HTTPS
    /// with the self-signed development certificate could not reach the site any more).
    #[serde(default)]
    pub hsts: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    /// `pretty` for people, `json` for machines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `kino=debug,hyper=info`.
    pub filter: String,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Compact, human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Limits and timeouts; defaults follow nginx and Caddy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Time allowed to receive a request's headers, and the keep-alive idle time of HTTP/1.1,
    /// counted from the end of the last response (parked or not).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest pause allowed between two chunks of a request body.
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// A response the client accepts no bytes of for this long is aborted (nginx's `send_timeout`).
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/2 and HTTP/3).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time allowed for a TLS or QUIC handshake.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; a ping unanswered for as long closes the connection.
    #[serde(with = "humantime_serde")]
    pub http2_keep_alive_interval: Duration,
    /// Concurrent streams per HTTP/2 or HTTP/3 connection.
    pub max_concurrent_streams: u32,
    /// Largest request head, bytes, counted on every protocol as an HTTP/2 header list is.
    pub max_header_size: u32,
    /// QUIC flow-control window per stream, bytes.
    pub quic_stream_receive_window: u32,
    /// QUIC flow-control window per connection, bytes.
    pub quic_receive_window: u32,
    /// Open connections across all listeners; further clients wait in the accept queue.
    pub max_connections: u32,
    /// Open connections from one address (IPv6: one /64) across every listener (TCP and QUIC
    /// together); a trusted proxy is exempt. 0 is off.
    pub max_connections_per_ip: u32,
    /// Half-open QUIC handshakes beyond which new clients must prove their address with a Retry.
    pub quic_retry_threshold: u32,
    /// Largest video upload, bytes.
    pub max_upload_bytes: u64,
    /// A resumable upload untouched this long is deleted.
    #[serde(with = "humantime_serde")]
    pub upload_expiry: Duration,
    /// Slowest upload body accepted, bytes per second averaged over `upload_rate_window`; 0 is off.
    pub upload_min_rate: u64,
    /// The window `upload_min_rate` is averaged over.
    #[serde(with = "humantime_serde")]
    pub upload_rate_window: Duration,
    /// A file in `<data_dir>/tmp` untouched this long is an orphan of a crash and is deleted.
    #[serde(with = "humantime_serde")]
    pub tmp_max_age: Duration,
    /// How long graceful shutdown waits for in-flight requests.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Config {
    /// Built-in defaults for `env`, the lowest configuration layer.
    pub fn defaults(env: Environment) -> Self {
        let production = env == Environment::Production;
        Self {
            env,
            http_addr: ListenAddr::localhost(8080),
            https_addr: ListenAddr::localhost(8443),
            data_dir: PathBuf::from("data"),
            media_dirs: vec![PathBuf::from("media")],
            public_url: None,
            secret: None,
            tls: TlsConfig {
                cert_dir: PathBuf::from("certs"),
                hosts: Vec::new(),
                cert_path: None,
                key_path: None,
                hsts: false,
            },
            log: LogConfig {
                format: if production { LogFormat::Json } else { LogFormat::Pretty },
                filter: "info".to_owned(),
            },
            limits: Limits::default(),
            views: ViewRules::default(),
            images: ImageConfig::default(),
            cors: CorsConfig::default(),
            trust_proxies: Vec::new(),
            rate_limit: RateLimits::default(),
            auth: AuthConfig::default(),
            mail: MailConfig::default(),
            stats: StatsConfig::default(),
            accounts: AccountsConfig::default(),
        }
    }

    /// A configuration for tests: every listener on port 0 of loopback, state under `dir`.
    pub fn for_tests(dir: &Path) -> Self {
        let mut config = Self::defaults(Environment::Test);
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0)).into();
        config.https_addr = SocketAddr::from(([127, 0, 0, 1], 0)).into();
        config.data_dir = dir.join("data");
        config.tls.cert_dir = dir.join("certs");
        config.secret = Some(SecretString::from("test-secret-test-secret-test-secret"));
        // Every test client is 127.0.0.1, and most make requests as fast as they can; the
        // tests of these limits turn them on.
        config.rate_limit.enabled = false;
        config.limits.max_connections_per_ip = 0;
        config
    }

    /// Loads the layered configuration: `overrides` are the command-line values (highest layer).
    pub fn load(config_file: Option<&Path>, overrides: Dict) -> anyhow::Result<Self> {
        // Only fills variables that are not already set, so the real environment wins over it.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(err).context("reading .env"),
        }
        let file = config_file.unwrap_or(Path::new("kino.toml"));
        if config_file.is_some() && !file.exists() {
            bail!("config file {} does not exist", file.display());
        }
        let layers = Figment::new()
            .merge(Toml::file(file))
            .merge(env_provider())
            .merge(Serialized::defaults(overrides));
        // The environment picks the defaults, so it is read from the other layers first; a
        // misspelt one is an error, never a silent fallback to development.
        let env = match layers.find_value("env") {
            Ok(value) => value.deserialize::<Environment>().map_err(config_error)?,
            Err(_) => Environment::default(),
        };
        let merged = Figment::from(Serialized::defaults(Self::defaults(env))).merge(layers);
        Self::from_figment(&merged)?.validated()
    }

    /// Extracts, interpolates and deserializes a merged figment.
    fn from_figment(figment: &Figment) -> anyhow::Result<Self> {
        let value: Value = figment.extract().map_err(config_error)?;
        let value = interpolate(value, &|name| std::env::var(name).ok())?;
        Config::deserialize(&value).map_err(config_error)
    }

    /// Applies the rules of the environment: production needs a real secret.
    pub fn validated(self) -> anyhow::Result<Self> {
        if self.tls.cert_path.is_some() != self.tls.key_path.is_some() {
            bail!("tls.cert_path and tls.key_path (KINO_TLS_CERT_PATH, KINO_TLS_KEY_PATH) go together");
        }
        if self.tls.hsts && self.tls.cert_path.is_none() {
            bail!("tls.hsts needs tls.cert_path: HSTS with the generated certificate locks browsers out");
        }
        self.cors.check()?;
        self.auth.check()?;
        self.mail.check()?;
        let views = &self.views;
        if !(1..=32).contains(&views.checkpoints) || !(1..=views.checkpoints).contains(&views.min_checkpoints)
        {
            bail!("views.checkpoints must be 1–32 and views.min_checkpoints 1–checkpoints");
        }
        if !(views.pace.is_finite() && views.pace >= 0.0) {
            bail!("views.pace must be a number ≥ 0");
        }
        if self.images.memory_budget < 1 << 20 {
            bail!("images.memory_budget must be at least 1 MiB (1048576 bytes)");
        }
        if self.limits.send_timeout.is_zero() {
            // Zero would abort every response the moment the socket is momentarily full.
            bail!("limits.send_timeout must be longer than 0s");
        }
        if self.limits.tmp_max_age <= self.limits.body_idle_timeout.max(self.limits.upload_rate_window) {
            bail!(
                "limits.tmp_max_age must be longer than limits.body_idle_timeout and limits.upload_rate_window"
            );
        }
        let limits = &self.rate_limit;
        for (name, budget) in [
            ("page", limits.page),
            ("stream", limits.stream),
            ("auth", limits.auth),
            ("upload", limits.upload),
        ] {
            if budget.rate > 0 && (budget.burst == 0 || budget.per.is_zero()) {
                bail!("rate_limit.{name} needs burst ≥ 1 and per > 0s when its rate is not 0");
            }
        }
        let stats = &self.stats;
        if stats.flush_interval.is_zero() || stats.minute_retention < Duration::from_secs(2 * 3600) {
            bail!("stats.flush_interval must be longer than 0s and stats.minute_retention at least 2h");
        }
        if stats.retention < stats.minute_retention {
            bail!("stats.retention must be at least stats.minute_retention");
        }
        if self.accounts.session_ttl < Duration::from_secs(60) {
            bail!("accounts.session_ttl must be at least 1m");
        }
        for (name, ttl) in [("verify_ttl", self.accounts.verify_ttl), ("reset_ttl", self.accounts.reset_ttl)]
        {
            if ttl.is_zero() || ttl > Duration::from_secs(30 * 24 * 3600) {
                bail!("accounts.{name} must be longer than 0s and at most 30d");
            }
        }
        if self.media_dirs.is_empty() {
            bail!("at least one media dir is needed (--media-dir, KINO_MEDIA_DIRS)");
        }
        match (&self.secret, self.env) {
            (None, Environment::Production) => bail!(
                "production needs a secret: set KINO_SECRET (secret in kino.toml) to {MIN_SECRET_LEN}+ random characters"
            ),
            (Some(secret), Environment::Production) => {
                let value = secret.expose_secret();
                if KNOWN_DEFAULT_SECRETS.contains(&value.to_ascii_lowercase().as_str()) {
                    bail!("production refuses the example secret in KINO_SECRET; set a random one");
                }
                if value.len() < MIN_SECRET_LEN {
                    bail!(
                        "production needs KINO_SECRET of at least {MIN_SECRET_LEN} characters (it has {})",
                        value.len()
                    );
                }
            }
            _ => {}
        }
        Ok(self)
    }

    /// Outside production, fills a missing secret with one generated once and kept in the data
    /// dir, so restarts keep the same viewer keys and checkpoints.
    pub fn ensure_secret(&mut self) -> anyhow::Result<&SecretString> {
        if self.secret.is_none() {
            self.secret = Some(secret::load_or_create(&self.data_dir)?);
        }
        Ok(self.secret.as_ref().expect("just set"))
    }

    /// The configuration as TOML, with secrets redacted, for `kino config`.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            handshake_timeout: Duration::from_secs(10),
            http2_keep_alive_interval: Duration::from_secs(20),
            max_concurrent_streams: 128,
            max_header_size: 32 * 1024,
            quic_stream_receive_window: 1024 * 1024,
            quic_receive_window: 8 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            quic_retry_threshold: 64,
            max_upload_bytes: 4 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            upload_min_rate: 4096,
            upload_rate_window: Duration::from_secs(60),
            tmp_max_age: Duration::from_secs(6 * 3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl CorsConfig {
    /// Refuses origins a browser never sends and `*` mixed with a list or with credentials.
    fn check(&self) -> anyhow::Result<()> {
        if self.origins.iter().any(|o| o == "*") {
            if self.origins.len() > 1 {
                bail!("cors.origins: \"*\" allows every origin and stands alone");
            }
            if self.credentials {
                bail!("cors.credentials needs listed origins: browsers refuse credentials with \"*\"");
            }
            return Ok(());
        }
        for origin in &self.origins {
            if !is_origin(origin) {
                bail!(
                    "cors.origins: {origin:?} is not an origin like https://app.example or http://host:8080"
                );
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` with nothing after it, as browsers send in `Origin`.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let host = rest.rsplit_once(':').map_or(
        rest,
        |(host, port)| {
            if port.parse::<u16>().is_ok() { host } else { rest }
        },
    );
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && text.is_ascii()
}

/// `KINO_*` variables, with `KINO_<SECTION>_<KEY>` nested under its section.
fn env_provider() -> impl Provider {
    Env::prefixed("KINO_").map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        SECTIONS
            .iter()
            .find_map(|section| {
                let rest = key.strip_prefix(section)?.strip_prefix('_')?;
                Some(format!("{section}.{rest}").into())
            })
            .unwrap_or_else(|| key.clone().into())
    })
}

fn config_error(err: figment::Error) -> anyhow::Error {
    anyhow::anyhow!("invalid configuration: {err}")
}

/// Accepts `"a,b"` (handy in environment variables) as well as a list.
fn string_or_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(s) => {
            s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        OneOrMany::Many(v) => v,
    };
    Ok(items.into_iter().map(T::from).collect())
}

/// Accepts CIDRs or bare addresses (one host), as a list or as `"a,b"`.
fn cidr_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items: Vec<String> = string_or_list(deserializer)?;
    items
        .iter()
        .map(|item| {
            item.parse().or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                serde::de::Error::custom(format!("trust_proxies: {item:?} is not a CIDR or an address"))
            })
        })
        .collect()
}

/// Builds the command-line override layer from `(dotted key, value)` pairs that were given.
pub fn overrides<I, V>(pairs: I) -> Dict
where
    I: IntoIterator<Item = (&'static str, Option<V>)>,
    V: Into<Value>,
{
    let mut root: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in pairs {
        let Some(value) = value else { continue };
        match key.split_once('.') {
            Some((section, field)) => {
                let entry = root.entry(section.to_owned()).or_insert_with(|| Value::from(Dict::new()));
                if let Value::Dict(_, dict) = entry {
                    dict.insert(field.to_owned(), value.into());
                }
            }
            None => {
                root.insert(key.to_owned(), value.into());
            }
        }
    }
    root.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> anyhow::Result<Config> {
        let figment = Figment::from(Serialized::defaults(Config::defaults(Environment::Test)))
            .merge(Toml::string(toml))
            .merge(Serialized::default("secret", "test-secret-test-secret-test-secret"));
        Config::from_figment(&figment)?.validated()
    }

    #[test]
    fn the_example_file_parses_with_its_rate_limits() {
        let config = parse(include_str!("../config.example.toml")).unwrap();
        assert!(config.rate_limit.enabled && config.trust_proxies.is_empty());
        assert_eq!(config.rate_limit.stream, Budget { rate: 200, per: Duration::from_secs(1), burst: 400 });
        assert_eq!(config.limits.max_connections_per_ip, 256);
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_nothing_else() {
        let config = parse(r#"trust_proxies = "10.0.0.0/8, 127.0.0.1""#).unwrap();
        let nets: Vec<String> = config.trust_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32"]);
        let error = parse(r#"trust_proxies = ["proxy.local"]"#).unwrap_err().to_string();
        assert!(error.contains("\"proxy.local\" is not a CIDR"), "{error}");
        let error =
            parse("[rate_limit]\npage = { rate = 5, per = \"1s\", burst = 0 }").unwrap_err().to_string();
        assert!(error.contains("rate_limit.page needs burst"), "{error}");
    }
}
