//! How learners move from invitation to paid seat, over a period: for a catalog, a
//! partner (its managers and staff) or the whole platform (staff).
//!
//! The funnel follows the invitations created in the period (a cohort): sent by email →
//! accepted → enrolled in a course through the catalog → given a paid seat, whenever that
//! happened. Counts of events (paid seats activated and released, refusals, the weekly
//! series) are those that happened in the period. Days and weeks (from Monday) are those
//! of the partner's time zone; the platform adds up each partner's own days, so its
//! figures are the sums of the partners' (its presets end today in UTC).

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;
use serde::Deserialize;

use crate::error::{Error, FieldErrors, Result};
use crate::models::analytics::{self, CohortRow, Scope, SeatRow, Window};
use crate::models::catalogs::Catalog;
use crate::models::partners::Partner;
use crate::policies::Actor;
use crate::policies::access::{require_partner_access, require_staff};

/// The longest period a report covers.
pub const MAX_PERIOD_DAYS: i64 = 731;

/// The period as asked for: `period` = 7, 30 or 90 (days up to today), or `custom`
/// with `from` and `until` (dates, inclusive).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PeriodInput {
    #[serde(default)]
    pub period: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
}

impl PeriodInput {
    /// As query-string pairs, for links that keep the period.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.period.trim().is_empty() {
            pairs.push(("period", self.period.trim().to_string()));
        }
        if self.period.trim() == "custom" {
            pairs.push(("from", self.from.trim().to_string()));
            pairs.push(("until", self.until.trim().to_string()));
        }
        pairs
    }
}

/// Dates in a time zone, and the instants they span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    /// Inclusive.
    pub until: NaiveDate,
    pub time_zone: Tz,
    /// The preset chosen (7, 30, 90), if any.
    pub preset: Option<i64>,
    /// Dates were typed but a preset was chosen: they were not used (and the page says so).
    pub dates_ignored: bool,
}

impl Period {
    pub fn days(&self) -> i64 {
        (self.until - self.from).num_days() + 1
    }

    /// The first instant of a day in the period's time zone.
    fn day_start(&self, day: NaiveDate) -> chrono::DateTime<Utc> {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        // A day that starts in a daylight-saving gap starts at its first existing instant.
        match self.time_zone.from_local_datetime(&midnight) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => self
                .time_zone
                .from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
                .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc)),
        }
    }

    pub fn start(&self) -> chrono::DateTime<Utc> {
        self.day_start(self.from)
    }

    pub fn end(&self) -> chrono::DateTime<Utc> {
        self.day_start(self.until + Duration::days(1))
    }

    pub fn describe(&self) -> String {
        match self.preset {
            Some(days) => format!(
                "the last {days} days ({} – {})",
                self.from.format("%-d %b %Y"),
                self.until.format("%-d %b %Y")
            ),
            None => format!(
                "{} – {}",
                self.from.format("%-d %b %Y"),
                self.until.format("%-d %b %Y")
            ),
        }
    }
}

/// The calendar a period may span: far beyond any data, and well inside what dates and
/// the database can count with.
const EARLIEST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
const LATEST_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date");

