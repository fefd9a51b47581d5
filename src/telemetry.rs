//! Tracing setup: human-readable lines by default, one JSON object a line with
//! `--log-format json`. Logs go to stderr; `RUST_LOG` overrides the default
//! (`DEFAULT_FILTER`).
//!
//! Logged values carry users' text (a monitor's name, an error quoting a request), so
//! no value may break a line: the human format writes every field, the message too,
//! through [`Escaped`], which writes control characters (line breaks, escape
//! sequences), Unicode line separators and bidirectional overrides as `\n`, `\r`,
//! `\t` or `\u{…}`. JSON escapes them itself.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `info`, but the storage engine at `warn`, and ractor at `warn`: ractor wraps every
/// actor's life in an `info` span, and an enabled span is a live record in the
/// subscriber for each of up to millions of actors (memory), entered and left on
/// every message (CPU). Our own lines name the monitor instead.
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn,ractor=warn";

/// Installs the global subscriber. Call once, from `main`, and keep the guard until
/// the end: dropping it flushes what is still buffered.
///
/// Lines are written to stderr by a dedicated thread, so a burst of alerts (a log
/// line each) costs the async workers the formatting but not a `write` syscall per
/// line. The buffer blocks rather than drops when full: no line is lost.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("pushmon-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    let result = match format {
        LogFormat::Human => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(error) = result {
        eprintln!("pushmon: logging was already set up: {error}");
    }
    guard
}

/// The fields of a human-format line as the default formatter writes them
/// (`name=value`, separated by spaces, the message bare, the `log.*` metadata of
/// `log` records left out), each value [`Escaped`].
struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldVisitor<'writer> {
    writer: Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Like the default formatter: a text field is quoted, the message is not.
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.empty) {
                self.writer.write_char(' ')?;
            }
            if name != "message" {
                write!(self.writer, "{}=", name.trim_start_matches("r#"))?;
            }
            write!(Escaped(&mut self.writer), "{value:?}")
        })();
    }
}

/// Writes what it is given with every character that could break or disguise a log
/// line escaped; everything else passes through unchanged.
struct Escaped<W>(W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean_from = 0;
        for (at, character) in text.char_indices() {
            if !needs_escape(character) {
                continue;
            }
            self.0.write_str(&text[clean_from..at])?;
            match character {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            clean_from = at + character.len_utf8();
        }
        self.0.write_str(&text[clean_from..])
    }
}

/// Control characters (C0, DEL, C1: line breaks, terminal escapes), the Unicode line
/// and paragraph separators, and the bidirectional embeddings, overrides and isolates
/// (which make a terminal show text in another order than it was written).
fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write!(Escaped(&mut out), "{text}").expect("writing to a String");
        out
    }

    #[test]
    fn control_characters_and_line_separators_are_escaped_and_the_rest_kept() {
        assert_eq!(escaped("plain text, é 😀"), "plain text, é 😀");
        assert_eq!(escaped("a\nb\r\nc\td"), r"a\nb\r\nc\td");
        assert_eq!(
            escaped("\u{1b}[31mred\u{7f}\u{85}"),
            r"\u{1b}[31mred\u{7f}\u{85}"
        );
        assert_eq!(
            escaped("x\u{2028}y\u{202e}z\u{2069}"),
            r"x\u{2028}y\u{202e}z\u{2069}"
        );
        assert_eq!(escaped("\0"), r"\u{0}");
        // A backslash is not escaped: the output is for people, not to be parsed back.
        assert_eq!(escaped(r"a\nb"), r"a\nb");
    }
}
