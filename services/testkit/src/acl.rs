//! Who may touch which topic and consumer group: the broker's ACLs for Recobro's principals,
//! for one environment's topic prefix. The local stack (`recobro-stack grant`) and every
//! end-to-end test stack grant exactly these; `k8s/kafka-users.yaml` states the same for Strimzi.

use recobro_common::config::Topics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Topic,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this name.
    Literal,
    /// Every name that starts with this one.
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
    Describe,
}

/// One permission: `principal` may do `operation` on the resources `pattern` of `name` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub principal: String,
    pub resource: Resource,
    pub pattern: Pattern,
    pub name: String,
    pub operation: Operation,
}

fn allow(principal: &str, resource: Resource, pattern: Pattern, name: &str, operation: Operation) -> Acl {
    Acl {
        principal: format!("User:{principal}"),
        resource,
        pattern,
        name: name.to_string(),
        operation,
    }
}

/// What a service reads and writes, with its consumer groups (prefixed by its group name, so
/// `recobro-scheduling` covers `recobro-scheduling-deferrals`). Principals are the services'
/// names; Read on a topic includes Describe.
pub fn service(topics: &Topics, service: &str) -> Vec<Acl> {
    use Operation::{Read, Write};
    use Pattern::{Literal, Prefixed};
    use Resource::{Group, Topic};
    let (reads, writes): (Vec<(&str, Pattern)>, Vec<&str>) = match service {
        "accounts" => (
            vec![(topics.erp_invoices_prefix.as_str(), Prefixed)],
            vec![&topics.account_events, &topics.dead_letter],
        ),
        "scheduling" => (
            vec![(&topics.account_events, Literal), (&topics.deliveries, Literal)],
            vec![&topics.reminders_due, &topics.escalations, &topics.dead_letter],
        ),
        "channels" => (
            vec![(&topics.reminders_due, Literal)],
            vec![&topics.deliveries, &topics.responses, &topics.dead_letter],
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let mut acls: Vec<Acl> = reads
        .into_iter()
        .map(|(name, pattern)| allow(service, Topic, pattern, name, Read))
        .collect();
    acls.extend(
        writes
            .into_iter()
            .map(|name| allow(service, Topic, Literal, name, Write)),
    );
    if !acls.is_empty() {
        acls.push(allow(
            service,
            Group,
            Prefixed,
            &topics.consumer_group(service),
            Read,
        ));
    }
    acls
}

/// An ERP connector writes its one tenant's topic and nothing else.
pub fn connector(topics: &Topics, principal: &str, tenant_id: &str) -> Vec<Acl> {
    vec![allow(
        principal,
        Resource::Topic,
        Pattern::Literal,
        &topics.erp_invoices_of(tenant_id),
        Operation::Write,
    )]
}

/// The three services' permissions.
pub fn services(topics: &Topics) -> Vec<Acl> {
    ["accounts", "scheduling", "channels"]
        .iter()
        .flat_map(|name| service(topics, name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_cannot_write_ledger_or_erp_topics() {
        let topics = Topics::with_prefix("");
        let acls = service(&topics, "channels");
        assert!(acls.iter().all(|a| a.principal == "User:channels"));
        let writes: Vec<&str> = acls
            .iter()
            .filter(|a| a.operation == Operation::Write)
            .map(|a| a.name.as_str())
            .collect();
        assert!(
            !writes
                .iter()
                .any(|t| t.starts_with("erp.") || t.starts_with("accounts."))
        );
        assert!(writes.contains(&"channel.deliveries.v1"));
    }

    #[test]
    fn a_connector_gets_only_its_tenants_topic() {
        let topics = Topics::with_prefix("t.");
        let acls = connector(&topics, "erp-acme", "acme");
        assert_eq!(acls.len(), 1);
        assert_eq!(acls[0].pattern, Pattern::Literal);
        assert_eq!(acls[0].name, "t.erp.invoices.v1.acme");
    }
}
