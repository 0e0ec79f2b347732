//! xAPI statements for tracking events. The statement id is the event's id, so
//! sending a statement again is idempotent at the LRS.

use serde_json::{Value, json};

use crate::models::events::TrackingEvent;

/// (verb id, display) for each event name.
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

pub fn statement(event: &TrackingEvent, base_url: &str) -> Option<Value> {
    let (verb_id, verb_display) = verb(&event.name)?;
    let actor_id = event
        .user_id
        .map(|id| format!("{base_url}/users/{id}"))
        .unwrap_or_else(|| {
            format!(
                "{base_url}/invitations/{}",
                event.invitation_id.unwrap_or_default()
            )
        });
    let object_id = match (event.course_id, event.catalog_id) {
        (Some(course), Some(catalog)) => format!("{base_url}/catalogs/{catalog}/courses/{course}"),
        (_, Some(catalog)) => format!("{base_url}/catalogs/{catalog}"),
        _ => base_url.to_string(),
    };
    let mut extensions = serde_json::Map::new();
    let ext = |key: &str| format!("{base_url}/xapi/extensions/{key}");
    if let Some(partner) = event.partner_id {
        extensions.insert(ext("partner_id"), json!(partner));
    }
    if let Some(channel) = &event.channel {
        extensions.insert(ext("channel"), json!(channel));
    }
    if let Some(reason) = &event.reason {
        extensions.insert(ext("reason"), json!(reason));
    }
    Some(json!({
        "id": event.id.to_string(),
        "timestamp": event.occurred_at.to_rfc3339(),
        "actor": { "objectType": "Agent", "account": { "homePage": base_url, "name": actor_id } },
        "verb": { "id": verb_id, "display": { "en-US": verb_display } },
        "object": { "objectType": "Activity", "id": object_id },
        "context": { "extensions": Value::Object(extensions) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> TrackingEvent {
        TrackingEvent {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            occurred_at: chrono::Utc::now(),
            partner_id: Some(1),
            catalog_id: Some(2),
            course_id: Some(3),
            user_id: Some(4),
            invitation_id: None,
            channel: Some("manual".into()),
            reason: Some("course_limit_reached".into()),
            data: json!({}),
            forwarded_at: None,
        }
    }

    #[test]
    fn rule_12_enrolments_are_registered_and_unregistered() {
        let activated =
            statement(&event(crate::events::ENROLLMENT_ACTIVATED), "https://x").unwrap();
        assert_eq!(activated["verb"]["display"]["en-US"], "registered");
        let deactivated =
            statement(&event(crate::events::ENROLLMENT_DEACTIVATED), "https://x").unwrap();
        assert_eq!(deactivated["verb"]["display"]["en-US"], "unregistered");
    }

    #[test]
    fn rule_12_statement_id_is_the_event_id() {
        let e = event(crate::events::ENROLLMENT_BLOCKED);
        let s = statement(&e, "https://x").unwrap();
        assert_eq!(s["id"], e.id.to_string());
        assert_eq!(
            s["context"]["extensions"]["https://x/xapi/extensions/reason"],
            "course_limit_reached"
        );
        assert!(statement(&event("something.else"), "https://x").is_none());
    }
}
