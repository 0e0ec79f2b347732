//! xAPI 1.0.3 statements for tracking events. The statement id is the event's id, so
//! sending a statement again is idempotent at the learning record store.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use crate::models::xapi::StatementRow;

pub const VERSION: &str = "1.0.3";

/// (verb id, display) for each event name: the invitation verbs of Activity Streams,
/// registered / unregistered for paid and open course enrolments, denied for a refusal.
pub fn verb(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        super::INVITATION_SENT => ("http://activitystrea.ms/schema/1.0/invite", "invited"),
        super::INVITATION_ACCEPTED => ("http://activitystrea.ms/schema/1.0/accept", "accepted"),
        super::INVITATION_DECLINED => ("http://activitystrea.ms/schema/1.0/reject", "declined"),
        super::INVITATION_REMOVED => ("http://activitystrea.ms/schema/1.0/remove", "removed"),
        super::ENROLLMENT_ACTIVATED => ("http://adlnet.gov/expapi/verbs/registered", "registered"),
        super::ENROLLMENT_DEACTIVATED => {
            ("http://id.tincanapi.com/verb/unregistered", "unregistered")
        }
        super::ENROLLMENT_BLOCKED => ("https://w3id.org/xapi/dod-isd/verbs/denied", "denied"),
        _ => return None,
    })
}

/// How statements are written: the platform's address (the actors' home page and the
/// root of every IRI) and whether actors are identified by email.
#[derive(Debug, Clone)]
pub struct StatementOptions {
    pub base_url: String,
    pub include_email: bool,
}

