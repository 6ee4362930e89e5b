//! The limits of every server of ours, in one place: the [`Limits`] type with its one
//! default, the command-line options that set them (`LimitArgs`, feature `clap`, flattened into `lasd`
//! and `las verifier serve`), and the one duration syntax of every binary ([`duration`]).
//!
//! [`serve_router`](crate::serve_router) applies every limit itself, so a server that
//! uses it cannot forget one.

use std::time::Duration;

/// The limits [`serve_router`](crate::serve_router) applies to every connection and
/// request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (bytes): a larger declared `Content-Length` gets 413
    /// before anything is read, a larger streamed body gets 413 once over it.
    pub body_limit: usize,
    /// Time a client has to send a whole request, headers and body together, counted
    /// from when the connection waits for it (accept, or the previous answer). Headers
    /// late: the connection is closed; body late: 408 `body-timeout` and the connection
    /// is closed. This also bounds an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Time a blocked response write may take to reach the kernel: a client that does not
    /// read its responses (e.g. pipelines requests and never reads) loses its connection
    /// after this long.
    pub write_timeout: Duration,
    /// Open connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
}

impl Limits {
    /// The defaults (`lasd`'s; the verification service raises only the body cap, see
    /// `las_verifier_service::SERVICE_BODY_LIMIT`).
    pub const DEFAULT: Limits = Limits {
        body_limit: 16 * 1024,
        header_timeout: Duration::from_secs(10),
        write_timeout: Duration::from_secs(10),
        max_connections: 4096,
        drain_timeout: Duration::from_secs(10),
    };
    /// Smallest body cap the options accept.
    pub const MIN_BODY_LIMIT: usize = 1024;
    /// Largest body cap the options accept.
    pub const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;
    /// Largest connection cap the options accept.
    pub const MAX_CONNECTIONS: usize = 1_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The one duration syntax of every binary: `30s`, `1m30s`, `500ms`, `1h 30m`
/// (humantime), or a bare number of seconds (so the values of the old `--*-secs` options
/// and their environment variables keep working).
pub mod duration {
    use std::time::Duration;

    /// Longest timeout accepted: an hour.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

    /// Any duration in the syntax of this module.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(Duration::from_secs(secs));
        }
        humantime::parse_duration(t).map_err(|e| {
            format!("`{s}` is not a duration such as 10s, 1m30s or 500ms, or seconds ({e})")
        })
    }

    /// A duration within `min..=max`.
    pub fn within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
        let d = parse(s)?;
        if d < min {
            return Err(if min <= Duration::from_millis(1) {
                format!("`{s}`: must be more than 0")
            } else {
                format!("`{s}`: must be at least {}", format(min))
            });
        }
        if d > max {
            return Err(format!("`{s}`: must be at most {}", format(max)));
        }
        Ok(d)
    }

    /// A timeout: more than zero, at most an hour.
    pub fn timeout(s: &str) -> Result<Duration, String> {
        within(s, Duration::from_millis(1), MAX_TIMEOUT)
    }

    /// A grace time: zero to an hour.
    pub fn grace(s: &str) -> Result<Duration, String> {
        within(s, Duration::ZERO, MAX_TIMEOUT)
    }

    /// `d` as the options print it (`10s`, `2m`, `500ms`).
    pub fn format(d: Duration) -> String {
        humantime::format_duration(d).to_string()
    }

    /// The type of duration options: shown in `--help` as `10s`, `2m`.
    pub use humantime::Duration as Shown;

    /// The value of a duration option, or of its deprecated `--OLD` form when that was
    /// given (seconds, or any duration as the old aliases took): checked by `check` like
    /// the new form, with a warning on stderr.
    pub fn or_deprecated_secs(
        old: &str,
        new: &str,
        secs: Option<&str>,
        value: Shown,
        check: impl Fn(&str) -> Result<Duration, String>,
    ) -> Result<Duration, String> {
        let Some(secs) = secs else {
            return Ok(*value);
        };
        let d = check(secs).map_err(|e| format!("--{old}: {e}"))?;
        tracing::warn!(
            target: "las",
            "--{old} is deprecated and will be removed: use --{new} {}",
            format(d)
        );
        Ok(d)
    }
}

