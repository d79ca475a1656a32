//! A progress line on stderr for long reads, redrawn in place, and only for a person
//! at a terminal: never into a log file or a pipe.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const EVERY: Duration = Duration::from_millis(200);

/// Counts records and shows the count on stderr now and then.
#[derive(Debug)]
pub struct Progress {
    shown: bool,
    enabled: bool,
    last: Instant,
}

impl Progress {
    /// A progress line, shown only when stderr is a terminal.
    pub fn on_terminal() -> Self {
        Self {
            shown: false,
            enabled: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    /// Reports that `done` records (of `total`, when known) are printed.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled || self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let text = match total {
            Some(total) => format!("\r\x1b[2K{done}/{total} records"),
            None => format!("\r\x1b[2K{done} records"),
        };
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    /// Clears the line, if it was shown.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}
