//! Reading delimited text records with line numbers, for every loader.
//!
//! Records are lines. With a single-byte delimiter, fields may be quoted with `"` (a doubled
//! `""` inside is a literal quote), so titles such as `"Heat, the film"` keep their comma; a
//! quoted field cannot span lines. Multi-character delimiters such as MovieLens' `::` and runs of
//! whitespace have no quoting. Bytes that are not UTF-8 are read as Latin-1, which is
//! what the older MovieLens files use, so nothing is lost or rejected for its encoding.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::{self, LineRead, MAX_LINE_BYTES};

/// How fields are separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// One byte, e.g. `,`, `\t`, `|`, `;`; quoting with `"` is honoured.
    Byte(u8),
    /// A multi-byte separator such as `::`; no quoting.
    Str(String),
    /// Runs of spaces or tabs; no quoting.
    Whitespace,
}

impl std::str::FromStr for Delimiter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "tab" | "\\t" | "\t" => Delimiter::Byte(b'\t'),
            "comma" => Delimiter::Byte(b','),
            "space" | "whitespace" | "ws" => Delimiter::Whitespace,
            _ if s.len() == 1 => Delimiter::Byte(s.as_bytes()[0]),
            _ if !s.is_empty() => Delimiter::Str(s.to_string()),
            _ => return Err(Error::param("delimiter", "must not be empty")),
        })
    }
}

/// The layout of a delimited text file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFormat {
    /// Field separator.
    pub delimiter: Delimiter,
    /// Whether the first line names the columns.
    pub has_header: bool,
}

impl TextFormat {
    /// Comma-separated with a header line.
    pub fn csv() -> Self {
        TextFormat {
            delimiter: Delimiter::Byte(b','),
            has_header: true,
        }
    }

    /// Tab-separated with a header line.
    pub fn tsv() -> Self {
        TextFormat {
            delimiter: Delimiter::Byte(b'\t'),
            has_header: true,
        }
    }
}

/// Which column holds a value: a header name or a 0-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnRef {
    /// Header name (exact match first, then case-insensitive).
    Name(String),
    /// 0-based position.
    Index(usize),
}

impl ColumnRef {
    /// Parses a user's column choice: a number is a 1-based position, anything else a name.
    pub fn parse(s: &str) -> ColumnRef {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => ColumnRef::Index(n - 1),
            _ => ColumnRef::Name(s.to_string()),
        }
    }
}

/// The most fields a record may have; a wider row is a wrong delimiter or a binary file.
pub const MAX_FIELDS: usize = 100_000;

/// A record reader that knows its file and the line it is on.
pub struct RecordReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    delimiter: Delimiter,
    line: u64,
    first: bool,
    /// Fields every record must have: the header's, else the first record's.
    width: Option<usize>,
    /// Column names from the header line; empty when the file has none.
    pub header: Vec<String>,
}

impl RecordReader {
    /// Opens `path` (a regular file only); reads the header line when the format has one.
    pub fn open(path: &Path, format: &TextFormat) -> Result<Self> {
        let file = input::open(path)?;
        Self::from_reader(path, BufReader::with_capacity(1 << 20, file), format)
    }

