//! Rule 10: who may do what. Staff: everything. A partner manager: only their
//! partner's data, anything else is "not found". Learners: only their own things.

use crate::error::{Error, Result};
use crate::models::users::User;

/// The person (or token, or the system itself) a use case runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub email: String,
    pub is_staff: bool,
    pub managed_partner_id: Option<i64>,
    pub api_token_id: Option<i64>,
}

impl Actor {
    pub fn for_user(user: &User, managed_partner_id: Option<i64>) -> Self {
        Self {
            user_id: Some(user.id),
            email: user.email.clone(),
            is_staff: user.is_staff,
            managed_partner_id,
            api_token_id: None,
        }
    }

    /// Periodic jobs and fulfilment run as the system.
    pub fn system() -> Self {
        Self {
            user_id: None,
            email: String::new(),
            is_staff: true,
            managed_partner_id: None,
            api_token_id: None,
        }
    }

    /// Someone acting through an emailed link, who may have no account.
    pub fn invitee(email: &str, user_id: Option<i64>) -> Self {
        Self {
            user_id,
            email: email.to_string(),
            is_staff: false,
            managed_partner_id: None,
            api_token_id: None,
        }
    }

    pub fn with_api_token(mut self, token_id: i64) -> Self {
        self.api_token_id = Some(token_id);
        self
    }

    pub fn is_system(&self) -> bool {
        self.user_id.is_none() && self.email.is_empty()
    }

    /// The role recorded in the audit trail.
    pub fn audit_role(&self) -> &'static str {
        if self.user_id.is_none() && self.email.is_empty() {
            "system"
        } else if self.user_id.is_none() {
            "learner"
        } else if self.api_token_id.is_some() {
            "api_token"
        } else if self.is_staff {
            "staff"
        } else if self.managed_partner_id.is_some() {
            "partner_manager"
        } else {
            "learner"
        }
    }

    pub fn can_manage_partner(&self, partner_id: i64) -> bool {
        self.is_staff || self.managed_partner_id == Some(partner_id)
    }

    /// The signed-in user's id, for use cases that need a person.
    pub fn require_user(&self) -> Result<i64> {
        self.user_id
            .ok_or_else(|| Error::Forbidden("this needs a signed-in person".into()))
    }
}

pub fn require_staff(actor: &Actor) -> Result<()> {
    if actor.is_staff {
        Ok(())
    } else {
        Err(Error::Forbidden("only staff may do this".into()))
    }
}

/// Other partners' data does not exist as far as a manager can tell.
pub fn require_partner_access(actor: &Actor, partner_id: i64, what: &'static str) -> Result<()> {
    if actor.can_manage_partner(partner_id) {
        Ok(())
    } else {
        Err(Error::NotFound(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(is_staff: bool, partner: Option<i64>) -> Actor {
        Actor {
            user_id: Some(1),
            email: "a@example.com".into(),
            is_staff,
            managed_partner_id: partner,
            api_token_id: None,
        }
    }

    #[test]
    fn rule_10_staff_everything_manager_own_partner_only() {
        assert!(require_partner_access(&actor(true, None), 7, "partner").is_ok());
        assert!(require_partner_access(&actor(false, Some(7)), 7, "partner").is_ok());
        assert!(matches!(
            require_partner_access(&actor(false, Some(7)), 8, "partner"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            require_partner_access(&actor(false, None), 7, "partner"),
            Err(Error::NotFound(_))
        ));
        assert!(require_staff(&actor(false, Some(7))).is_err());
    }

    #[test]
    fn audit_roles() {
        assert_eq!(actor(true, None).audit_role(), "staff");
        assert_eq!(actor(false, Some(1)).audit_role(), "partner_manager");
        assert_eq!(actor(false, None).audit_role(), "learner");
        assert_eq!(
            actor(false, None).with_api_token(3).audit_role(),
            "api_token"
        );
        assert_eq!(Actor::system().audit_role(), "system");
    }
}
