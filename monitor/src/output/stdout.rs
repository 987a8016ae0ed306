//! Newline-delimited JSON: one compact document per line, flushed at once.

use std::io::{self, Write};

use serde_json::Value;

use super::AlertSink;
use crate::alert::Alert;

/// Writes alert documents or events as NDJSON to any writer (standard
/// output, a file, a pipe).
///
/// Each document is serialized in full before the single write of its line,
/// so a reader never sees half a line from a serialization failure, and the
/// writer is flushed after every line so a reader sees it without delay.
#[derive(Debug)]
pub struct NdjsonSink<W: Write> {
    writer: W,
}

impl<W: Write> NdjsonSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> Self {
        NdjsonSink { writer }
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// Writes `value` as one compact JSON line and flushes.
    pub fn write_value(&mut self, value: &Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        self.writer.flush()
    }
}

impl<W: Write> AlertSink for NdjsonSink<W> {
    fn write_alert(&mut self, alert: &Alert) -> io::Result<()> {
        self.write_value(&alert.document)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::rules::builtin;

    /// Counts flushes, to check that every line is flushed.
    #[derive(Default)]
    struct Recorder {
        bytes: Vec<u8>,
        flushes: usize,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn events_become_flushed_lines() {
        let mut sink = NdjsonSink::new(Recorder::default());
        let first = json!({"process": {"args": ["a\nb"]}, "z": 1, "a": 2});
        sink.write_value(&first).unwrap();
        sink.write_value(&json!({"n": 2})).unwrap();
        let recorder = sink.into_inner();
        assert_eq!(recorder.flushes, 2);
        let text = String::from_utf8(recorder.bytes).unwrap();
        assert_eq!(
            text,
            "{\"process\":{\"args\":[\"a\\nb\"]},\"z\":1,\"a\":2}\n{\"n\":2}\n"
        );
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], first);
    }

    #[test]
    fn alerts_write_their_document() {
        let rules = builtin();
        let event = json!({"process": {"pid": 1, "args": ["dmesg", "-c"]}});
        let alert = Alert::new(&rules.rules()[0], &event, OffsetDateTime::UNIX_EPOCH);
        let mut sink = NdjsonSink::new(Vec::new());
        sink.write_alert(&alert).unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let back: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(back, alert.document);
    }

    #[test]
    fn write_errors_reach_the_caller() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = NdjsonSink::new(Broken).write_value(&json!({})).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