    /// Reads records from any buffered reader; `path` names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl BufRead + Send + 'static,
        format: &TextFormat,
    ) -> Result<Self> {
        let mut r = RecordReader {
            path: path.to_path_buf(),
            reader: Box::new(reader),
            buf: Vec::new(),
            delimiter: format.delimiter.clone(),
            line: 0,
            first: true,
            width: None,
            header: Vec::new(),
        };
        if format.has_header {
            let mut h = Vec::new();
            if !r.next_record(&mut h)? {
                return Err(Error::EmptyFile { path: r.path });
            }
            r.header = h.iter().map(|s| s.trim().to_string()).collect();
            r.check_header(format)?;
        }
        Ok(r)
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line number of the record last returned.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads the next non-empty record into `fields` (reusing its strings); false at end of file.
    pub fn next_record(&mut self, fields: &mut Vec<String>) -> Result<bool> {
        let mut n = 0usize;
        loop {
            let read = input::read_line_limited(&mut self.reader, &mut self.buf, MAX_LINE_BYTES)
                .map_err(|e| Error::io(&self.path, e))?;
            self.line += 1;
            if self.line.is_multiple_of(65_536) {
                crate::interrupt::check()?;
            }
            match read {
                LineRead::End => return Ok(false),
                LineRead::Line => {}
                LineRead::TooLong => {
                    return Err(self.bad_line(format!(
                        "line longer than {} MiB: {}",
                        MAX_LINE_BYTES >> 20,
                        if input::looks_binary(&self.buf) {
                            "this looks like a binary file, not delimited text"
                        } else {
                            "a missing line break or the wrong file"
                        }
                    )));
                }
            }
            if self.first && input::looks_binary(&self.buf) {
                return Err(
                    self.bad_line("this looks like a binary file, not delimited text".into())
                );
            }
            let buf = &mut self.buf;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let first = self.first;
            let mut push = |f: &[u8]| {
                if n < MAX_FIELDS {
                    set_field(fields, n, f, first && n == 0);
                }
                n += 1;
            };
            match &self.delimiter {
                Delimiter::Whitespace => buf
                    .split(|b| *b == b' ' || *b == b'\t')
                    .filter(|f| !f.is_empty())
                    .for_each(&mut push),
                Delimiter::Str(s) => split_str(buf, s.as_bytes()).for_each(&mut push),
                Delimiter::Byte(b) if buf.contains(&b'"') => {
                    let (fs, ok) = split_quoted(buf, *b);
                    if !ok {
                        let text = String::from_utf8_lossy(buf).into_owned();
                        return Err(Error::parse(
                            &self.path,
                            self.line,
                            "(record)",
                            &text,
                            "unterminated quoted field",
                        ));
                    }
                    fs.iter().for_each(|f| push(f));
                }
                Delimiter::Byte(b) => buf.split(|x| x == b).for_each(&mut push),
            }
            if n == 1 && fields[0].trim().is_empty() {
                n = 0;
                continue;
            }
            if n > MAX_FIELDS {
                return Err(self.bad_line(format!(
                    "{n} fields, more than {MAX_FIELDS}; is the delimiter right?"
                )));
            }
            self.first = false;
            fields.truncate(n);
            if self.width.is_none() {
                self.width = Some(n);
            }
            return Ok(true);
        }
    }

    /// Checks that a record has as many fields as the header (or, without one, the first
    /// record); the error names the first missing column, or the first extra field.
    pub fn check_width(&self, fields: &[String]) -> Result<()> {
        let Some(want) = self.width else {
            return Ok(());
        };
        let n = fields.len();
        if n < want {
            return Err(Error::parse(
                &self.path,
                self.line,
                self.column_name(n),
                &fields.join("|"),
                format!("row has {n} fields, expected {want}: this column and the ones after it are missing"),
            ));
        }
        if n > want {
            let what = if self.header.is_empty() {
                "the first row"
            } else {
                "the header"
            };
            return Err(Error::parse(
                &self.path,
                self.line,
                format!("#{}", want + 1),
                &fields[want..].join("|"),
                format!(
                    "row has {n} fields, {what} has {want}: extra fields (quote a field that \
                     contains the delimiter, check --delimiter, or pass --skip-bad-rows)"
                ),
            ));
        }
        Ok(())
    }

    /// Resolves a column reference against the header (or the width of the first data row).
    pub fn resolve(&self, col: &ColumnRef) -> Result<usize> {
        match col {
            ColumnRef::Index(i) => Ok(*i),
            ColumnRef::Name(name) => self
                .header
                .iter()
                .position(|h| h == name)
                .or_else(|| {
                    self.header
                        .iter()
                        .position(|h| h.eq_ignore_ascii_case(name))
                })
                .ok_or_else(|| self.missing(name)),
        }
    }

    /// The error for a column that is not there.
    pub fn missing(&self, name: &str) -> Error {
        Error::MissingColumn {
            path: self.path.clone(),
            column: name.to_string(),
            available: if self.header.is_empty() {
                "the file has no header; give 1-based positions".to_string()
            } else {
                input::printable(&self.header.join(", "), 200)
            },
        }
    }

    /// An error about the whole current line.
    fn bad_line(&self, message: String) -> Error {
        Error::Format {
            path: self.path.clone(),
            message: format!("line {}: {message}", self.line),
        }
    }

    /// A header that is one column holding another likely delimiter means `--delimiter` is
    /// wrong; say so now rather than as a missing column later.
    fn check_header(&self, format: &TextFormat) -> Result<()> {
        if self.header.len() != 1 {
            return Ok(());
        }
        let h = &self.header[0];
        let current = match &format.delimiter {
            Delimiter::Byte(b) => Some((*b as char).to_string()),
            Delimiter::Str(s) => Some(s.clone()),
            Delimiter::Whitespace => None,
        };
        let guess = [
            ("\t", "tab"),
            (";", ";"),
            ("|", "|"),
            ("::", "::"),
            (",", ","),
        ]
        .into_iter()
        .find(|(d, _)| h.contains(d) && current.as_deref() != Some(*d));
        match guess {
            Some((d, flag)) => Err(Error::Format {
                path: self.path.clone(),
                message: format!(
                    "the header is a single column ({:?}) that contains {d:?}; if that is the \
                     field separator, pass --delimiter '{flag}'",
                    input::printable(h, 80)
                ),
            }),
            _ => Ok(()),
        }
    }

    /// A printable name for column position `i`: its header name or `#i+1`.
    pub fn column_name(&self, i: usize) -> String {
        self.header
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("#{}", i + 1))
    }

    /// The field at position `i` of `fields`, or an error naming the line and the column.
    pub fn field<'a>(&self, fields: &'a [String], i: usize) -> Result<&'a str> {
        fields.get(i).map(|s| s.trim()).ok_or_else(|| {
            Error::parse(
                &self.path,
                self.line,
                self.column_name(i),
                &fields.join("|"),
                format!("row has {} fields, column is field {}", fields.len(), i + 1),
            )
        })
    }

    /// A parse error at the current line.
    pub fn error(&self, column: usize, text: &str, message: impl Into<String>) -> Error {
        Error::parse(
            &self.path,
            self.line,
            self.column_name(column),
            text,
            message,
        )
    }

    /// Parses a finite float at position `i`.
    pub fn float(&self, fields: &[String], i: usize) -> Result<f32> {
        let s = self.field(fields, i)?;
        match s.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(self.error(i, s, "not a finite number")),
            Err(_) => Err(self.error(i, s, "not a number")),
        }
    }

    /// Parses an integer timestamp at position `i` (a float such as `881250949.0` is truncated).
    pub fn timestamp(&self, fields: &[String], i: usize) -> Result<i64> {
        let s = self.field(fields, i)?;
        if let Ok(v) = s.parse::<i64>() {
            return Ok(v);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v.abs() < 9.0e18 => Ok(v as i64),
            _ => Err(self.error(i, s, "not an integer or decimal timestamp")),
        }
    }
}

