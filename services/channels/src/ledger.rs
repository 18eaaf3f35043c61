//! Channels' view of the ledger, kept current from accounts.events.v1: whom channels may contact
//! (contact points, consent, retirements, legal holds), each tenant's role, and each invoice's
//! latest snapshot. Channels never takes an address, country or time zone from a caller or a
//! reminder: it reads them here, right before deciding.
//!
//! How stale the view can be is bounded by the fence: before a batch of reminders is decided,
//! the dispatcher waits until the view has applied every event accounts.events.v1 held when
//! the batch started (its end offsets, read from the broker, against the offsets the view
//! stored with what it applied). So a consent withdrawn in accounts is honoured by every send
//! decided after accounts' outbox relayed it (20 ms when idle), and reminders that queued up
//! during an outage wait for the withdrawals that queued up beside them. A view that cannot
//! catch up holds sends back (retried), never lets them go on stale consent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use recobro_common::db;
use recobro_common::kafka::{BatchHandler, Failure, KafkaSettings};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, LedgerChange};

/// Applies accounts' events to the view (the consumer's handler).
pub struct LedgerView {
    pub pool: PgPool,
}

impl BatchHandler for LedgerView {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut changes = Vec::with_capacity(messages.len());
        let mut rejected = Vec::new();
        let mut reached: HashMap<(String, i32), i64> = HashMap::new();
        for (index, message) in messages.iter().enumerate() {
            let next = reached
                .entry((message.topic().to_string(), message.partition()))
                .or_insert(0);
            *next = (*next).max(message.offset() + 1);
            let change = pb::AccountEvent::decode(message.payload().unwrap_or_default())
                .map_err(|err| format!("not a recobro.v1.AccountEvent: {err}"))
                .and_then(change_of);
            match change {
                Ok(change) => changes.push(change),
                Err(reason) => rejected.push((index, reason)),
            }
        }
        let offsets: Vec<(String, i32, i64)> = reached
            .into_iter()
            .map(|((topic, partition), next)| (topic, partition, next))
            .collect();
        store::apply_ledger(&self.pool, &changes, &offsets)
            .await
            .map_err(|err| db::failure(&err))?;
        Ok(rejected)
    }
}

/// What an account event changes in the view. Only accounts may write its topic (broker
/// ACL), so its tenant is the ledger's; anything malformed or unknown is refused with why.
pub fn change_of(event: pb::AccountEvent) -> Result<LedgerChange, String> {
    if event.tenant_id.is_empty() {
        return Err("tenant_id is required".into());
    }
    let tenant_id = event.tenant_id;
    match event.change {
        Some(pb::account_event::Change::DebtorChanged(snapshot)) => {
            let debtor_id = Uuid::parse_str(&event.debtor_id).map_err(|_| "debtor_id is not a UUID")?;
            if snapshot.revision <= 0 {
                return Err("debtor_changed.revision must be positive".into());
            }
            let debtor = snapshot
                .debtor
                .as_ref()
                .ok_or("debtor_changed.debtor is required")?;
            if debtor.time_zone.parse::<chrono_tz::Tz>().is_err() {
                return Err("debtor_changed.debtor.time_zone is not an IANA zone".into());
            }
            Ok(LedgerChange::Debtor {
                tenant_id,
                debtor_id,
                revision: snapshot.revision,
                time_zone: debtor.time_zone.clone(),
                country: debtor.country.clone(),
                region: debtor.region.clone(),
                snapshot,
            })
        }
        Some(pb::account_event::Change::TenantChanged(tenant)) => {
            let role = match tenant.role() {
                pb::TenantRole::Creditor => "creditor",
                pb::TenantRole::Agency => "agency",
                pb::TenantRole::Unspecified => {
                    return Err("tenant_changed.role must be CREDITOR or AGENCY".into());
                }
            };
            Ok(LedgerChange::Tenant { tenant_id, role })
        }
        Some(pb::account_event::Change::InvoiceChanged(changed)) => {
            let invoice = changed.invoice.ok_or("invoice_changed.invoice is required")?;
            let invoice_id = Uuid::parse_str(&invoice.invoice_id)
                .map_err(|_| "invoice_changed.invoice.invoice_id is not a UUID")?;
            let debtor_id = Uuid::parse_str(&invoice.debtor_id)
                .map_err(|_| "invoice_changed.invoice.debtor_id is not a UUID")?;
            Ok(LedgerChange::Invoice {
                tenant_id,
                invoice_id,
                debtor_id,
                revision: invoice.revision,
                snapshot: invoice,
            })
        }
        None => Err("change is missing or of a kind this version does not know".into()),
    }
}

/// Waits, before a decision, until the view has applied everything accounts.events.v1 held.
pub struct LedgerFence {
    pool: PgPool,
    topic: String,
    client: Arc<BaseConsumer>,
    /// How long a batch waits for the view before it is retried.
    patience: Duration,
}

