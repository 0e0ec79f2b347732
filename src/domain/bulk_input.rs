//! What a bulk invitation is made of: a CSV file (a header row with an `email` column,
//! optionally `external_user_key` and `full_name`; UTF-8 with or without a byte-order
//! mark; comma or semicolon separated; quoted fields) or pasted addresses (one a line,
//! or separated by commas or semicolons). Rows are read one at a time from the bytes as
//! received: nothing copies the whole file.

pub const MAX_BULK_ROWS: usize = 100_000;
pub const MAX_BULK_BYTES: usize = 10 * 1024 * 1024;

/// One row as typed, trimmed. `line` is the 1-based line of the file or the paste.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRow {
    pub line: usize,
    pub email: String,
    pub external_user_key: String,
    pub full_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("There is nothing to invite: the file or list has no rows.")]
    Empty,
    #[error(
        "The file is larger than 10 MiB. Split it into smaller files (at most 100,000 rows each)."
    )]
    TooLarge,
    #[error("Line {0} is past the limit of 100,000 rows. Split the list into smaller ones.")]
    TooManyRows(usize),
    #[error(
        "Line 1: the header has no \"email\" column (it has: {0}). The first row must name the columns, for example: email,full_name"
    )]
    NoEmailColumn(String),
    #[error("Line {0} is not UTF-8 text. Save the file as \"CSV UTF-8\" and upload it again.")]
    NotUtf8(usize),
    #[error(
        "Line {0} holds binary data: this is not a CSV file. Export the list as CSV and upload that."
    )]
    Binary(usize),
    #[error("Line {line}: {message}")]
    Malformed { line: usize, message: String },
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// The column separator the header line uses: a semicolon when it has more of those
/// than commas (as spreadsheets in many locales write), else a comma.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let first_line = bytes
        .split(|b| *b == b'\n' || *b == b'\r')
        .next()
        .unwrap_or_default();
    let count = |c: u8| first_line.iter().filter(|b| **b == c).count();
    if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

/// Line breaks in `bytes`: `\n`, `\r\n`, or a lone `\r` (as older Mac spreadsheets
/// write), each counted once.
fn line_breaks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' || (**b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

/// The 1-based line of the first NUL byte, if any: text files have none.
fn binary_line(bytes: &[u8]) -> Option<usize> {
    let at = bytes.iter().position(|b| *b == 0)?;
    Some(line_breaks(&bytes[..at]) + 1)
}

/// Reads the rows of a CSV file.
pub struct CsvRows<'a> {
    reader: csv::Reader<&'a [u8]>,
    bytes: &'a [u8],
    /// Line numbers are counted from byte offsets, which any line ending keeps right.
    counted_to: usize,
    lines_before: usize,
    record: csv::ByteRecord,
    last_line: usize,
    email: usize,
    external_user_key: Option<usize>,
    full_name: Option<usize>,
    rows: usize,
}