fn set_field(fields: &mut Vec<String>, n: usize, bytes: &[u8], strip_bom: bool) {
    let bytes = if strip_bom {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    if fields.len() <= n {
        fields.push(String::new());
    }
    let f = &mut fields[n];
    f.clear();
    match std::str::from_utf8(bytes) {
        Ok(s) => f.push_str(s),
        Err(_) => f.extend(bytes.iter().map(|&b| b as char)),
    }
}

/// Splits a line with `"`-quoted fields; false when a quote is not closed.
fn split_quoted(line: &[u8], delim: u8) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut k = 0;
    let mut at_start = true;
    while k < line.len() {
        let c = line[k];
        if at_start && c == b'"' {
            k += 1;
            let mut closed = false;
            while k < line.len() {
                if line[k] == b'"' {
                    if line.get(k + 1) == Some(&b'"') {
                        cur.push(b'"');
                        k += 2;
                        continue;
                    }
                    closed = true;
                    k += 1;
                    break;
                }
                cur.push(line[k]);
                k += 1;
            }
            if !closed {
                return (out, false);
            }
            at_start = false;
            continue;
        }
        if c == delim {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
        k += 1;
    }
    out.push(cur);
    (out, true)
}

fn split_str<'a>(buf: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(buf);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(p) => {
                rest = Some(&r[p + sep.len()..]);
                Some(&r[..p])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(content: &[u8], format: &TextFormat) -> (Vec<String>, Vec<(u64, Vec<String>)>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        let mut r = RecordReader::open(f.path(), format).unwrap();
        let mut out = Vec::new();
        let mut fields = Vec::new();
        while r.next_record(&mut fields).unwrap() {
            out.push((r.line(), fields.clone()));
        }
        (r.header.clone(), out)
    }

    #[test]
    fn csv_with_quotes_bom_and_blank_lines() {
        let (h, rows) = read_all(
            b"\xEF\xBB\xBFmovieId,title,genres\n1,\"Toy Story (1995)\",Animation|Children\n\n2,\"Heat, the film\",Crime\n",
            &TextFormat::csv(),
        );
        assert_eq!(h, ["movieId", "title", "genres"]);
        assert_eq!(rows[0].1, ["1", "Toy Story (1995)", "Animation|Children"]);
        assert_eq!(rows[1].1[1], "Heat, the film");
        assert_eq!(rows[1].0, 4, "line numbers count blank lines");
    }

    #[test]
    fn multi_byte_delimiter_and_latin1() {
        let fmt = TextFormat {
            delimiter: Delimiter::Str("::".into()),
            has_header: false,
        };
        let (_, rows) = read_all(b"1::Caf\xe9 (1995)::Drama\r\n2::B::C\n", &fmt);
        assert_eq!(rows[0].1, ["1", "Café (1995)", "Drama"]);
        assert_eq!(rows[1].1, ["2", "B", "C"]);
    }

    #[test]
    fn whitespace_delimiter_collapses_runs() {
        let fmt = TextFormat {
            delimiter: Delimiter::Whitespace,
            has_header: false,
        };
        let (_, rows) = read_all(b"196\t242  3\t881250949\n", &fmt);
        assert_eq!(rows[0].1, ["196", "242", "3", "881250949"]);
    }

    #[test]
    fn quotes_escape_and_unterminated_quotes_are_errors() {
        let (_, rows) = read_all(
            b"a,\"say \"\"hi\"\"\",c\n",
            &TextFormat {
                has_header: false,
                ..TextFormat::csv()
            },
        );
        assert_eq!(rows[0].1, ["a", "say \"hi\"", "c"]);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"u,i\n1,\"open\n").unwrap();
        let mut r = RecordReader::open(f.path(), &TextFormat::csv()).unwrap();
        let e = r.next_record(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("unterminated"), "{e}");
    }

    #[test]
    fn empty_file_with_header_is_an_error() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"").unwrap();
        let err = RecordReader::open(f.path(), &TextFormat::csv())
            .err()
            .unwrap();
        assert!(matches!(err, Error::EmptyFile { .. }));
    }
}
