//! Command-line interface: `kino serve` (the default), `kino cert`, `kino config`, `kino scan`,
//! `kino secret`, `kino doctor`, `kino user`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use figment::value::Value;

use crate::accounts::{Accounts, Role};
use crate::cert::Certificates;
use crate::config::{self, Config, Environment, ListenAddr, LogFormat};

const ENV_HELP: &str = "\
Every option has a KINO_* environment twin (shown in brackets); .env in the working directory is
read too. Precedence: defaults < kino.toml < .env < environment < flags. Values may reference
other variables as ${NAME}. Settings without a flag (limits, secret) are listed in
config.example.toml; their variables are KINO_<SECTION>_<KEY>, e.g. KINO_LIMITS_IDLE_TIMEOUT.";

/// kino: a video streaming server over HTTP/1.1, HTTP/2 and HTTP/3.
#[derive(Debug, Parser)]
#[command(name = "kino", version, after_help = ENV_HELP)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Configuration options shared by every subcommand.
    #[command(flatten)]
    pub options: Options,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Create, renew or show the self-signed certificates; print the SPKI hash and Chrome flags.
    Cert,
    /// Print the effective configuration as TOML, secrets redacted.
    Config,
    /// Scan the media roots into the catalog and exit (the server also scans at start-up).
    Scan,
    /// Encrypt or decrypt a value (stdin → stdout) with the key derived from the server secret.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Check ports, certificates, data dir, database, media roots, clock and system limits, and
    /// print how to fix what is wrong; exits non-zero when a check fails.
    Doctor,
    /// Add accounts and change their roles (the way to make the first admin).
    #[command(subcommand)]
    User(UserCommand),
}

/// `kino secret …`: values kept encrypted at rest, such as `mail.smtp_password`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Read text on stdin and print it encrypted (`v1.…`), e.g. for mail.smtp_password.
    Encrypt,
    /// Read an encrypted value (`v1.…`) on stdin and print the text.
    Decrypt,
}

/// `kino user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --admin or --uploader it gets the sign-up rule: admin if it is
    /// the first account, viewer otherwise.
    Add {
        /// The sign-in email.
        #[arg(long)]
        email: String,
        /// Read the password from standard input, one line (required: a password on the command
        /// line would show in `ps` and the shell history).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The name shown to others [default: the email's local part].
        #[arg(long)]
        name: Option<String>,
        /// Make the account an admin.
        #[arg(long, conflicts_with = "uploader")]
        admin: bool,
        /// Make the account an uploader.
        #[arg(long)]
        uploader: bool,
    },
    /// Give the account with this email another role.
    Role {
        /// The account's email.
        email: String,
        /// The new role.
        #[arg(value_enum)]
        role: RoleArg,
    },
}

/// A role, as the command line names it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Everything, including other people's media.
    Admin,
    /// May upload.
    Uploader,
    /// May watch.
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Uploader => Role::Uploader,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// Options that override the configuration file and environment.
#[derive(Debug, Args)]
pub struct Options {
    /// Configuration file [default: kino.toml] [env: KINO_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment whose defaults and rules apply [default: development] [env: KINO_ENV]
    #[arg(long, global = true, value_enum)]
    pub env: Option<Environment>,
    /// Plain HTTP/1.1 and h2c listener: IP:PORT, or localhost:PORT for 127.0.0.1 and ::1
    /// [default: localhost:8080] [env: KINO_HTTP_ADDR]
    #[arg(long, global = true, value_name = "ADDR")]
    pub http_addr: Option<ListenAddr>,
    /// TLS listener (TCP) and HTTP/3 listener (UDP): IP:PORT, or localhost:PORT for 127.0.0.1 and
    /// ::1 [default: localhost:8443] [env: KINO_HTTPS_ADDR]
    #[arg(long, global = true, value_name = "ADDR")]
    pub https_addr: Option<ListenAddr>,
    /// Folder for uploads, the database and generated state [default: data] [env: KINO_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Media root to serve; repeatable [default: media] [env: KINO_MEDIA_DIRS, comma-separated]
    #[arg(long = "media-dir", global = true, value_name = "DIR")]
    pub media_dirs: Vec<PathBuf>,
    /// URL users reach the server at, shown at start-up [env: KINO_PUBLIC_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Folder of the generated CA and certificate [default: certs] [env: KINO_TLS_CERT_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Extra host name or IP for the generated certificate; repeatable [env: KINO_TLS_HOSTS]
    #[arg(long = "host", global = true, value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Certificate chain (PEM) to use instead of the generated one [env: KINO_TLS_CERT_PATH]
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert [env: KINO_TLS_KEY_PATH]
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log format [default: pretty; json in production] [env: KINO_LOG_FORMAT]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter such as info or kino=debug,hyper=info [default: info] [env: KINO_LOG_FILTER]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_filter: Option<String>,
}

