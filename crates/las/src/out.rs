//! Writing to stdout and stderr without panicking when the reader has gone.
//!
//! `println!` panics when stdout is a closed pipe (`las verify ... | head -1`): Rust
//! ignores SIGPIPE, so the write fails with EPIPE instead of ending the process as in
//! other Unix tools. Commands write their results through [`stdout`], which turns a
//! closed stdout into [`StdoutClosed`]; `main` then ends the process the way a Unix tool
//! ends (see `main::closed_stdout`). Notes and errors go through `note!`, which drops
//! what cannot be written: there is nobody left to tell.

use std::fmt;
use std::io::{self, Write};

/// Stdout is a closed pipe: the reader is gone, nothing more can be delivered.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct StdoutClosed;

/// Writes `args` to stdout and flushes. A closed pipe is [`StdoutClosed`]; other errors
/// (a full disk behind a redirection) are errors naming stdout.
pub fn stdout(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `print!` through [`stdout`]: evaluates to `anyhow::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// `println!` through [`stdout`]: evaluates to `anyhow::Result<()>`.
macro_rules! outln {
    () => {
        $crate::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: a line that cannot be written to stderr is dropped.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::out::stderr_line(format_args!($($arg)*))
    };
}

/// Writes one line to stderr, ignoring errors (see `note!`).
pub fn stderr_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Whether `e` (or a cause in its chain) is [`StdoutClosed`].
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}