/// Reads the period; a bad date is named with its field. `today` is in `time_zone`.
pub fn period(input: &PeriodInput, time_zone: Tz, today: NaiveDate) -> Result<Period> {
    let preset = match input.period.trim() {
        "" => Some(30),
        "7" => Some(7),
        "30" => Some(30),
        "90" => Some(90),
        "custom" => None,
        _ => {
            return Err(Error::invalid(
                "period",
                "choose the last 7, 30 or 90 days, or dates",
            ));
        }
    };
    if let Some(days) = preset {
        return Ok(Period {
            from: today - Duration::days(days - 1),
            until: today,
            time_zone,
            preset: Some(days),
            dates_ignored: !input.from.trim().is_empty() || !input.until.trim().is_empty(),
        });
    }
    let mut errors = FieldErrors::new();
    let mut date = |field: &str, text: &str| {
        errors.check(
            field,
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| "is not a date; give it as YYYY-MM-DD, for example 2026-11-25")
                .and_then(|day| {
                    (EARLIEST_DAY..=LATEST_DAY)
                        .contains(&day)
                        .then_some(day)
                        .ok_or("must be a date from the year 1970 to 9999")
                }),
        )
    };
    let from = date("from", &input.from);
    let until = date("until", &input.until);
    if let (Some(from), Some(until)) = (from, until) {
        if until < from {
            errors.add("until", "is before the From date");
        } else if (until - from).num_days() + 1 > MAX_PERIOD_DAYS {
            errors.add("until", "makes the period longer than two years");
        }
    }
    errors.into_result()?;
    match (from, until) {
        (Some(from), Some(until)) => Ok(Period {
            from,
            until,
            time_zone,
            preset: None,
            dates_ignored: false,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "checked dates are missing"
        ))),
    }
}

/// Today's date in a time zone.
pub fn today_in(time_zone: Tz) -> NaiveDate {
    Utc::now().with_timezone(&time_zone).date_naive()
}

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub label: &'static str,
    pub count: i64,
}

/// Outcomes of the invitations of one channel created in the period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelRow {
    pub channel: String,
    pub created: i64,
    pub accepted: i64,
    pub declined: i64,
    pub enrolled: i64,
    pub licensed: i64,
}

/// A median and 90th percentile, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub p90: f64,
}

/// What the analytics page shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub period: Period,
    /// Whose calendar the days are: one time zone, or each partner's own.
    pub calendar: String,
    /// Sent → accepted → enrolled → paid seat, for invitations sent by email.
    pub funnel: Vec<Step>,
    pub declined: i64,
    pub answer_delay: Option<Spread>,
    pub enrolment_delay: Option<Spread>,
    /// Accepted invitations of every channel, and how many of them enrolled.
    pub accepted_all: i64,
    pub enrolled_all: i64,
    pub seats_activated: i64,
    pub seats_released: i64,
    pub seats: Vec<SeatRow>,
    /// Refusals by reason, in words, largest first.
    pub blocked: Vec<(String, i64)>,
    pub channels: Vec<ChannelRow>,
    /// Every week of the period, empty ones included.
    pub weeks: Vec<analytics::WeekRow>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.blocked.is_empty()
            && self.seats_activated == 0
            && self.seats_released == 0
            && self
                .weeks
                .iter()
                .all(|w| w.sent + w.accepted + w.enrolments == 0)
    }

    pub fn sent(&self) -> i64 {
        self.funnel.first().map_or(0, |s| s.count)
    }

    /// A share as a whole percentage, or none when there is nothing to divide.
    pub fn percent(part: i64, whole: i64) -> Option<i64> {
        (whole > 0).then(|| ((part as f64) * 100.0 / (whole as f64)).round() as i64)
    }

    pub fn acceptance_rate(&self) -> Option<i64> {
        Self::percent(self.funnel.get(1).map_or(0, |s| s.count), self.sent())
    }

    pub fn decline_rate(&self) -> Option<i64> {
        Self::percent(self.declined, self.sent())
    }

    pub fn enrolled_share(&self) -> Option<i64> {
        Self::percent(self.enrolled_all, self.accepted_all)
    }
}

/// Whose numbers a report shows.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Platform,
    Partner(&'a Partner),
    Catalog(&'a Partner, &'a Catalog),
}

