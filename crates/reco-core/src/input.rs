//! Opening input files safely: only regular files, with size and line-length limits.
//!
//! Every path a user gives goes through here. A FIFO would block `open` until a writer appears,
//! a character device such as `/dev/zero` is an endless line, and a file of gigabytes of text
//! without a newline would be read into one buffer: each is refused up front with a message
//! naming the path, instead of hanging or exhausting memory.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// The longest line any reader accepts (16 MiB). Real records are a few hundred bytes; item
/// descriptions a few kilobytes. A longer line means a binary file or a missing newline.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The largest model or index file read whole into memory (64 GiB): artifacts are checked
/// against their recorded sizes and checksums; this only stops an endless or absurd file.
pub const MAX_FILE_BYTES: u64 = 64 << 30;

/// The largest specification or configuration file (JSON or TOML) read whole (16 MiB).
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

/// What kind of file system object a path is, for the refusal message.
fn describe(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        return "a directory";
    }
    "not a regular file"
}

/// Checks that `path` is a regular file (following symbolic links) and returns its length.
///
/// Called before opening, because opening a FIFO blocks until another process writes to it.
pub fn check_regular(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "is {}, not a regular file; reco reads only regular files (copy the data into \
                 a file first)",
                describe(&ft)
            ),
        });
    }
    Ok(meta.len())
}

/// Opens a regular file for reading; refuses FIFOs, devices, sockets and directories.
pub fn open(path: &Path) -> Result<File> {
    check_regular(path)?;
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Reads a whole regular file of at most `limit` bytes.
///
/// The limit is checked against the file's length and again while reading, so a file that
/// grows under us is still bounded.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let len = check_regular(path)?;
    if len > limit {
        return Err(too_big(path, len, limit));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(path, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Reads a whole specification or configuration file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read(path, MAX_SPEC_BYTES)?;
    String::from_utf8(bytes).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!(
            "is not UTF-8 text (invalid byte at offset {}); a specification must be a JSON or \
             TOML text file",
            e.utf8_error().valid_up_to()
        ),
    })
}

fn too_big(path: &Path, len: u64, limit: u64) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: format!(
            "is {len} bytes, more than the {limit} bytes reco reads for a file of this kind; is \
             it the right file?"
        ),
    }
}

/// Reads one line (up to and including `\n`) into `buf`, refusing lines longer than `max`
/// bytes; returns the bytes read (0 at end of input). `buf` is cleared first.
///
/// Unlike `read_until`, the buffer never grows past `max`, so an endless line (a device, a
/// binary file) costs at most `max` bytes of memory before the error.
pub fn read_line_limited<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::End
            } else {
                LineRead::Line
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(p) => (p + 1, true),
            None => (available.len(), false),
        };
        if buf.len().saturating_add(take) > max {
            let room = max - buf.len();
            buf.extend_from_slice(&available[..room]);
            reader.consume(room);
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(LineRead::Line);
        }
    }
}

/// The outcome of [`read_line_limited`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line (possibly the last, without `\n`) is in the buffer.
    Line,
    /// End of input; the buffer is empty.
    End,
    /// The line is longer than the limit; the buffer holds its first `max` bytes.
    TooLong,
}

/// Whether `bytes` look like binary data rather than text: a NUL byte, or many control bytes.
pub fn looks_binary(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(4096)];
    if sample.contains(&0) {
        return true;
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    control * 10 > sample.len().max(1)
}

/// A short, printable rendering of untrusted text for an error message: control characters
/// escaped and the length capped at `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let data = b"ab\ncdef\nxyz";
        let mut r = std::io::BufReader::with_capacity(2, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_limited(&mut r, &mut buf, 5).unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"ab\n");
        assert_eq!(
            read_line_limited(&mut r, &mut buf, 4).unwrap(),
            LineRead::TooLong
        );
        assert_eq!(buf.len(), 4);
        let mut r = std::io::BufReader::with_capacity(3, &data[..]);
        let mut lines = Vec::new();
        while read_line_limited(&mut r, &mut buf, 100).unwrap() == LineRead::Line {
            lines.push(buf.clone());
        }
        assert_eq!(lines, [&b"ab\n"[..], b"cdef\n", b"xyz"]);
    }

    #[test]
    fn an_endless_device_is_refused_before_reading() {
        #[cfg(unix)]
        {
            let e = open(Path::new("/dev/zero")).unwrap_err().to_string();
            assert!(
                e.contains("/dev/zero") && e.contains("character device"),
                "{e}"
            );
            let d = tempfile::tempdir().unwrap();
            let fifo = d.path().join("pipe");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo with a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let e = read(&fifo, 10).unwrap_err().to_string();
            assert!(e.contains("FIFO"), "{e}");
            let e = read_text(d.path()).unwrap_err().to_string();
            assert!(e.contains("a directory"), "{e}");
        }
    }

    #[test]
    fn size_limits_and_text_checks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read(&p, 10).unwrap().len(), 10);
        assert!(read(&p, 9).unwrap_err().to_string().contains("10 bytes"));
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert!(read_text(&p).unwrap_err().to_string().contains("UTF-8"));
        assert!(looks_binary(b"ELF\x02\x01\x01\0\0"));
        assert!(!looks_binary(b"user,item\n1,2\n"));
        assert_eq!(printable("a\u{1}b\ncd", 4), "a\\u{1}b\\n…");
    }
}
