//! What commands print: lines for people or one JSON document (`--json`)
//! on standard output; notes and progress on standard error.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::error::Result;

/// Where a command's results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Human output, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as pretty JSON when `--json` was given, else calls
    /// `human` to write lines.
    pub(crate) fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, value)
                .map_err(|e| crate::Error::from(std::io::Error::from(e)))?;
            writeln!(out)?;
        } else {
            human(&mut out)?;
        }
        out.flush()?;
        Ok(())
    }

    /// A note for people on standard error (never in `--json` output).
    pub(crate) fn note(&self, text: impl std::fmt::Display) {
        eprintln!("{text}");
    }
}

/// A progress bar of bytes and rate on standard error, shown only when it
/// is a terminal (hidden otherwise, so logs and tests stay clean).
pub(crate) fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}