/// A path segment: keys such as `course-v1:ACMEx+CS101+2026` stay readable but safe.
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub fn statement(row: &StatementRow, options: &StatementOptions) -> Option<Value> {
    let (verb_id, verb_display) = verb(&row.name)?;
    let base = options.base_url.trim_end_matches('/');
    let ext = |key: &str| format!("{base}/xapi/extensions/{key}");

    let actor = match (&row.email, options.include_email) {
        (Some(email), true) => json!({ "objectType": "Agent", "mbox": format!("mailto:{email}") }),
        _ => {
            // The platform's own identifiers, never the address.
            let name = match (row.user_id, row.invitation_id) {
                (Some(user), _) => format!("user:{user}"),
                (None, Some(invitation)) => format!("invitation:{invitation}"),
                (None, None) => "unknown".to_string(),
            };
            json!({ "objectType": "Agent", "account": { "homePage": base, "name": name } })
        }
    };

    let object = match (&row.course_key, &row.catalog_slug) {
        (Some(key), _) => json!({
            "objectType": "Activity",
            "id": format!("{base}/courses/{}", segment(key)),
            "definition": {
                "type": "http://adlnet.gov/expapi/activities/course",
                "name": { "en-US": row.course_title.clone().unwrap_or_else(|| key.clone()) },
            },
        }),
        (None, Some(slug)) => json!({
            "objectType": "Activity",
            "id": format!("{base}/catalogs/{}", segment(slug)),
            "definition": {
                "type": "http://id.tincanapi.com/activitytype/collection-simple",
                "name": { "en-US": row.catalog_name.clone().unwrap_or_else(|| slug.clone()) },
            },
        }),
        (None, None) => json!({ "objectType": "Activity", "id": base }),
    };

    let mut extensions = Map::new();
    if let Some(code) = &row.partner_code {
        extensions.insert(ext("partner"), json!(code));
    }
    if let Some(slug) = &row.catalog_slug {
        extensions.insert(ext("catalog"), json!(slug));
    }
    if let Some(key) = &row.course_key {
        extensions.insert(ext("course"), json!(key));
    }
    if let Some(channel) = &row.channel {
        extensions.insert(ext("channel"), json!(channel));
    }
    if let Some(reason) = &row.reason {
        extensions.insert(ext("reason"), json!(reason));
    }
    if row.name == super::ENROLLMENT_ACTIVATED || row.name == super::ENROLLMENT_DEACTIVATED {
        let paid = row.data.get("licence_id").is_some_and(|id| !id.is_null());
        extensions.insert(ext("paid_seat"), json!(paid));
    }
    let mut context = json!({
        "platform": "Partner Catalog",
        "extensions": Value::Object(extensions),
    });
    // The catalog a course was reached through.
    if let (Some(_), Some(slug)) = (&row.course_key, &row.catalog_slug) {
        context["contextActivities"] = json!({
            "parent": [{ "objectType": "Activity", "id": format!("{base}/catalogs/{}", segment(slug)) }]
        });
    }

    let mut statement = json!({
        "id": row.id.to_string(),
        "timestamp": row.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "actor": actor,
        "verb": { "id": verb_id, "display": { "en-US": verb_display } },
        "object": object,
        "context": context,
    });
    if row.name == super::ENROLLMENT_BLOCKED {
        let mut result = json!({ "success": false });
        if let Some(reason) = &row.reason {
            result["extensions"] = json!({ ext("reason"): reason });
        }
        statement["result"] = result;
    }
    Some(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(name: &str) -> StatementRow {
        StatementRow {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            occurred_at: chrono_tz::Europe::Zurich
                .with_ymd_and_hms(2026, 11, 20, 23, 30, 0)
                .single()
                .expect("a time")
                .with_timezone(&chrono::Utc),
            partner_id: Some(1),
            partner_code: Some("acme".into()),
            catalog_id: Some(2),
            catalog_slug: Some("acme-sales".into()),
            catalog_name: Some("Sales".into()),
            course_id: Some(3),
            course_key: Some("course-v1:ACMEx+CS101+2026".into()),
            course_title: Some("Computing".into()),
            user_id: Some(4),
            email: Some("lee@example.com".into()),
            invitation_id: None,
            channel: Some("manual".into()),
            reason: Some("course_limit_reached".into()),
            data: json!({ "licence_id": 9 }),
        }
    }

    fn options(include_email: bool) -> StatementOptions {
        StatementOptions {
            base_url: "https://catalog.example.org".into(),
            include_email,
        }
    }

    #[test]
    fn rule_12_enrolments_are_registered_and_unregistered() {
        let activated = statement(&row(crate::events::ENROLLMENT_ACTIVATED), &options(false))
            .expect("a statement");
        assert_eq!(activated["verb"]["display"]["en-US"], "registered");
        assert_eq!(
            activated["context"]["extensions"]["https://catalog.example.org/xapi/extensions/paid_seat"],
            true
        );
        let deactivated = statement(&row(crate::events::ENROLLMENT_DEACTIVATED), &options(false))
            .expect("a statement");
        assert_eq!(deactivated["verb"]["display"]["en-US"], "unregistered");
    }

    #[test]
    fn rule_12_statement_id_is_the_event_id_and_a_refusal_carries_its_reason() {
        let r = row(crate::events::ENROLLMENT_BLOCKED);
        let s = statement(&r, &options(false)).expect("a statement");
        assert_eq!(s["id"], r.id.to_string());
        assert_eq!(s["verb"]["display"]["en-US"], "denied");
        assert_eq!(s["result"]["success"], false);
        assert_eq!(
            s["result"]["extensions"]["https://catalog.example.org/xapi/extensions/reason"],
            "course_limit_reached"
        );
        assert!(statement(&row("something.else"), &options(false)).is_none());
    }

    #[test]
    fn statements_name_nobody_by_address_unless_the_setting_allows_it() {
        let r = row(crate::events::INVITATION_ACCEPTED);
        let s = statement(&r, &options(false)).expect("a statement");
        assert!(!s.to_string().contains("lee@example.com"));
        assert_eq!(
            s["actor"]["account"]["homePage"],
            "https://catalog.example.org"
        );
        assert_eq!(s["actor"]["account"]["name"], "user:4");
        let with_email = statement(&r, &options(true)).expect("a statement");
        assert_eq!(with_email["actor"]["mbox"], "mailto:lee@example.com");
        assert!(with_email["actor"].get("account").is_none());
    }

    #[test]
    fn times_are_utc_and_context_names_partner_catalog_course_and_channel() {
        let s = statement(&row(crate::events::ENROLLMENT_ACTIVATED), &options(false))
            .expect("a statement");
        assert_eq!(s["timestamp"], "2026-11-20T22:30:00.000Z");
        let ext = &s["context"]["extensions"];
        let key = |k: &str| format!("https://catalog.example.org/xapi/extensions/{k}");
        assert_eq!(ext[key("partner")], "acme");
        assert_eq!(ext[key("catalog")], "acme-sales");
        assert_eq!(ext[key("course")], "course-v1:ACMEx+CS101+2026");
        assert_eq!(ext[key("channel")], "manual");
        assert_eq!(
            s["object"]["id"],
            "https://catalog.example.org/courses/course-v1%3AACMEx%2BCS101%2B2026"
        );
        assert_eq!(
            s["context"]["contextActivities"]["parent"][0]["id"],
            "https://catalog.example.org/catalogs/acme-sales"
        );
    }
}