impl LedgerFence {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        topic: &str,
    ) -> Result<LedgerFence, rdkafka::error::KafkaError> {
        Ok(LedgerFence {
            pool,
            topic: topic.to_string(),
            client: Arc::new(kafka.client_config().create()?),
            patience: Duration::from_secs(5),
        })
    }

    /// The end offset of each partition of the topic (partitions with no message left are
    /// skipped: there is nothing to wait for).
    async fn ends(&self) -> Result<Vec<(i32, i64)>, Failure> {
        let client = self.client.clone();
        let topic = self.topic.clone();
        let timeout = Duration::from_secs(5);
        tokio::task::spawn_blocking(move || {
            let metadata = client.fetch_metadata(Some(&topic), timeout)?;
            let mut ends = Vec::new();
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (low, high) = client.fetch_watermarks(&topic, partition.id(), timeout)?;
                if high > low {
                    ends.push((partition.id(), high));
                }
            }
            Ok::<_, rdkafka::error::KafkaError>(ends)
        })
        .await
        .map_err(|err| Failure::Retry(format!("ledger fence: {err}")))?
        .map_err(|err| {
            Failure::Retry(format!(
                "ledger fence: the broker did not give the topic's end: {err}"
            ))
        })
    }

    /// Ok once the view has applied every event the topic held when this was called.
    pub async fn caught_up(&self) -> Result<(), Failure> {
        let ends = self.ends().await?;
        let deadline = tokio::time::Instant::now() + self.patience;
        loop {
            let applied = store::ledger_offsets(&self.pool, &self.topic)
                .await
                .map_err(|err| Failure::Retry(format!("database: {err}")))?;
            let behind = ends
                .iter()
                .filter(|(partition, end)| applied.get(partition).is_none_or(|next| next < end))
                .count();
            if behind == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::Retry(format!(
                    "the ledger view is behind {} on {behind} partition(s): sends wait for it",
                    self.topic
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(change: pb::account_event::Change) -> pb::AccountEvent {
        pb::AccountEvent {
            event_id: "e1".into(),
            tenant_id: "acme".into(),
            debtor_id: Uuid::from_u128(7).to_string(),
            change: Some(change),
            ..Default::default()
        }
    }

    fn debtor_changed(revision: i64, zone: &str) -> pb::account_event::Change {
        pb::account_event::Change::DebtorChanged(pb::DebtorChanged {
            debtor: Some(pb::Debtor {
                time_zone: zone.into(),
                country: "CO".into(),
                ..Default::default()
            }),
            revision,
            ..Default::default()
        })
    }

    #[test]
    fn a_debtor_record_is_kept_with_its_revision_and_place() {
        let Ok(LedgerChange::Debtor {
            tenant_id,
            debtor_id,
            revision,
            time_zone,
            country,
            ..
        }) = change_of(event(debtor_changed(3, "America/Bogota")))
        else {
            panic!("a debtor change")
        };
        assert_eq!(
            (tenant_id.as_str(), debtor_id, revision),
            ("acme", Uuid::from_u128(7), 3)
        );
        assert_eq!((time_zone.as_str(), country.as_str()), ("America/Bogota", "CO"));
    }

    #[test]
    fn malformed_or_unknown_events_are_refused_with_the_field() {
        let cases = [
            (
                event(debtor_changed(0, "America/Bogota")),
                "debtor_changed.revision",
            ),
            (
                event(debtor_changed(1, "Mars/Base")),
                "debtor_changed.debtor.time_zone",
            ),
            (
                event(pb::account_event::Change::TenantChanged(pb::TenantChanged {
                    role: 0,
                })),
                "tenant_changed.role",
            ),
            (
                event(pb::account_event::Change::InvoiceChanged(
                    pb::InvoiceChanged::default(),
                )),
                "invoice_changed.invoice",
            ),
            (
                pb::AccountEvent {
                    tenant_id: "acme".into(),
                    ..Default::default()
                },
                "change",
            ),
        ];
        for (event, field) in cases {
            let reason = change_of(event).err().expect(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
        }
        let mut nobody = event(debtor_changed(1, "America/Bogota"));
        nobody.tenant_id.clear();
        assert_eq!(change_of(nobody).err().as_deref(), Some("tenant_id is required"));
    }

    #[test]
    fn a_tenant_role_is_read_by_name() {
        let agency = event(pb::account_event::Change::TenantChanged(pb::TenantChanged {
            role: pb::TenantRole::Agency as i32,
        }));
        let Ok(LedgerChange::Tenant { role, .. }) = change_of(agency) else {
            panic!("tenant change")
        };
        assert_eq!(role, "agency");
    }
}
