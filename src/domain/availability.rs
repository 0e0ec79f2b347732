//! Rule 1: a catalog is active when start <= now <= end, both inclusive.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvailabilityWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogPhase {
    Upcoming,
    Active,
    Ended,
    /// Put away by its partner: closed to everyone, whatever its dates.
    Archived,
}

impl CatalogPhase {
    pub fn label(self) -> &'static str {
        match self {
            CatalogPhase::Upcoming => "upcoming",
            CatalogPhase::Active => "active",
            CatalogPhase::Ended => "ended",
            CatalogPhase::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the end must not be before the start")]
pub struct EndBeforeStart;

impl AvailabilityWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, EndBeforeStart> {
        if end < start {
            return Err(EndBeforeStart);
        }
        Ok(Self { start, end })
    }

    /// For windows already checked when stored (the database refuses end < start).
    pub fn clamped(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now <= self.end
    }

    pub fn phase_at(&self, now: DateTime<Utc>) -> CatalogPhase {
        if now < self.start {
            CatalogPhase::Upcoming
        } else if now > self.end {
            CatalogPhase::Ended
        } else {
            CatalogPhase::Active
        }
    }

    pub fn has_ended_at(&self, now: DateTime<Utc>) -> bool {
        now > self.end
    }
}

/// A date and time typed by a person in their time zone: `2026-03-01T09:30`
/// (as sent by a datetime-local field), `2026-03-01 09:30`, or a date alone, which
/// means the start of that day, or its last second when `end_of_day`.
pub fn parse_local_datetime(
    raw: &str,
    tz: chrono_tz::Tz,
    end_of_day: bool,
) -> Result<DateTime<Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
    let text = raw.trim();
    if text.is_empty() {
        return Err("is required".into());
    }
    let naive = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| {
            let time = if end_of_day {
                NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default()
            } else {
                NaiveTime::MIN
            };
            d.and_time(time)
        })
    });
    let Some(naive) = naive else {
        if let Ok(exact) = DateTime::parse_from_rfc3339(text) {
            return Ok(exact.with_timezone(&Utc));
        }
        return Err(format!(
            "{text:?} is not a date and time like 2026-03-01 09:30"
        ));
    };
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        // Clocks went back: the earlier of the two instants.
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        chrono::LocalResult::None => Err(format!(
            "{text} does not exist in {} (the clocks change then)",
            tz.name()
        )),
    }
}

/// Shows a stored instant in a time zone, in the form a datetime-local field takes.
pub fn to_local_input(value: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    value
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn window() -> AvailabilityWindow {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 6, 30, 23, 59, 59).unwrap();
        AvailabilityWindow::new(start, end).unwrap()
    }

    #[test]
    fn rule_1_active_at_exactly_start_and_exactly_end() {
        let w = window();
        assert!(w.is_active_at(w.start()));
        assert!(w.is_active_at(w.end()));
    }

    #[test]
    fn rule_1_inactive_just_outside() {
        let w = window();
        let tick = Duration::microseconds(1);
        assert!(!w.is_active_at(w.start() - tick));
        assert!(!w.is_active_at(w.end() + tick));
        assert_eq!(w.phase_at(w.start() - tick), CatalogPhase::Upcoming);
        assert_eq!(w.phase_at(w.end() + tick), CatalogPhase::Ended);
    }

    #[test]
    fn local_times_convert_through_the_time_zone() {
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let t = parse_local_datetime("2026-07-01T09:30", paris, false).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 7, 1, 7, 30, 0).unwrap());
        assert_eq!(to_local_input(t, paris), "2026-07-01T09:30");
        let end = parse_local_datetime("2026-07-01", chrono_tz::UTC, true).unwrap();
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 7, 1, 23, 59, 59).unwrap());
        assert!(parse_local_datetime("2026-03-29T02:30", paris, false).is_err());
        assert!(parse_local_datetime("tomorrow", paris, false).is_err());
        assert!(parse_local_datetime("", paris, false).is_err());
    }

    #[test]
    fn rule_1_end_before_start_rejected_single_instant_allowed() {
        let w = window();
        assert_eq!(
            AvailabilityWindow::new(w.end(), w.start()),
            Err(EndBeforeStart)
        );
        assert!(AvailabilityWindow::new(w.start(), w.start()).is_ok());
    }
}