/// Declares a duration option that had a `--NAME-secs` form (seconds) as one struct holding
/// both flags, to flatten into a binary's options: `NAME DURATION` (env `ENV`, default
/// `DEFAULT`, checked by `CHECK`), and the hidden, deprecated `--NAME-secs`, checked by
/// the same `CHECK`; given, the old form wins over the new one's environment variable and
/// logs that it is deprecated ([`duration::or_deprecated_secs`]). The struct's `get()`
/// gives the value. Used by [`LimitArgs`] and `las verifier serve`.
///
/// ```text
/// las_http::duration_option_with_secs! {
///     /// How long to wait for a LAS (`5s`; at most 5m).
///     LasTimeout: "las-timeout", env "LAS_VERIFIER_LAS_TIMEOUT_SECS",
///     default DEFAULT_LAS_TIMEOUT, check las_timeout
/// }
/// ```
#[cfg(feature = "clap")]
#[macro_export]
macro_rules! duration_option_with_secs {
    ($(#[doc = $doc:tt])* $name:ident: $long:tt, env $env:tt, default $default:expr, check $check:ident) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, clap::Args)]
        pub struct $name {
            $(#[doc = $doc])*
            #[arg(id = $long, long = $long, env = $env, value_name = "DURATION",
                  default_value_t = $default.into(), value_parser = $check)]
            value: $crate::duration::Shown,
            #[arg(id = concat!($long, "-secs"), long = concat!($long, "-secs"), hide = true,
                  value_name = "SECS")]
            secs: Option<String>,
        }

        impl $name {
            /// The value: the deprecated form's when it was given, else the new one's.
            pub fn get(&self) -> Result<::std::time::Duration, String> {
                $crate::duration::or_deprecated_secs(
                    concat!($long, "-secs"),
                    $long,
                    self.secs.as_deref(),
                    self.value,
                    |s| $check(s).map(Into::into),
                )
            }
        }
    };
}

/// The limit options of every server binary (`lasd`, `las verifier serve`): flattened
/// into each, so both take the same flags with the same syntax and defaults
/// ([`Limits::DEFAULT`]). The environment variables are `lasd`'s (`LAS_...`); the
/// verification service renames them to `LAS_VERIFIER_...` and raises the body cap's
/// default (`mut_arg` in `las verifier serve`'s options).
#[cfg(feature = "clap")]
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest request body accepted, in bytes (larger: 413 `body-too-large`, refused
    /// before it is read when its length is declared).
    #[arg(long, env = "LAS_MAX_BODY_BYTES", value_name = "BYTES",
          default_value_t = Limits::DEFAULT.body_limit as u32,
          value_parser = clap::value_parser!(u32)
              .range(Limits::MIN_BODY_LIMIT as i64..=Limits::MAX_BODY_LIMIT as i64))]
    pub max_body_bytes: u32,
    #[command(flatten)]
    pub header_timeout: HeaderTimeout,
    #[command(flatten)]
    pub write_timeout: WriteTimeout,
    /// Open connections at most; further ones are closed at once.
    #[arg(long, env = "LAS_MAX_CONNECTIONS", value_name = "N",
          default_value_t = Limits::DEFAULT.max_connections as u32,
          value_parser = clap::value_parser!(u32).range(1..=Limits::MAX_CONNECTIONS as i64))]
    pub max_connections: u32,
    #[command(flatten)]
    pub drain_timeout: DrainTimeout,
}

#[cfg(feature = "clap")]
duration_option_with_secs! {
    /// Time a client has to send a whole request, headers and body (`10s`, `500ms`, `1m`;
    /// a bare number is seconds; at most 1h). Late headers: the connection is closed; a
    /// late body: 408 `body-timeout`, then the connection is closed. Also how long an idle
    /// keep-alive connection stays open.
    HeaderTimeout: "header-timeout", env "LAS_HEADER_TIMEOUT_SECS",
    default Limits::DEFAULT.header_timeout, check humantime_timeout
}

#[cfg(feature = "clap")]
duration_option_with_secs! {
    /// Time an answer may stay blocked because the client does not read it; then the
    /// connection is closed (`10s`, `500ms`; a bare number is seconds; at most 1h).
    WriteTimeout: "write-timeout", env "LAS_WRITE_TIMEOUT_SECS",
    default Limits::DEFAULT.write_timeout, check humantime_timeout
}

#[cfg(feature = "clap")]
duration_option_with_secs! {
    /// Time in-flight requests may take to finish after SIGTERM/SIGINT (`10s`, `0s`; a
    /// bare number is seconds; at most 1h).
    DrainTimeout: "drain-timeout", env "LAS_DRAIN_TIMEOUT_SECS",
    default Limits::DEFAULT.drain_timeout, check humantime_grace
}

#[cfg(feature = "clap")]
fn humantime_timeout(s: &str) -> Result<humantime::Duration, String> {
    duration::timeout(s).map(Into::into)
}

#[cfg(feature = "clap")]
fn humantime_grace(s: &str) -> Result<humantime::Duration, String> {
    duration::grace(s).map(Into::into)
}

#[cfg(feature = "clap")]
impl LimitArgs {
    /// The limits these options set; a deprecated `--*-secs` option, when given, wins
    /// over its environment variable and says that it is deprecated.
    pub fn limits(&self) -> Result<Limits, String> {
        Ok(Limits {
            body_limit: self.max_body_bytes as usize,
            header_timeout: self.header_timeout.get()?,
            write_timeout: self.write_timeout.get()?,
            max_connections: self.max_connections as usize,
            drain_timeout: self.drain_timeout.get()?,
        })
    }
}
