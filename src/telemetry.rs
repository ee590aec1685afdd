//! Logging: human-readable in development, JSON in production; panics are logged too.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};

/// Installs the global tracing subscriber and a panic hook that logs through it.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?}: {e}", log.filter))?;
    // Colours only for a terminal: in files and journald escape codes are noise.
    let ansi = std::io::stdout().is_terminal();
    #[cfg(not(feature = "console"))]
    {
        let builder =
            tracing_subscriber::fmt().with_env_filter(filter).with_span_events(FmtSpan::NONE).with_ansi(ansi);
        let installed = match log.format {
            LogFormat::Pretty => builder.compact().try_init(),
            LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        };
        installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    }
    // tokio-console (README "Debugging"): its layer sees every task event, unfiltered; the log
    // filter applies to the log lines only. Needs the binary built with --cfg tokio_unstable.
    #[cfg(feature = "console")]
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let fmt = tracing_subscriber::fmt::layer().with_span_events(FmtSpan::NONE).with_ansi(ansi);
        let fmt = match log.format {
            LogFormat::Pretty => fmt.compact().boxed(),
            LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).boxed(),
        };
        tracing_subscriber::registry()
            .with(console_subscriber::spawn())
            .with(fmt.with_filter(filter))
            .try_init()
            .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    }

    // The outermost handler: a panic anywhere (a background task, a connection) reaches the
    // log with its location, in the same format as everything else, instead of bare stderr.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        // Replacing the default hook loses its backtrace; `capture` keeps RUST_BACKTRACE's meaning.
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(panic = %message, %location, %backtrace, "panic");
        } else {
            tracing::error!(panic = %message, %location, "panic");
        }
    }));
    Ok(())
}