impl Options {
    /// Loads the layered configuration with these options as the top layer.
    pub fn load(&self) -> anyhow::Result<Config> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| Value::from(p.display().to_string()));
        let list = |items: Vec<String>| (!items.is_empty()).then(|| Value::from(items));
        let text = |s: Option<String>| s.map(Value::from);
        let overrides = config::overrides([
            ("env", self.env.map(|e| Value::from(format!("{e:?}").to_lowercase()))),
            ("http_addr", text(self.http_addr.map(|a| a.to_string()))),
            ("https_addr", text(self.https_addr.map(|a| a.to_string()))),
            ("data_dir", path(&self.data_dir)),
            ("media_dirs", list(self.media_dirs.iter().map(|p| p.display().to_string()).collect())),
            ("public_url", text(self.public_url.clone())),
            ("tls.cert_dir", path(&self.cert_dir)),
            ("tls.hosts", list(self.hosts.clone())),
            ("tls.cert_path", path(&self.tls_cert)),
            ("tls.key_path", path(&self.tls_key)),
            ("log.format", self.log_format.map(|f| Value::from(format!("{f:?}").to_lowercase()))),
            ("log.filter", text(self.log_filter.clone())),
        ]);
        let file = self.config.clone().or_else(|| std::env::var_os("KINO_CONFIG").map(PathBuf::from));
        Config::load(file.as_deref(), overrides)
    }
}

/// Runs the parsed command line.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    let config = cli.options.load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Cert => cert(&config),
        Command::Scan => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(crate::scan(&config))?;
            println!(
                "{} files, {} new or changed, {} removed, {} videos unreadable",
                report.files, report.updated, report.removed, report.unreadable
            );
            Ok(())
        }
        Command::Doctor => crate::doctor::run(&config),
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Secret(command) => secret(config, &command),
        Command::User(command) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(user(&config, command))
        }
    }
}

/// Encrypts or decrypts stdin to stdout. A trailing newline of the input is not part of the
/// value (`echo pw | kino secret encrypt`), and the output ends with one.
fn secret(mut config: Config, command: &SecretCommand) -> anyhow::Result<()> {
    use std::io::Read;

    use anyhow::Context;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("reading stdin")?;
    let input = input.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&input);
    let secret = config.ensure_secret().context("preparing the server secret")?;
    let sealed = crate::crypto::SecretBox::new(secret);
    match command {
        SecretCommand::Encrypt => println!("{}", sealed.encrypt(input)),
        SecretCommand::Decrypt => println!("{}", sealed.decrypt(input)?),
    }
    Ok(())
}

async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let db = crate::db::Db::open(&config.data_dir).await?;
    // No sender runs here: an account made on the command line gets no mail (`link_base: None`).
    let accounts =
        std::sync::Arc::new(Accounts::new(db, &config.accounts, crate::mail::MailQueue::default()));
    match command {
        UserCommand::Add { email, password_stdin: _, name, admin, uploader } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            let role = match (admin, uploader) {
                (true, _) => Some(Role::Admin),
                (_, true) => Some(Role::Uploader),
                _ => None,
            };
            let user = accounts.sign_up(&email, password, name.as_deref(), role, None).await?;
            println!("added {} ({}) as {}", user.email, user.display_name, user.role.as_str());
        }
        UserCommand::Role { email, role } => {
            let role = Role::from(role);
            if !accounts.set_role(&email, role).await? {
                anyhow::bail!("no account has the email {email}");
            }
            println!("{email} is now {}", role.as_str());
        }
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(&config.log)?;
    // All cores: tokio's multi-threaded runtime starts one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async { crate::run(config, crate::shutdown_signal()?).await })
}

fn cert(config: &Config) -> anyhow::Result<()> {
    crate::tls::install_crypto_provider();
    let certs = Certificates::resolve(&config.tls)?;
    match &certs.ca_path {
        Some(ca) => {
            println!(
                "certificate: {} ({:?})",
                config.tls.cert_dir.join("cert.pem").display(),
                certs.provenance
            );
            println!("local CA:    {} (trust this one to avoid warnings)", ca.display());
        }
        None => println!(
            "certificate: {} (configured)",
            config.tls.cert_path.as_ref().map_or(String::new(), |p| p.display().to_string())
        ),
    }
    println!("SPKI SHA-256: {}", certs.spki_sha256);
    println!("HTTP/3 in Chrome:\n  {}", certs.chrome_command(&config.https_addr.browser_origin()));
    Ok(())
}
