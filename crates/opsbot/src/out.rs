//! Standard output for scripts: `opsbot chat -c 虚拟机 | head -1` closes the pipe
//! after one line, and what follows is dropped quietly instead of panicking on
//! `EPIPE` (Rust ignores SIGPIPE, so a closed pipe is an error on every write). The
//! command itself goes on to its end and exits with its usual status.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output was closed by its reader: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line (flushed, so a pager sees it at once); a closed or failing stdout
/// silences the rest.
pub fn line(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!(error = %e, "standard output failed; the rest of the output is dropped");
        }
    }
}

/// `println!` through [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Colours in logs only for a person at a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>): files, pipes and journald get plain text.
pub fn log_colours() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
