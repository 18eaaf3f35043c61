//! The checked identity of a call, as handlers see it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use tonic::Status;

/// What a token may do. Named `recobro:<name>` in the token's `scope` (or `scp`) claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read a tenant's ledger, schedules, deliveries and conversations.
    Read,
    /// Change a tenant's ledger: debtors, invoices, settlements, promises, disputes, plans.
    Write,
    /// Send one-off messages to a tenant's debtors.
    Send,
    /// Reword a tenant's templates.
    Templates,
    /// Create and change tenants.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Write,
        Scope::Send,
        Scope::Templates,
        Scope::Admin,
    ];

    /// The name in a token's `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "recobro:read",
            Scope::Write => "recobro:write",
            Scope::Send => "recobro:send",
            Scope::Templates => "recobro:templates",
            Scope::Admin => "recobro:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ();

    /// Scopes of other APIs in the same token are not ours: `Err`, and skipped by the caller.
    fn from_str(name: &str) -> Result<Scope, ()> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == name)
            .ok_or(())
    }
}

/// A caller whose token was verified, for the method it was allowed to call.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The tenant the token is for; `None` for a token without one (only admin methods).
    pub tenant: Option<String>,
    /// The token's subject (a user or a client): for the audit trail, never personal data.
    pub subject: String,
    pub scopes: BTreeSet<Scope>,
}

impl Caller {
    /// The caller of a request that passed the guard. A request that did not (a service built
    /// without one) has no caller: refused, never guessed.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no verified caller"))
    }

    /// The tenant a request acts for: the token's. A request may name it (`tenant_id`) or
    /// leave it empty; naming another one is refused with `PERMISSION_DENIED`.
    pub fn tenant_for(&self, named: &str) -> Result<String, Status> {
        let Some(tenant) = &self.tenant else {
            return Err(Status::permission_denied("the token is for no tenant"));
        };
        let named = named.trim();
        if named.is_empty() || named == tenant {
            Ok(tenant.clone())
        } else {
            Err(Status::permission_denied("tenant_id is not the token's tenant"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(tenant: Option<&str>) -> Caller {
        Caller {
            tenant: tenant.map(str::to_string),
            subject: "client-1".into(),
            scopes: BTreeSet::from([Scope::Read]),
        }
    }

    #[test]
    fn the_tenant_is_the_tokens_and_another_is_refused() {
        let acme = caller(Some("acme"));
        assert_eq!(acme.tenant_for("acme").expect("same"), "acme");
        assert_eq!(acme.tenant_for("").expect("implied"), "acme");
        let other = acme.tenant_for("globex").expect_err("another tenant");
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        let none = caller(None)
            .tenant_for("acme")
            .expect_err("no tenant in the token");
        assert_eq!(none.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn scopes_round_trip_and_foreign_ones_are_not_ours() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse(), Ok(scope));
        }
        assert!("openid".parse::<Scope>().is_err());
        assert!("read".parse::<Scope>().is_err());
    }

    #[test]
    fn a_request_that_skipped_the_guard_has_no_caller() {
        let request = tonic::Request::new(());
        assert_eq!(
            Caller::of(&request).expect_err("none").code(),
            tonic::Code::Unauthenticated
        );
    }
}
