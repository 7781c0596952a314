//! What each identity domain application role may do in the admin API
//! (the permission table of docs/admin-api.md). Identity Domain Administrator may do
//! everything.

use crate::model::AppRole;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read Users and Groups.
    ReadUsers,
    /// Create, change and delete Users and Groups.
    WriteUsers,
    /// Set another user's password (a reset).
    ResetPasswords,
    /// Clear a user's failed-login throttle.
    UnlockUsers,
    ReadApps,
    WriteApps,
    ReadKeys,
    RotateKeys,
    ReadAudit,
    /// Grant or revoke a user's application roles: only an Identity
    /// Domain Administrator (a User Administrator could otherwise make
    /// themselves one).
    GrantRoles,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::ReadUsers,
        Permission::WriteUsers,
        Permission::ResetPasswords,
        Permission::UnlockUsers,
        Permission::ReadApps,
        Permission::WriteApps,
        Permission::ReadKeys,
        Permission::RotateKeys,
        Permission::ReadAudit,
        Permission::GrantRoles,
    ];

    pub fn granted_to(self, role: AppRole) -> bool {
        use AppRole::*;
        use Permission::*;
        match role {
            IdentityDomainAdministrator => true,
            UserAdministrator => {
                matches!(self, ReadUsers | WriteUsers | ResetPasswords | UnlockUsers)
            }
            HelpDeskAdministrator => matches!(self, ReadUsers | ResetPasswords | UnlockUsers),
            ApplicationAdministrator => matches!(self, ReadApps | WriteApps),
            SecurityAdministrator => {
                matches!(
                    self,
                    ReadUsers | ReadApps | ReadKeys | RotateKeys | ReadAudit
                )
            }
            AuditAdministrator => matches!(self, ReadAudit),
        }
    }

    /// The roles that grant this permission.
    pub fn roles(self) -> impl Iterator<Item = AppRole> {
        AppRole::ALL
            .into_iter()
            .filter(move |r| self.granted_to(*r))
    }

    pub fn describe(self) -> &'static str {
        match self {
            Permission::ReadUsers => "reading users and groups",
            Permission::WriteUsers => "changing users and groups",
            Permission::ResetPasswords => "resetting a password",
            Permission::UnlockUsers => "unlocking a user",
            Permission::ReadApps => "reading apps",
            Permission::WriteApps => "changing apps",
            Permission::ReadKeys => "reading signing keys",
            Permission::RotateKeys => "rotating signing keys",
            Permission::ReadAudit => "reading audit events",
            Permission::GrantRoles => "granting or revoking application roles",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_table() {
        use AppRole::*;
        use Permission::*;
        let table = |role: AppRole| {
            Permission::ALL
                .into_iter()
                .filter(|p| p.granted_to(role))
                .collect::<Vec<_>>()
        };
        assert_eq!(table(IdentityDomainAdministrator), Permission::ALL.to_vec());
        assert_eq!(
            table(UserAdministrator),
            [ReadUsers, WriteUsers, ResetPasswords, UnlockUsers]
        );
        assert_eq!(
            table(HelpDeskAdministrator),
            [ReadUsers, ResetPasswords, UnlockUsers]
        );
        assert_eq!(table(ApplicationAdministrator), [ReadApps, WriteApps]);
        assert_eq!(
            table(SecurityAdministrator),
            [ReadUsers, ReadApps, ReadKeys, RotateKeys, ReadAudit]
        );
        assert_eq!(table(AuditAdministrator), [ReadAudit]);
    }
}
