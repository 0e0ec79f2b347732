//! Parsing of the course import CSV: `key,title,organisation,modes,start,end`.

use chrono::{DateTime, NaiveDate, Utc};

use super::course::{CourseKey, CourseModes};
use super::names;

pub const COURSE_IMPORT_HEADER: [&str; 6] =
    ["key", "title", "organisation", "modes", "start", "end"];
pub const MAX_IMPORT_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct CourseRow {
    /// 1-based line in the file, the header being line 1.
    pub line: usize,
    pub key: CourseKey,
    pub title: String,
    pub organisation: String,
    pub modes: CourseModes,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

/// A date (`2026-01-31`, midnight UTC) or an RFC 3339 timestamp; blank is none.
pub fn parse_optional_datetime(raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).map(|d| d.and_utc()));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|d| Some(d.with_timezone(&Utc)))
        .map_err(|_| format!("{text:?} is not a date like 2026-01-31 or 2026-01-31T09:00:00Z"))
}

/// Parses every row, reporting every bad one; returns rows only when all are good.
pub fn parse_course_csv(text: &str) -> Result<Vec<CourseRow>, Vec<RowError>> {
    let (rows, errors) = parse_course_rows(text);
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// The rows that parsed and the errors of those that did not, so that later checks
/// (against the database) can report on the good rows too.
pub fn parse_course_rows(text: &str) -> (Vec<CourseRow>, Vec<RowError>) {
    // Browsers send a textarea's lines ending in CRLF, which throws off the reader's line
    // numbers; reported lines must match what the person sees.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_lowercase()).collect(),
        Err(e) => {
            let error = RowError {
                line: 1,
                message: format!("the header cannot be read: {e}"),
            };
            return (Vec::new(), vec![error]);
        }
    };
    let expected: Vec<String> = COURSE_IMPORT_HEADER.iter().map(|s| s.to_string()).collect();
    if header != expected {
        let error = RowError {
            line: 1,
            message: format!(
                "the header must be exactly {} (found {})",
                COURSE_IMPORT_HEADER.join(","),
                header.join(",")
            ),
        };
        return (Vec::new(), vec![error]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen_keys = std::collections::HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line() as usize)
            .unwrap_or(index + 2);
        if index >= MAX_IMPORT_ROWS {
            errors.push(RowError {
                line,
                message: format!("at most {MAX_IMPORT_ROWS} courses per import"),
            });
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line,
                    message: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        if record.len() != COURSE_IMPORT_HEADER.len() {
            errors.push(RowError {
                line,
                message: format!(
                    "has {} columns, expected {}",
                    record.len(),
                    COURSE_IMPORT_HEADER.len()
                ),
            });
            continue;
        }
        let mut problems = Vec::new();
        let key = CourseKey::parse(&record[0])
            .map_err(|e| problems.push(format!("key {e}")))
            .ok();
        let title = names::required_text(&record[1], 300)
            .map_err(|e| problems.push(format!("title {e}")))
            .ok();
        let organisation = names::organisation_short_name(&record[2])
            .map_err(|e| problems.push(format!("organisation {e}")))
            .ok();
        let modes = CourseModes::parse(&record[3])
            .map_err(|e| problems.push(format!("modes: {e}")))
            .ok();
        let starts_at = parse_optional_datetime(&record[4])
            .map_err(|e| problems.push(format!("start: {e}")))
            .ok();
        let ends_at = parse_optional_datetime(&record[5])
            .map_err(|e| problems.push(format!("end: {e}")))
            .ok();
        if let (Some(Some(s)), Some(Some(e))) = (starts_at, ends_at) {
            if e < s {
                problems.push("end is before start".into());
            }
        }
        if let (Some(k), Some(o)) = (&key, &organisation) {
            if let Some(key_org) = k.organisation_part() {
                if key_org != o {
                    problems.push(format!(
                        "the key names organisation {key_org} but the row says {o}"
                    ));
                }
            }
            if let Some(first) = seen_keys.insert(k.as_str().to_string(), line) {
                problems.push(format!(
                    "key {} already appears on line {first}",
                    k.as_str()
                ));
            }
        }
        match (key, title, organisation, modes, starts_at, ends_at) {
            (
                Some(key),
                Some(title),
                Some(organisation),
                Some(modes),
                Some(starts_at),
                Some(ends_at),
            ) if problems.is_empty() => rows.push(CourseRow {
                line,
                key,
                title,
                organisation,
                modes,
                starts_at,
                ends_at,
            }),
            _ => errors.push(RowError {
                line,
                message: problems.join("; "),
            }),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            message: "the file has no course rows".into(),
        });
    }
    (rows, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_rows() {
        let csv = "key,title,organisation,modes,start,end\n\
                   course-v1:ACMEx+CS101+2026,Intro to CS,ACMEx,audit|verified,2026-01-01,2026-12-31\n\
                   \"course-v1:ACMEx+ART+2026\",\"Art, History\",ACMEx,audit,,\n";
        let rows = parse_course_csv(csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].modes.is_paid());
        assert_eq!(rows[1].title, "Art, History");
        assert_eq!(rows[1].line, 3);
        assert!(rows[1].starts_at.is_none());
    }

    #[test]
    fn reports_every_bad_row_by_line() {
        let csv = "key,title,organisation,modes,start,end\n\
                   course-v1:ACMEx+CS101+2026,Intro,ACMEx,audit,2026-01-01,2025-01-01\n\
                   course-v1:ACMEx+OK+2026,Fine,ACMEx,audit,,\n\
                   ,No key,ACMEx,,notadate,\n\
                   course-v1:ACMEx+OK+2026,Dupe,ACMEx,audit,,\n";
        let errors = parse_course_csv(csv).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 5]);
        assert!(errors[0].message.contains("end is before start"));
        assert!(errors[1].message.contains("key is required"));
        assert!(errors[1].message.contains("modes"));
        assert!(errors[1].message.contains("start"));
        assert!(errors[2].message.contains("already appears on line 3"));
    }

    #[test]
    fn line_numbers_are_the_same_with_crlf_line_ends() {
        let csv = "key,title,organisation,modes,start,end\r\n\
                   course-v1:ACMEx+A+2026,Fine,ACMEx,audit,,\r\n\
                   course-v1:ACMEx+B+2026,,ACMEx,audit,,\r\n";
        let errors = parse_course_csv(csv).unwrap_err();
        assert_eq!(errors[0].line, 3);
    }

    #[test]
    fn rejects_wrong_header() {
        let errors = parse_course_csv("id,name\n1,x\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
    }
}
