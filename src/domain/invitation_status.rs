//! Rule 5: an invitation's status is derived from its timestamps, never stored.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    Sent,
    Accepted,
    Declined,
    Removed,
    Expired,
}

/// The timestamps the status is derived from.
#[derive(Debug, Clone, Copy)]
pub struct InvitationTimes {
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl InvitationStatus {
    pub fn derive(times: &InvitationTimes, now: DateTime<Utc>) -> Self {
        if times.removed_at.is_some() {
            Self::Removed
        } else if times.declined_at.is_some() {
            Self::Declined
        } else if times.accepted_at.is_some() {
            Self::Accepted
        } else if times.expires_at <= now {
            Self::Expired
        } else {
            Self::Sent
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Removed => "removed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Sent,
            Self::Accepted,
            Self::Declined,
            Self::Removed,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Sent and accepted invitations are active: at most one per catalog and email.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Sent | Self::Accepted)
    }

    pub fn can_accept(self) -> bool {
        self == Self::Sent
    }

    pub fn can_decline(self) -> bool {
        self == Self::Sent
    }

    /// A sent invitation is revoked; an accepted one removes the learner.
    pub fn can_remove(self) -> bool {
        matches!(self, Self::Sent | Self::Accepted)
    }

    /// Resending renews a sent invitation or revives an expired one.
    pub fn can_resend(self) -> bool {
        matches!(self, Self::Sent | Self::Expired)
    }
}

impl std::fmt::Display for InvitationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an invitation came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Manual,
    Bulk,
    SelfEnrollment,
    PreEnrollment,
    Api,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Manual => "manual",
            Channel::Bulk => "bulk",
            Channel::SelfEnrollment => "self_enrollment",
            Channel::PreEnrollment => "pre_enrollment",
            Channel::Api => "api",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn times(now: DateTime<Utc>) -> InvitationTimes {
        InvitationTimes {
            expires_at: now + Duration::days(1),
            accepted_at: None,
            declined_at: None,
            removed_at: None,
        }
    }

    #[test]
    fn rule_5_precedence_removed_declined_accepted_expired_sent() {
        let now = Utc::now();
        let mut t = times(now);
        assert_eq!(InvitationStatus::derive(&t, now), InvitationStatus::Sent);
        t.expires_at = now;
        assert_eq!(InvitationStatus::derive(&t, now), InvitationStatus::Expired);
        t.accepted_at = Some(now);
        assert_eq!(
            InvitationStatus::derive(&t, now),
            InvitationStatus::Accepted
        );
        t.accepted_at = None;
        t.declined_at = Some(now);
        assert_eq!(
            InvitationStatus::derive(&t, now),
            InvitationStatus::Declined
        );
        t.removed_at = Some(now);
        assert_eq!(InvitationStatus::derive(&t, now), InvitationStatus::Removed);
    }

    #[test]
    fn rule_5_allowed_transitions() {
        use InvitationStatus::*;
        assert!(Sent.can_accept() && Sent.can_decline() && Sent.can_remove());
        assert!(Accepted.can_remove() && !Accepted.can_accept() && !Accepted.can_decline());
        assert!(Expired.can_resend() && !Expired.can_accept());
        for done in [Declined, Removed] {
            assert!(
                !done.can_accept()
                    && !done.can_decline()
                    && !done.can_remove()
                    && !done.can_resend()
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in ["sent", "accepted", "declined", "removed", "expired"] {
            assert_eq!(InvitationStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(InvitationStatus::parse("pending").is_none());
    }
}
