//! The process's logs on stderr: plain text (the default) or one JSON object a line
//! (`--log-format json`, what the manifests use, for log pipelines), with ANSI colour only when
//! stderr is a terminal, so files and collectors never see escape codes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
}

/// Whether to colour the output: text on a terminal only.
pub fn ansi(format: LogFormat, terminal: bool) -> bool {
    format == LogFormat::Text && terminal
}

/// A subscriber writing to `writer` with `filter` (EnvFilter syntax; `info` if it does not parse).
pub fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// Sets the process's subscriber: stderr, coloured only when it is a terminal.
pub fn init(filter: &str, format: LogFormat) {
    let ansi = ansi(format, std::io::stderr().is_terminal());
    // Also routes the `log` records of dependencies. Only fails if a subscriber is already set,
    // which leaves that one in place.
    let _ = subscriber(filter, format, ansi, std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(format: LogFormat, ansi: bool) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber("info", format, ansi, buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(object = "team-a/key", "reconcile failed");
            tracing::debug!("below the filter");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_writes_one_parseable_object_a_line_with_level_message_and_fields() {
        let text = logged(LogFormat::Json, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "reconcile failed");
        assert_eq!(line["fields"]["object"], "team-a/key");
        assert!(line["timestamp"].is_string());
    }

    #[test]
    fn colour_only_for_text_on_a_terminal_and_never_an_escape_code_otherwise() {
        assert!(ansi(LogFormat::Text, true));
        assert!(!ansi(LogFormat::Text, false));
        assert!(!ansi(LogFormat::Json, true));
        for format in [LogFormat::Text, LogFormat::Json] {
            let text = logged(format, ansi(format, false));
            assert!(text.contains("reconcile failed"), "{text}");
            assert!(!text.contains('\u{1b}'), "{text:?}");
        }
        assert!(logged(LogFormat::Text, true).contains('\u{1b}'));
    }
}