impl Subject<'_> {
    fn scope(&self) -> Scope {
        match self {
            Subject::Platform => Scope {
                partner_id: None,
                catalog_id: None,
            },
            Subject::Partner(partner) => Scope {
                partner_id: Some(partner.id),
                catalog_id: None,
            },
            Subject::Catalog(partner, catalog) => Scope {
                partner_id: Some(partner.id),
                catalog_id: Some(catalog.id),
            },
        }
    }

    /// The time zone its weeks and dates are in.
    pub fn time_zone(&self) -> Tz {
        match self {
            Subject::Platform => chrono_tz::UTC,
            Subject::Partner(partner) | Subject::Catalog(partner, _) => partner.tz(),
        }
    }

    fn authorise(&self, actor: &Actor) -> Result<()> {
        match self {
            Subject::Platform => require_staff(actor),
            Subject::Partner(partner) => require_partner_access(actor, partner.id, "partner"),
            Subject::Catalog(partner, catalog) => {
                require_partner_access(actor, partner.id, "partner")?;
                if catalog.partner_id == partner.id {
                    Ok(())
                } else {
                    Err(Error::NotFound("catalog"))
                }
            }
        }
    }
}

/// A refusal's reason in words.
pub fn reason_words(reason: &str) -> &str {
    match reason {
        "course_limit_reached" => "no paid seat left",
        "user_limit_reached" => "learner limit reached",
        "not_a_learner" => "not a learner of the catalog",
        "course_not_in_catalog" => "course not in the catalog",
        "catalog_inactive" => "catalog not open",
        other => other,
    }
}

/// A channel in words.
pub fn channel_words(channel: &str) -> &str {
    match channel {
        "manual" => "invited one by one",
        "bulk" => "bulk lists",
        "self_enrollment" => "self-enrolment",
        "pre_enrollment" => "pre-enrolment",
        "api" => "API",
        other => other,
    }
}

pub fn report(
    conn: &mut PgConnection,
    actor: &Actor,
    subject: Subject<'_>,
    period: &Period,
) -> Result<Report> {
    subject.authorise(actor)?;
    let scope = subject.scope();
    let window = Window {
        from: period.from,
        until: period.until,
    };
    let cohort = analytics::cohort(conn, scope, window)?;
    let delays = analytics::delays(conn, scope, window)?;
    let events = analytics::event_counts(conn, scope, window)?;
    let refused_joins = analytics::refused_joins(conn, scope, window)?;
    let weeks = analytics::weeks(conn, scope, window)?;
    let seats = analytics::seats(conn, scope)?;

    let emailed: Vec<&CohortRow> = cohort.iter().filter(|r| r.emailed).collect();
    let sum = |rows: &[&CohortRow], field: fn(&CohortRow) -> i64| {
        rows.iter().map(|r| field(r)).sum::<i64>()
    };
    let funnel = vec![
        Step {
            label: "sent",
            count: sum(&emailed, |r| r.created),
        },
        Step {
            label: "accepted",
            count: sum(&emailed, |r| r.accepted),
        },
        Step {
            label: "enrolled in a course",
            count: sum(&emailed, |r| r.enrolled),
        },
        Step {
            label: "given a paid seat",
            count: sum(&emailed, |r| r.licensed),
        },
    ];
    let declined = sum(&emailed, |r| r.declined);
    let all: Vec<&CohortRow> = cohort.iter().collect();
    let mut channels: Vec<ChannelRow> = Vec::new();
    for row in &cohort {
        let entry = match channels.iter_mut().find(|c| c.channel == row.channel) {
            Some(entry) => entry,
            None => {
                channels.push(ChannelRow {
                    channel: row.channel.clone(),
                    ..Default::default()
                });
                channels.last_mut().expect("just pushed")
            }
        };
        entry.created += row.created;
        entry.accepted += row.accepted;
        entry.declined += row.declined;
        entry.enrolled += row.enrolled;
        entry.licensed += row.licensed;
    }
    channels.sort_by(|a, b| b.created.cmp(&a.created).then(a.channel.cmp(&b.channel)));

    let mut blocked: Vec<(String, i64)> = Vec::new();
    let (mut seats_activated, mut seats_released) = (0, 0);
    for event in &events {
        match event.name.as_str() {
            crate::events::ENROLLMENT_ACTIVATED if event.paid_seat => seats_activated += event.n,
            crate::events::ENROLLMENT_DEACTIVATED if event.paid_seat => seats_released += event.n,
            crate::events::ENROLLMENT_BLOCKED => {
                blocked.push((reason_words(&event.reason).to_string(), event.n))
            }
            _ => {}
        }
    }
    if refused_joins > 0 {
        blocked.push((
            reason_words("user_limit_reached").to_string(),
            refused_joins,
        ));
    }
    blocked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let spread = |median: Option<f64>, p90: Option<f64>| match (median, p90) {
        (Some(median), Some(p90)) => Some(Spread { median, p90 }),
        _ => None,
    };
    let calendar = match subject {
        Subject::Platform => "each partner's own time zone".to_string(),
        _ => format!("{} time", period.time_zone.name()),
    };
    Ok(Report {
        period: period.clone(),
        calendar,
        funnel,
        declined,
        answer_delay: spread(delays.answer_median, delays.answer_p90),
        enrolment_delay: spread(delays.enrolment_median, delays.enrolment_p90),
        accepted_all: sum(&all, |r| r.accepted),
        enrolled_all: sum(&all, |r| r.enrolled),
        seats_activated,
        seats_released,
        seats,
        blocked,
        channels,
        weeks: every_week(period, weeks),
    })
}

