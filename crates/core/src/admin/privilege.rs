//! The privilege boundary of every administrative door (admin API, console,
//! command line), enforced here once, in the services (docs/admin-api.md,
//! "Privilege boundaries"):
//!
//! - an actor gives a role (to a user, a group or an app, or by adding a
//!   member to a group that holds roles) only if it may grant roles and
//!   holds that role itself;
//! - an actor acts on a user or an app (changes, resets, locks, deletes,
//!   ends sessions, rotates secrets, reactivates …) only if that user or
//!   app holds no role the actor lacks.
//!
//! Without the first rule an Application Administrator could create an app
//! holding Identity Domain Administrator and use its token; without the
//! second a Help Desk Administrator could reset an Identity Domain
//! Administrator's password and sign in as them.

use super::{Actor, BearerError, Permission};
use crate::model::AppRole;
use crate::scope::MY_SCOPES;

fn denied(detail: String) -> BearerError {
    BearerError::Insufficient {
        scope: MY_SCOPES,
        detail,
    }
}

fn names(roles: &[AppRole]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Actor<'_> {
    /// Whether the actor holds `role`. Identity Domain Administrator is
    /// the top of the hierarchy and holds every role with it, as the
    /// operator at the command line does.
    pub fn holds(&self, role: AppRole) -> bool {
        match self {
            Actor::Caller(caller) => {
                caller.roles.contains(&role)
                    || caller.roles.contains(&AppRole::IdentityDomainAdministrator)
            }
            Actor::Cli => true,
        }
    }

    /// The roles of `roles` the actor does not hold.
    fn lacks(&self, roles: &[AppRole]) -> Vec<AppRole> {
        let mut missing: Vec<AppRole> = roles.iter().copied().filter(|r| !self.holds(*r)).collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// May the actor give (or take away) every role of `roles`? Nothing to
    /// give is always allowed.
    pub fn may_give(&self, roles: &[AppRole]) -> Result<(), BearerError> {
        if roles.is_empty() {
            return Ok(());
        }
        if let Actor::Caller(caller) = self {
            caller.require(Permission::GrantRoles)?;
        }
        let missing = self.lacks(roles);
        if missing.is_empty() {
            return Ok(());
        }
        Err(denied(format!(
            "giving or taking away a role needs the caller to hold it; the caller lacks: {}",
            names(&missing)
        )))
    }

    /// May the actor act on a user or app holding `target_roles`? `what`
    /// names the target for the message ("this user", "this app").
    pub fn may_act_on(&self, target_roles: &[AppRole], what: &str) -> Result<(), BearerError> {
        let missing = self.lacks(target_roles);
        if missing.is_empty() {
            return Ok(());
        }
        Err(denied(format!(
            "{what} holds roles the caller lacks ({}): only a holder of every one of them may change it",
            names(&missing)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::Caller;

    fn caller(roles: &[AppRole]) -> Caller {
        Caller {
            subject: "u".into(),
            user_id: Some("u".into()),
            client_id: "c".into(),
            roles: roles.to_vec(),
            scopes: vec![MY_SCOPES.into()],
        }
    }

    #[test]
    fn giving_needs_the_grant_permission_and_the_role_itself() {
        use AppRole::*;
        let ida = caller(&[IdentityDomainAdministrator]);
        let user_admin = caller(&[UserAdministrator]);
        assert!(Actor::Caller(&ida).may_give(&[]).is_ok());
        assert!(Actor::Caller(&user_admin).may_give(&[]).is_ok());
        // Holding a role is not enough without the grant permission.
        assert!(
            Actor::Caller(&user_admin)
                .may_give(&[UserAdministrator])
                .is_err()
        );
        // Identity Domain Administrator holds every role with it.
        assert!(Actor::Caller(&ida).may_give(&AppRole::ALL).is_ok());
        assert!(Actor::Cli.may_give(&AppRole::ALL).is_ok());
    }

    #[test]
    fn acting_on_a_target_needs_every_role_it_holds() {
        use AppRole::*;
        let help_desk = caller(&[HelpDeskAdministrator]);
        let actor = Actor::Caller(&help_desk);
        assert!(actor.may_act_on(&[], "this user").is_ok());
        assert!(
            actor
                .may_act_on(&[HelpDeskAdministrator], "this user")
                .is_ok()
        );
        let err = actor
            .may_act_on(&[IdentityDomainAdministrator], "this user")
            .unwrap_err();
        assert!(
            matches!(err, BearerError::Insufficient { ref detail, .. } if detail.contains("Identity Domain Administrator"))
        );
        assert!(Actor::Cli.may_act_on(&AppRole::ALL, "this user").is_ok());
    }
}
