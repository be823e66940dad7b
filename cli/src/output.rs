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

/// The widest a progress bar's line may be, in columns: it fits an
/// 80-column terminal without wrapping, however wide the terminal is.
pub(crate) const PROGRESS_COLUMNS: usize = 80;

/// The widest a message of [`progress`] may be (`uploading screenshot`);
/// a longer one is cut.
const MESSAGE_COLUMNS: usize = 20;

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
    bar.set_style(progress_style(total, what));
    bar.set_message(progress_message(what));
    bar
}

/// `what`, cut to [`MESSAGE_COLUMNS`] characters.
fn progress_message(what: &str) -> String {
    what.chars().take(MESSAGE_COLUMNS).collect()
}

/// The style of [`progress`]: `MSG [=====>    ] POS/TOTAL RATE ETA` in at
/// most [`PROGRESS_COLUMNS`] columns. The bar takes what the other fields
/// leave at their widest: a position or rate of indicatif's binary units
/// (`1023.99 MiB`, `1023.99 MiB/s`), the total as it prints, an ETA of at
/// most 3 columns (`59m`, `14w`; none past 99 days).
fn progress_style(total: Option<u64>, what: &str) -> ProgressStyle {
    const POS: usize = "1023.99 MiB".len();
    const RATE: usize = "1023.99 MiB/s".len();
    const ETA: usize = 3;
    let msg = what.chars().count().min(MESSAGE_COLUMNS);
    let total = total.map_or(POS, |t| indicatif::HumanBytes(t).to_string().len());
    // "MSG [" + bar + "] " + POS + "/" + TOTAL + " " + RATE + " " + ETA
    let rest = msg + 2 + 2 + POS + 1 + total + 1 + RATE + 1 + ETA;
    let bar = PROGRESS_COLUMNS.saturating_sub(rest).max(1);
    let template = format!(
        "{{msg}} [{{bar:{bar}}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{eta3}}"
    );
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "eta3",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let eta = state.eta();
                if eta < std::time::Duration::from_secs(100 * 86_400) {
                    let _ = write!(w, "{:#}", indicatif::HumanDuration(eta));
                }
            },
        )
        .progress_chars("=> ")
}

/// A byte count as people read it: `150.0 MiB (157286400 bytes)`, or
/// `512 bytes` (`1 byte`) under 1 KiB. Units are binary (KiB = 1024 bytes),
/// with one decimal.
pub(crate) fn bytes(n: u64) -> String {
    match scaled(n) {
        None if n == 1 => "1 byte".into(),
        None => format!("{n} bytes"),
        Some(short) => format!("{short} ({n} bytes)"),
    }
}

/// A byte count in few characters, for columns: `150.0 MiB`, `512 B`.
pub(crate) fn bytes_short(n: u64) -> String {
    scaled(n).unwrap_or_else(|| format!("{n} B"))
}

/// `n` in the largest binary unit that keeps it at 1.0 or more, with one
/// decimal (`None` under 1 KiB): a value that would round to 1024.0 moves
/// up a unit.
fn scaled(n: u64) -> Option<String> {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return None;
    }
    // Display only: an f64 is exact enough for one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    Some(format!("{value:.1} {}", UNITS[unit]))
}

/// Rewrites the byte limits in a message a server sent (`over the
/// 157286400-byte limit`, as older gateways and the node word a `413`) as
/// people read them: `over the limit of 150.0 MiB (157286400 bytes)`.
pub(crate) fn limits_for_people(message: &str) -> String {
    const TAIL: &str = "-byte limit";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(TAIL) {
        let head = &rest[..at];
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let number = &head[head.len() - digits..];
        match (
            head[..head.len() - digits].strip_suffix("the "),
            number.parse::<u64>(),
        ) {
            (Some(before), Ok(n)) if digits > 0 => {
                out.push_str(before);
                out.push_str("the limit of ");
                out.push_str(&bytes(n));
            }
            _ => {
                out.push_str(head);
                out.push_str(TAIL);
            }
        }
        rest = &rest[at + TAIL.len()..];
    }
    out.push_str(rest);
    out
}

