//! Who may touch which topic and consumer group: the broker's ACLs for Recobro's principals,
//! for one environment's topic prefix. The local stack (`recobro-stack grant`) and every
//! end-to-end test stack grant exactly these; `k8s/components/strimzi/kafka-users.yaml` states the same for Strimzi
//! (a test below fails when the two differ).

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
        // Responses: an opt-out withdraws the contact point in the ledger, a reply acts on the
        // case. Escalations: work items for collectors, hand-off records. Payments: what debtors
        // paid through their payment links, settled in the ledger.
        "accounts" => (
            vec![
                (topics.erp_invoices_prefix.as_str(), Prefixed),
                (&topics.responses, Literal),
                (&topics.escalations, Literal),
                (&topics.payments, Literal),
            ],
            vec![&topics.account_events, &topics.dead_letter],
        ),
        "scheduling" => (
            vec![(&topics.account_events, Literal), (&topics.deliveries, Literal)],
            vec![&topics.reminders_due, &topics.escalations, &topics.dead_letter],
        ),
        // Account events: channels keeps its own view of the ledger (consent, legal hold,
        // tenant role) and sends only where it allows; its payment links charge what it says is
        // owed. Payments: what providers confirmed or reversed.
        "channels" => (
            vec![
                (&topics.reminders_due, Literal),
                (&topics.account_events, Literal),
            ],
            vec![
                &topics.deliveries,
                &topics.responses,
                &topics.payments,
                &topics.dead_letter,
            ],
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

    fn reads(acls: &[Acl]) -> Vec<&str> {
        acls.iter()
            .filter(|a| a.resource == Resource::Topic && a.operation == Operation::Read)
            .map(|a| a.name.as_str())
            .collect()
    }

    #[test]
    fn channels_reads_the_ledger_and_accounts_reads_the_responses() {
        let topics = Topics::with_prefix("t.");
        let channels = service(&topics, "channels");
        assert_eq!(
            reads(&channels),
            vec!["t.reminders.due.v1", "t.accounts.events.v1"]
        );
        let accounts = service(&topics, "accounts");
        assert!(reads(&accounts).contains(&"t.channel.responses.v1"));
        assert!(reads(&accounts).contains(&"t.collections.escalations.v1"));
        // Reading the ledger does not let channels write it, nor responses let accounts answer.
        assert!(
            !channels
                .iter()
                .any(|a| a.operation == Operation::Write && a.name == "t.accounts.events.v1")
        );
        assert!(
            !accounts
                .iter()
                .any(|a| a.operation == Operation::Write && a.name == "t.channel.responses.v1")
        );
        // Scheduling reads neither responses nor anything new.
        assert_eq!(
            reads(&service(&topics, "scheduling")),
            vec!["t.accounts.events.v1", "t.channel.deliveries.v1"]
        );
    }

    /// The ACLs of `k8s/components/strimzi/kafka-users.yaml`, read line by line in that file's own layout (one
    /// `- resource:` block per ACL), not as YAML in general. A value it does not know fails.
    fn strimzi_acls(yaml: &str) -> Vec<Acl> {
        let mut acls = Vec::new();
        for document in yaml.split("\n---\n") {
            let mut user: Option<&str> = None;
            let mut in_acls = false;
            let (mut resource, mut pattern, mut name) = (None, None, None);
            for line in document.lines().map(str::trim) {
                if line.starts_with('#') {
                    continue;
                }
                if line == "- resource:" {
                    in_acls = true;
                } else if let Some(value) = line.strip_prefix("name: ") {
                    // The first name is the user's (metadata comes before spec).
                    match user {
                        None => user = Some(value),
                        Some(_) => name = Some(value),
                    }
                } else if let Some(value) = line.strip_prefix("type: ").filter(|_| in_acls) {
                    resource = Some(match value {
                        "topic" => Resource::Topic,
                        "group" => Resource::Group,
                        other => panic!("unknown resource type {other:?}"),
                    });
                } else if let Some(value) = line.strip_prefix("patternType: ") {
                    pattern = Some(match value {
                        "literal" => Pattern::Literal,
                        "prefix" => Pattern::Prefixed,
                        other => panic!("unknown patternType {other:?}"),
                    });
                } else if let Some(list) = line.strip_prefix("operations: ") {
                    let list = list.trim_start_matches('[').trim_end_matches(']');
                    for operation in list.split(',').map(str::trim) {
                        let operation = match operation {
                            "Read" => Operation::Read,
                            "Write" => Operation::Write,
                            "Describe" => Operation::Describe,
                            other => panic!("unknown operation {other:?}"),
                        };
                        acls.push(allow(
                            user.expect("metadata.name before the ACLs"),
                            resource.expect("resource.type"),
                            pattern.expect("resource.patternType"),
                            name.expect("resource.name"),
                            operation,
                        ));
                    }
                    (resource, pattern, name) = (None, None, None);
                }
            }
        }
        acls
    }

    #[test]
    fn the_strimzi_users_grant_exactly_what_this_file_grants() {
        let topics = Topics::with_prefix("");
        let mut expected = services(&topics);
        expected.extend(connector(&topics, "erp-acme", "acme"));
        let stated = strimzi_acls(include_str!("../../../k8s/components/strimzi/kafka-users.yaml"));
        for acl in &expected {
            assert!(
                stated.contains(acl),
                "k8s/components/strimzi/kafka-users.yaml lacks {acl:?}"
            );
        }
        for acl in &stated {
            assert!(
                expected.contains(acl),
                "k8s/components/strimzi/kafka-users.yaml adds {acl:?}"
            );
        }
        assert_eq!(stated.len(), expected.len(), "an ACL stated twice");
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
