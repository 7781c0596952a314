use std::fmt;
use std::str::FromStr;

/// The built-in identity domain application roles (docs/admin-api.md, "Who may do what").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppRole {
    IdentityDomainAdministrator,
    UserAdministrator,
    HelpDeskAdministrator,
    ApplicationAdministrator,
    SecurityAdministrator,
    AuditAdministrator,
}

impl AppRole {
    pub const ALL: [AppRole; 6] = [
        AppRole::IdentityDomainAdministrator,
        AppRole::UserAdministrator,
        AppRole::HelpDeskAdministrator,
        AppRole::ApplicationAdministrator,
        AppRole::SecurityAdministrator,
        AppRole::AuditAdministrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::IdentityDomainAdministrator => "Identity Domain Administrator",
            AppRole::UserAdministrator => "User Administrator",
            AppRole::HelpDeskAdministrator => "Help Desk Administrator",
            AppRole::ApplicationAdministrator => "Application Administrator",
            AppRole::SecurityAdministrator => "Security Administrator",
            AppRole::AuditAdministrator => "Audit Administrator",
        }
    }
}

impl fmt::Display for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown application role {0:?} (expected one of: {list})", list = AppRole::ALL.map(|r| r.as_str()).join(", "))]
pub struct UnknownRole(pub String);

impl FromStr for AppRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in AppRole::ALL {
            assert_eq!(role.as_str().parse::<AppRole>(), Ok(role));
        }
        assert!("Administrator".parse::<AppRole>().is_err());
    }
}