/// A time in unix milliseconds as people read it, in UTC:
/// `2026-12-04 12:18:20 UTC` (proleptic Gregorian calendar).
pub(crate) fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's `civil_from_days`), for days
    // since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use indicatif::{ProgressBar, ProgressDrawTarget, TermLike};

    use super::{PROGRESS_COLUMNS, bytes, bytes_short, limits_for_people, utc};

    /// A terminal `width` columns wide that keeps what is written to it.
    #[derive(Debug)]
    struct Screen {
        width: u16,
        written: Arc<Mutex<Vec<String>>>,
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.written.lock().unwrap().push(s.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line a progress bar of `what` draws at `pos` of `total`, on a
    /// terminal `width` columns wide.
    fn drawn(what: &str, total: Option<u64>, pos: u64, width: u16) -> String {
        let written = Arc::new(Mutex::new(Vec::new()));
        let screen = Screen {
            width,
            written: written.clone(),
        };
        let bar =
            ProgressBar::with_draw_target(total, ProgressDrawTarget::term_like(Box::new(screen)));
        bar.set_style(super::progress_style(total, what));
        bar.set_message(super::progress_message(what));
        bar.set_position(pos);
        bar.abandon();
        // The last draw; indicatif pads a line with spaces to the
        // terminal's width to clear what was there, which never wraps.
        let written = written.lock().unwrap();
        let last = written
            .iter()
            .rev()
            .map(|s| s.trim_end())
            .find(|s| !s.is_empty());
        last.unwrap_or_default().to_owned()
    }

    #[test]
    fn progress_bars_fit_in_80_columns() {
        const MIB: u64 = 1 << 20;
        let totals = [
            None,
            Some(0),
            Some(1023),
            Some(157_286_400),
            Some(1024 * MIB - 1),
            Some(1023 * 1024 * MIB + 1000 * MIB),
            Some(u64::MAX),
        ];
        let whats = [
            "hashing",
            "uploading",
            "uploading icon",
            "uploading screenshot",
            "downloading",
            "a message longer than any the commands use",
        ];
        for width in [80, 200] {
            for what in whats {
                for total in totals {
                    let t = total.unwrap_or(1024 * 1024 * MIB - 1);
                    for pos in [0, 1, t / 3, t - t / 1000, t] {
                        let line = drawn(what, total, pos, width);
                        assert!(line.contains('['), "{line:?}");
                        assert!(
                            line.chars().count() <= PROGRESS_COLUMNS,
                            "{} columns: {line:?}",
                            line.chars().count()
                        );
                    }
                }
            }
        }
        // The bar itself keeps room to move.
        let line = drawn("uploading screenshot", Some(157_286_400), 1, 80);
        let bar = line.split('[').nth(1).unwrap().split(']').next().unwrap();
        assert!(bar.len() >= 10, "{line:?}");
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1024), "1.0 KiB (1024 bytes)");
        assert_eq!(bytes(10_240), "10.0 KiB (10240 bytes)");
        assert_eq!(bytes(157_286_400), "150.0 MiB (157286400 bytes)");
        // Just under 1 MiB would round to 1024.0 KiB: one unit up.
        assert_eq!(bytes(1_048_575), "1.0 MiB (1048575 bytes)");
        assert_eq!(bytes(3 << 30), "3.0 GiB (3221225472 bytes)");
        assert_eq!(bytes_short(300_000), "293.0 KiB");
        assert_eq!(bytes_short(512), "512 B");
        assert_eq!(bytes_short(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn byte_limits_in_messages_are_rewritten() {
        assert_eq!(
            limits_for_people("the request body is over the 157286400-byte limit"),
            "the request body is over the limit of 150.0 MiB (157286400 bytes)"
        );
        assert_eq!(
            limits_for_people("over the 1000-byte limit; and the 2048-byte limit too"),
            "over the limit of 1000 bytes; and the limit of 2.0 KiB (2048 bytes) too"
        );
        // Nothing to rewrite: as it was.
        for same in [
            "no limit here",
            "a 12-byte limit",
            "the x-byte limit",
            "-byte limit",
        ] {
            assert_eq!(limits_for_people(same), same);
        }
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @1796420300` prints Fri Dec  4 21:38:20 UTC 2026.
        assert_eq!(utc(1_796_420_300_432), "2026-12-04 21:38:20 UTC");
        // A leap day, and the day after.
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(951_868_800_000), "2000-03-01 00:00:00 UTC");
    }
}
