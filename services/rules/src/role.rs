//! A tenant's role, which provider eligibility depends on: one enum, one name each, and unknown
//! names are an error (a typo in the table must never exempt an agency).

use std::fmt;
use std::str::FromStr;

use recobro_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Collects its own receivables (first party).
    Creditor,
    /// Collects for others (third party).
    Agency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tenant role {0:?} (creditor or agency)")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 2] = [Role::Creditor, Role::Agency];

    /// The name a role has in the eligibility table, tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Creditor => "creditor",
            Role::Agency => "agency",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Role, UnknownRole> {
        match name {
            "creditor" => Ok(Role::Creditor),
            "agency" => Ok(Role::Agency),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

impl TryFrom<pb::TenantRole> for Role {
    type Error = UnknownRole;

    fn try_from(role: pb::TenantRole) -> Result<Role, UnknownRole> {
        match role {
            pb::TenantRole::Creditor => Ok(Role::Creditor),
            pb::TenantRole::Agency => Ok(Role::Agency),
            pb::TenantRole::Unspecified => Err(UnknownRole("TENANT_ROLE_UNSPECIFIED".into())),
        }
    }
}

impl From<Role> for pb::TenantRole {
    fn from(role: Role) -> pb::TenantRole {
        match role {
            Role::Creditor => pb::TenantRole::Creditor,
            Role::Agency => pb::TenantRole::Agency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name_and_the_wire() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(Role::try_from(pb::TenantRole::from(role)), Ok(role));
        }
    }

    #[test]
    fn unknown_names_are_errors_not_guesses() {
        assert!("Agency".parse::<Role>().is_err());
        assert!("collector".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
        assert!(Role::try_from(pb::TenantRole::Unspecified).is_err());
    }
}