impl<'a> CsvRows<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, InputError> {
        if bytes.len() > MAX_BULK_BYTES {
            return Err(InputError::TooLarge);
        }
        let bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
        if let Some(line) = binary_line(bytes) {
            return Err(InputError::Binary(line));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(sniff_delimiter(bytes))
            .from_reader(bytes);
        let header = reader.byte_headers().map_err(|e| InputError::Malformed {
            line: 1,
            message: format!("the header cannot be read ({e})"),
        })?;
        if header.is_empty() {
            return Err(InputError::Empty);
        }
        let mut names = Vec::with_capacity(header.len());
        for field in header {
            let name = std::str::from_utf8(field).map_err(|_| InputError::NotUtf8(1))?;
            names.push(name.trim().to_lowercase());
        }
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        let email = find("email").ok_or_else(|| {
            let found: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            InputError::NoEmailColumn(found.join(", "))
        })?;
        Ok(Self {
            reader,
            bytes,
            counted_to: 0,
            lines_before: 0,
            record: csv::ByteRecord::new(),
            last_line: 1,
            email,
            external_user_key: find("external_user_key"),
            full_name: find("full_name"),
            rows: 0,
        })
    }

    /// The 1-based line at which the record starting at `offset` sits. The reader may
    /// report a record as starting on the line break that ends the one before it (the
    /// `\n` of a `\r\n`), so line breaks at the start are skipped.
    fn line_at(&mut self, offset: usize) -> usize {
        let mut offset = offset.min(self.bytes.len());
        while matches!(self.bytes.get(offset), Some(b'\n' | b'\r')) {
            offset += 1;
        }
        if offset >= self.counted_to {
            self.lines_before += line_breaks(&self.bytes[self.counted_to..offset]);
            self.counted_to = offset;
        }
        // Rows keep distinct, rising numbers whatever the file's line endings.
        let line = (self.lines_before + 1).max(self.last_line + 1);
        self.last_line = line;
        line
    }

    /// A quote opened and never closed swallows the rest of the file into one field:
    /// such a record runs to the end of the file over several lines with an odd number
    /// of quotes.
    fn runs_on_from_an_open_quote(&self, start: usize) -> bool {
        let end = self.reader.position().byte() as usize;
        let span = &self.bytes[start.min(self.bytes.len())..end.min(self.bytes.len())];
        let body = span
            .strip_suffix(b"\r\n")
            .or_else(|| span.strip_suffix(b"\n"))
            .or_else(|| span.strip_suffix(b"\r"))
            .unwrap_or(span);
        end >= self.bytes.len()
            && line_breaks(body) > 0
            && span.iter().filter(|b| **b == b'"').count() % 2 == 1
    }

    fn field(&self, index: Option<usize>, line: usize) -> Result<String, InputError> {
        match index.and_then(|i| self.record.get(i)) {
            // A line break inside a quoted cell reads as a space.
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
                .map_err(|_| InputError::NotUtf8(line)),
            None => Ok(String::new()),
        }
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<InputRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let offset = e.position().map_or(self.counted_to, |p| p.byte() as usize);
                    let line = self.line_at(offset);
                    return Some(Err(InputError::Malformed {
                        line,
                        message: format!("the row cannot be read ({e})"),
                    }));
                }
            }
            let offset = self
                .record
                .position()
                .map_or(self.counted_to, |p| p.byte() as usize);
            let line = self.line_at(offset);
            if self.runs_on_from_an_open_quote(offset) {
                return Some(Err(InputError::Malformed {
                    line,
                    message: "a quote (\") opens a field that is never closed, so the rest of the file would be read as one field. Close the quote or remove it.".into(),
                }));
            }
            // Blank lines (or rows of empty cells) are skipped.
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            self.rows += 1;
            if self.rows > MAX_BULK_ROWS {
                return Some(Err(InputError::TooManyRows(line)));
            }
            let row = (|| {
                Ok(InputRow {
                    line,
                    email: self.field(Some(self.email), line)?,
                    external_user_key: self.field(self.external_user_key, line)?,
                    full_name: self.field(self.full_name, line)?,
                })
            })();
            return Some(row);
        }
    }
}

