//! Logs go to stderr, shared by `lasd` and `las`. Text (the default) keeps the contract that
//! the platform-ID line's 8th whitespace-separated field is the ID:
//! `<time>  INFO las: platform has public key <ID>`.
//!
//! The filter is `target=level` directives (`info`, `las=debug,hyper=warn`), taken from
//! `--log-level`/`LAS_LOG`, else from `RUST_LOG`, else `info`. It is parsed by
//! `tracing_subscriber::filter::Targets`, not `EnvFilter`: that keeps the regex engine out
//! of the measured daemon (`lasd`'s dependency budget, docs/hardware.md). Colours only on
//! a terminal and never when `NO_COLOR` is set to a non-empty value (no-color.org).

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// An error and its causes on one line, joined by `: ` (what both binaries print before
/// they exit). A cause whose text the line already holds is left out: many errors show
/// their source in their own message and also return it from `source()`, and anyhow's
/// `{:#}` would print it twice (`cannot read: No such file…: No such file…`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let m = c.to_string();
        if !line.contains(&m) {
            line.push_str(": ");
            line.push_str(&m);
        }
        cause = c.source();
    }
    line
}

/// Log format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// Human-readable lines; the platform-ID line's 8th field is the ID.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The log filter given on the command line or in `LAS_LOG` is not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid log filter {filter:?} (--log-level / LAS_LOG): {reason}")]
pub struct BadFilter {
    /// The filter as given.
    pub filter: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Where the filter came from, and the filter. A malformed `RUST_LOG` (which other tools
/// share, with a richer syntax) falls back to `info` with a warning rather than stopping the
/// daemon; a malformed `--log-level`/`LAS_LOG` is an error.
fn filter(level: Option<&str>) -> Result<(Targets, Option<String>), BadFilter> {
    if let Some(l) = level {
        let t = Targets::from_str(l).map_err(|e| BadFilter {
            filter: l.to_owned(),
            reason: e.to_string(),
        })?;
        return Ok((t, None));
    }
    match std::env::var("RUST_LOG") {
        Ok(r) if !r.trim().is_empty() => match Targets::from_str(&r) {
            Ok(t) => Ok((t, None)),
            Err(e) => Ok((
                info(),
                Some(format!(
                    "ignoring RUST_LOG={r:?} ({e}); logging at info (use --log-level or LAS_LOG with `target=level` directives)"
                )),
            )),
        },
        _ => Ok((info(), None)),
    }
}

fn info() -> Targets {
    Targets::new().with_default(tracing::Level::INFO)
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` is set and non-empty.
pub fn use_color(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), BadFilter> {
    let (targets, warning) = filter(level)?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // A closed stderr must not make the logger itself print (and panic) about it.
        .log_internal_errors(false)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => {
            let color = use_color(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            tracing_subscriber::registry()
                .with(fmt.with_ansi(color).with_filter(targets))
                .try_init()
        }
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_ansi(false)
                    .with_filter(targets),
            )
            .try_init(),
    };
    if let Some(w) = warning {
        tracing::warn!(target: "las", "{w}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// An error that shows its source and returns it: the line holds each text once; a
    /// cause not shown yet is appended.
    #[test]
    fn error_chain_prints_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("policy p: cannot read: {0}")]
        struct Shows(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot listen")]
        struct Hides(#[source] std::io::Error);
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(error_chain(&Shows(io())), "policy p: cannot read: gone");
        assert_eq!(error_chain(&Hides(io())), "cannot listen: gone");
    }

    #[test]
    fn no_color_set_and_non_empty_turns_colour_off() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }

    #[test]
    fn explicit_filter_must_parse() {
        assert!(filter(Some("las=debug,info")).is_ok());
        let e = filter(Some("las=loud")).unwrap_err();
        assert!(e.to_string().contains("las=loud"), "{e}");
    }
}
