//! Line JSON, the framing of every control socket and of the enrollment port: one JSON value
//! per line, `\n`-terminated. Readers take at most `max` bytes for a line: a peer that never
//! sends a newline gets an error, not the process's memory.

use std::io::{self, BufRead, Read};

use serde::Serialize;

/// The longest line a client of a control socket reads (a reply with a few hundred log
/// lines, a status with every service and member).
pub const MAX_REPLY: usize = 1024 * 1024;

/// `msg` as one line of JSON. Serializing our message types cannot fail (no maps with
/// non-string keys); if one ever did, the line is `{}` and the reader sees an error there.
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

fn too_long(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("line longer than {max} bytes"),
    )
}

/// A line out of `line` as read with a limit of `max + 1` bytes: `None` at the end of the
/// stream, the line without its newline, or an error if it had no newline within `max`.
fn finish(line: Vec<u8>, max: usize) -> io::Result<Option<String>> {
    match line.last() {
        None => Ok(None),
        Some(b'\n') => Ok(Some(
            String::from_utf8_lossy(&line[..line.len() - 1]).into_owned(),
        )),
        Some(_) if line.len() > max => Err(too_long(max)),
        // the stream ended without a newline: the last line
        Some(_) => Ok(Some(String::from_utf8_lossy(&line).into_owned())),
    }
}

/// Reads one line of at most `max` bytes from a blocking reader.
pub fn read_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    r.take(max as u64 + 1).read_until(b'\n', &mut line)?;
    finish(line, max)
}

/// Reads one line of at most `max` bytes from an async reader.
#[cfg(feature = "tokio")]
pub async fn read_line_async<R>(r: &mut R, max: usize) -> io::Result<Option<String>>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = Vec::new();
    r.take(max as u64 + 1).read_until(b'\n', &mut line).await?;
    finish(line, max)
}

/// Lines out of bytes that arrive in pieces (a non-blocking socket in a poll loop).
#[derive(Debug)]
pub struct Buffer {
    bytes: Vec<u8>,
    max: usize,
}

impl Buffer {
    /// A buffer whose lines may be `max` bytes long.
    pub fn new(max: usize) -> Buffer {
        Buffer {
            bytes: Vec::new(),
            max,
        }
    }

    /// Adds what was read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// The next whole line (without its newline), if one has arrived.
    pub fn next_line(&mut self) -> Option<String> {
        let nl = self.bytes.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.bytes.drain(..=nl).collect();
        Some(String::from_utf8_lossy(&line[..nl]).into_owned())
    }

    /// Whether what waits for its newline is already longer than a line may be.
    pub fn overflowed(&self) -> bool {
        self.bytes.len() > self.max
    }

    /// Forgets what waits.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_within_the_limit_and_beyond() {
        let mut r = io::Cursor::new(b"{\"a\":1}\nlast".to_vec());
        assert_eq!(read_line(&mut r, 16).unwrap().as_deref(), Some("{\"a\":1}"));
        assert_eq!(read_line(&mut r, 16).unwrap().as_deref(), Some("last"));
        assert_eq!(read_line(&mut r, 16).unwrap(), None);

        let mut r = io::Cursor::new(vec![b'x'; 100]);
        let e = read_line(&mut r, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("16 bytes"), "{e}");
        // exactly max bytes and the newline is fine
        let mut r = io::Cursor::new(b"0123456789abcdef\n".to_vec());
        assert_eq!(read_line(&mut r, 16).unwrap().unwrap().len(), 16);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "current_thread")]
    async fn async_lines_have_the_same_limit() {
        let mut r = tokio::io::BufReader::new(&b"one\ntwo"[..]);
        assert_eq!(
            read_line_async(&mut r, 8).await.unwrap().as_deref(),
            Some("one")
        );
        assert_eq!(
            read_line_async(&mut r, 8).await.unwrap().as_deref(),
            Some("two")
        );
        assert_eq!(read_line_async(&mut r, 8).await.unwrap(), None);
        let long = [b'y'; 64];
        let mut r = tokio::io::BufReader::new(&long[..]);
        assert!(read_line_async(&mut r, 8).await.is_err());
    }

    #[test]
    fn a_buffer_gives_whole_lines_and_sees_an_overflow() {
        let mut b = Buffer::new(8);
        b.feed(b"{\"x\"");
        assert_eq!(b.next_line(), None);
        b.feed(b":1}\n{}\npart");
        assert_eq!(b.next_line().as_deref(), Some("{\"x\":1}"));
        assert_eq!(b.next_line().as_deref(), Some("{}"));
        assert_eq!(b.next_line(), None);
        assert!(!b.overflowed());
        b.feed(b"-and-much-more");
        assert!(b.overflowed());
        b.clear();
        assert!(!b.overflowed());
        assert_eq!(encode(&serde_json::json!({"ok": true})), b"{\"ok\":true}\n");
    }
}
