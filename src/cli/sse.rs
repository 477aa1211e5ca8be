//! A `text/event-stream` parser (the WHATWG Server-Sent Events format) fed with bytes as they
//! arrive: lines may be cut anywhere between chunks, even between a `\r` and its `\n`. A line
//! is bounded so that a server that never ends one cannot fill memory.

/// The longest line accepted (a job as JSON is a few KiB).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id` field, when the event had one.
    pub id: Option<String>,
    /// The `event` field; `message` when absent.
    pub event: String,
    /// The `data` lines, joined by `\n`.
    pub data: String,
}

/// Turns chunks of bytes into events.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` first in this one ends no new line.
    after_cr: bool,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds `chunk`; returns the events it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(format!("an event stream line over {MAX_LINE} bytes"));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        // An event without data is not dispatched (the id still counts for the next one).
        let data = self.data.take()?;
        Some(SseEvent {
            id: self.id.clone(),
            event: event.unwrap_or_else(|| "message".to_owned()),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\nid: 1\nevent: state\ndata: {\"a\":1}\n\n\
                          id: 2\r\nevent: progress\r\ndata: {\"a\":2}\r\n\r\n\
                          id:3\revent:done\rdata: first\rdata: second\r\r";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                id: Some("1".into()),
                event: "state".into(),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                id: Some("2".into()),
                event: "progress".into(),
                data: "{\"a\":2}".into(),
            },
            SseEvent {
                id: Some("3".into()),
                event: "done".into(),
                data: "first\nsecond".into(),
            },
        ]
    }

    #[test]
    fn events_are_parsed_whatever_the_line_endings_and_comments_are_skipped() {
        let mut parser = SseParser::default();
        assert_eq!(parser.push(STREAM.as_bytes()).unwrap(), expected());
    }

    #[test]
    fn events_cut_at_every_possible_chunk_boundary_parse_the_same() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&bytes[..cut]).unwrap();
            events.extend(parser.push(&bytes[cut..]).unwrap());
            assert_eq!(events, expected(), "cut at byte {cut}");
        }
    }

    #[test]
    fn events_fed_one_byte_at_a_time_parse_the_same() {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for byte in STREAM.as_bytes() {
            events.extend(parser.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(events, expected());
    }

    #[test]
    fn a_crlf_split_between_chunks_ends_only_one_line() {
        let mut parser = SseParser::default();
        let mut events = parser.push(b"data: x\r").unwrap();
        events.extend(parser.push(b"\n\r").unwrap());
        events.extend(parser.push(b"\n").unwrap());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].data, "x");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_but_its_id_is_kept() {
        let mut parser = SseParser::default();
        let events = parser.push(b"id: 7\n\ndata: y\n\n").unwrap();
        assert_eq!(
            events,
            vec![SseEvent {
                id: Some("7".into()),
                event: "message".into(),
                data: "y".into()
            }]
        );
    }

    #[test]
    fn a_line_that_never_ends_is_refused_instead_of_growing() {
        let mut parser = SseParser::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(vec![]);
        for _ in 0..5 {
            result = parser.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