/// Pasted addresses: one a line, or several on a line separated by commas or semicolons.
/// Whatever sits between separators is one entry, address or not. Entries are numbered
/// in order (their "line" in the results), since one line may hold several.
pub fn pasted_rows(text: &str) -> impl Iterator<Item = Result<InputRow, InputError>> + '_ {
    text.lines()
        .flat_map(|line| line.split([',', ';']).map(str::trim))
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let number = index + 1;
            if number > MAX_BULK_ROWS {
                return Err(InputError::TooManyRows(number));
            }
            Ok(InputRow {
                line: number,
                email: entry.to_string(),
                external_user_key: String::new(),
                full_name: String::new(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(bytes: &[u8]) -> Result<Vec<InputRow>, InputError> {
        CsvRows::new(bytes)?.collect()
    }

    #[test]
    fn reads_a_csv_with_optional_columns_in_any_order() {
        let read = rows(b"Full_Name,EMAIL,external_user_key\n\"Lovelace, Ada\",Ada@Example.org,uni:123\n,bob@example.org,\n").unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].line, 2);
        assert_eq!(read[0].email, "Ada@Example.org");
        assert_eq!(read[0].full_name, "Lovelace, Ada");
        assert_eq!(read[0].external_user_key, "uni:123");
        assert_eq!(read[1].line, 3);
        assert_eq!(read[1].full_name, "");
    }

    #[test]
    fn a_byte_order_mark_semicolons_crlf_and_blank_lines_are_fine() {
        let read =
            rows(b"\xEF\xBB\xBFemail;full_name\r\na@example.org;A\r\n\r\n;\r\nb@example.org;B\r\n")
                .unwrap();
        let lines: Vec<(usize, &str)> = read.iter().map(|r| (r.line, r.email.as_str())).collect();
        assert_eq!(lines, vec![(2, "a@example.org"), (5, "b@example.org")]);
    }

    #[test]
    fn old_mac_line_endings_number_each_row() {
        let read = rows(b"email,full_name\rcr1@example.org,One\rcr2@example.org,Two\r").unwrap();
        let lines: Vec<(usize, &str)> = read.iter().map(|r| (r.line, r.email.as_str())).collect();
        assert_eq!(lines, vec![(2, "cr1@example.org"), (3, "cr2@example.org")]);
    }

    #[test]
    fn a_quote_never_closed_is_refused_at_its_line() {
        let error = rows(b"email,full_name\na1@example.org,A\n\"a2@example.org,A\nb2@example.org,B\nc@example.org,C\n")
            .unwrap_err();
        match error {
            InputError::Malformed { line, message } => {
                assert_eq!(line, 3);
                assert!(message.contains("never closed"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A quote inside an unquoted cell, and quoted cells with line breaks, are fine.
        let read =
            rows(b"email,full_name\na@example.org,5\" screen\nb@example.org,\"Ada\nLovelace\"\n")
                .unwrap();
        assert_eq!(read[0].full_name, "5\" screen");
        assert_eq!(read[1].full_name, "Ada Lovelace");
    }

    #[test]
    fn only_the_email_column_is_required() {
        let read = rows(b"email\nx@example.org\n").unwrap();
        assert_eq!(read[0].external_user_key, "");
        match rows(b"name,mail\nAda,ada@example.org\n") {
            Err(InputError::NoEmailColumn(found)) => assert_eq!(found, "\"name\", \"mail\""),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(rows(b""), Err(InputError::Empty));
    }

    #[test]
    fn bad_files_are_named_with_their_line() {
        assert_eq!(
            rows(b"email\na@example.org\n\x00\x01\x02"),
            Err(InputError::Binary(3))
        );
        assert_eq!(
            rows(b"email\na@example.org\nb\xE9@example.org\n"),
            Err(InputError::NotUtf8(3))
        );
        assert_eq!(
            rows(&vec![b'a'; MAX_BULK_BYTES + 1]),
            Err(InputError::TooLarge)
        );
        assert!(InputError::NotUtf8(3).to_string().starts_with("Line 3"));
    }

    #[test]
    fn more_than_the_row_limit_is_refused() {
        let mut file = b"email\n".to_vec();
        for i in 0..=MAX_BULK_ROWS {
            file.extend_from_slice(format!("u{i}@example.org\n").as_bytes());
        }
        let error = CsvRows::new(&file).unwrap().find_map(Result::err).unwrap();
        assert_eq!(error, InputError::TooManyRows(MAX_BULK_ROWS + 2));
    }

    #[test]
    fn pasted_addresses_split_on_lines_commas_and_semicolons_only() {
        let read: Vec<InputRow> = pasted_rows(
            "a@example.org, b@example.org\n\nJohn Smith <c@example.org>;d@example.org\n",
        )
        .collect::<Result<_, _>>()
        .unwrap();
        let entries: Vec<(usize, &str)> = read.iter().map(|r| (r.line, r.email.as_str())).collect();
        assert_eq!(
            entries,
            vec![
                (1, "a@example.org"),
                (2, "b@example.org"),
                (3, "John Smith <c@example.org>"),
                (4, "d@example.org"),
            ]
        );
    }
}