/// Every week the period touches, with zeros where nothing happened.
fn every_week(period: &Period, found: Vec<analytics::WeekRow>) -> Vec<analytics::WeekRow> {
    let mut weeks = Vec::new();
    let mut week = Window::monday_of(period.from);
    while week <= period.until {
        weeks.push(
            found
                .iter()
                .find(|w| w.week == week)
                .cloned()
                .unwrap_or(analytics::WeekRow {
                    week,
                    active_learners: 0,
                    sent: 0,
                    accepted: 0,
                    enrolments: 0,
                }),
        );
        week += Duration::days(7);
    }
    weeks
}

/// A delay as people read it: "45 min", "3 h 20 min", "2.5 days".
pub fn duration_words(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as i64;
    if minutes < 1 {
        "under a minute".into()
    } else if minutes < 60 {
        format!("{minutes} min")
    } else if minutes < 48 * 60 {
        let (h, m) = (minutes / 60, minutes % 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        let days = seconds / 86_400.0;
        format!("{:.1} days", days)
    }
}

/// The charts whose numbers can be downloaded.
pub const CHARTS: [&str; 4] = ["funnel", "weekly", "refusals", "channels"];

/// A chart's numbers as CSV rows (with its header), exactly as the page's tables show them.
pub fn chart_rows(report: &Report, chart: &str) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
    Some(match chart {
        "funnel" => {
            let share = |n: i64| {
                Report::percent(n, report.sent()).map_or_else(String::new, |p| format!("{p}%"))
            };
            let mut rows: Vec<Vec<String>> = report
                .funnel
                .iter()
                .map(|s| vec![s.label.to_string(), s.count.to_string(), share(s.count)])
                .collect();
            rows.push(vec![
                "declined".into(),
                report.declined.to_string(),
                share(report.declined),
            ]);
            (vec!["step", "invitations", "of_those_sent"], rows)
        }
        "weekly" => (
            vec![
                "week_starting",
                "active_learners",
                "invitations_sent",
                "accepted",
                "enrolments",
            ],
            report
                .weeks
                .iter()
                .map(|w| {
                    vec![
                        w.week.to_string(),
                        w.active_learners.to_string(),
                        w.sent.to_string(),
                        w.accepted.to_string(),
                        w.enrolments.to_string(),
                    ]
                })
                .collect(),
        ),
        "refusals" => (
            vec!["reason", "refusals"],
            report
                .blocked
                .iter()
                .map(|(reason, n)| vec![reason.clone(), n.to_string()])
                .collect(),
        ),
        "channels" => (
            vec![
                "channel",
                "invitations",
                "accepted",
                "declined",
                "enrolled",
                "paid_seat",
            ],
            report
                .channels
                .iter()
                .map(|c| {
                    vec![
                        channel_words(&c.channel).to_string(),
                        c.created.to_string(),
                        c.accepted.to_string(),
                        c.declined.to_string(),
                        c.enrolled.to_string(),
                        c.licensed.to_string(),
                    ]
                })
                .collect(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn presets_end_today_and_custom_dates_are_checked() {
        let tz: Tz = "Europe/Zurich".parse().unwrap();
        let last7 = period(
            &PeriodInput {
                period: "7".into(),
                ..Default::default()
            },
            tz,
            day("2026-11-25"),
        )
        .unwrap();
        assert_eq!(
            (last7.from, last7.until, last7.days()),
            (day("2026-11-19"), day("2026-11-25"), 7)
        );
        // Midnight in Zurich (UTC+1 in November) is 23:00 UTC the day before.
        assert_eq!(last7.start().to_rfc3339(), "2026-11-18T23:00:00+00:00");
        assert_eq!(last7.end().to_rfc3339(), "2026-11-25T23:00:00+00:00");
        let custom = PeriodInput {
            period: "custom".into(),
            from: "2026-12-01".into(),
            until: "2026-11-01".into(),
        };
        match period(&custom, tz, day("2026-11-25")) {
            Err(Error::Invalid(errors)) => {
                assert_eq!(errors.get("until"), Some("is before the From date"))
            }
            other => panic!("unexpected {other:?}"),
        }
        let bad = PeriodInput {
            period: "custom".into(),
            from: "1.12.2026".into(),
            until: String::new(),
        };
        match period(&bad, tz, day("2026-11-25")) {
            Err(Error::Invalid(errors)) => {
                assert!(errors.get("from").is_some());
                assert!(errors.get("until").is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            period(
                &PeriodInput {
                    period: "365000".into(),
                    ..Default::default()
                },
                tz,
                day("2026-11-25")
            )
            .is_err()
        );
    }

    #[test]
    fn dates_outside_the_calendar_are_refused_and_dates_beside_a_preset_are_flagged() {
        let tz = chrono_tz::Europe::London;
        for (from, until) in [
            ("+262142-12-01", "+262142-12-31"),
            ("-5000-01-01", "-5000-01-31"),
            ("1969-12-01", "1969-12-31"),
            ("10000-01-01", "10000-01-31"),
        ] {
            let input = PeriodInput {
                period: "custom".into(),
                from: from.into(),
                until: until.into(),
            };
            match period(&input, tz, day("2026-11-25")) {
                Err(Error::Invalid(errors)) => assert!(errors.get("from").is_some(), "{from}"),
                other => panic!("{from}: unexpected {other:?}"),
            }
        }
        let edge = PeriodInput {
            period: "custom".into(),
            from: "9999-12-01".into(),
            until: "9999-12-31".into(),
        };
        let p = period(&edge, tz, day("2026-11-25")).expect("the last days of the calendar");
        assert!(p.end() > p.start());
        let typed = PeriodInput {
            period: "30".into(),
            from: "2026-10-01".into(),
            until: "2026-10-31".into(),
        };
        let p = period(&typed, tz, day("2026-11-25")).expect("a preset");
        assert_eq!((p.preset, p.dates_ignored), (Some(30), true));
    }

    #[test]
    fn every_week_of_the_period_is_listed() {
        let p = Period {
            from: day("2026-11-04"),
            until: day("2026-11-25"),
            time_zone: chrono_tz::UTC,
            preset: None,
            dates_ignored: false,
        };
        let weeks: Vec<NaiveDate> = every_week(&p, Vec::new())
            .into_iter()
            .map(|w| w.week)
            .collect();
        assert_eq!(
            weeks,
            vec![
                day("2026-11-02"),
                day("2026-11-09"),
                day("2026-11-16"),
                day("2026-11-23")
            ]
        );
    }

    #[test]
    fn delays_read_as_words() {
        assert_eq!(duration_words(20.0), "under a minute");
        assert_eq!(duration_words(45.0 * 60.0), "45 min");
        assert_eq!(duration_words(3.0 * 3600.0 + 20.0 * 60.0), "3 h 20 min");
        assert_eq!(duration_words(2.5 * 86_400.0), "2.5 days");
    }
}
