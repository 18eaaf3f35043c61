//! Channels' ledger view as a benchmark needs it: the tenant's and each debtor's records as
//! accounts publishes them (one consented email address each, in a zone where it is midday so
//! that every debtor may be contacted now), and a wait until the view has applied them.

use std::time::{Duration, Instant};

use recobro_proto::v1 as pb;

/// A zone where it is midday now.
pub fn midday_zone() -> String {
    use chrono::Timelike;
    let offset = (12 - i64::from(chrono::Utc::now().hour()) + 36) % 24 - 12;
    if offset >= 0 {
        format!("Etc/GMT-{offset}")
    } else {
        format!("Etc/GMT+{}", -offset)
    }
}

/// The tenant, a creditor.
pub fn tenant_record(tenant: &str) -> pb::AccountEvent {
    pb::AccountEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.into(),
        change: Some(pb::account_event::Change::TenantChanged(pb::TenantChanged {
            role: pb::TenantRole::Creditor as i32,
        })),
        ..Default::default()
    }
}

/// Debtor number `n` in the United States, in `zone`, with one consented email address.
pub fn debtor_record(tenant: &str, debtor_id: &str, n: usize, zone: &str) -> pb::AccountEvent {
    pb::AccountEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.into(),
        debtor_id: debtor_id.into(),
        change: Some(pb::account_event::Change::DebtorChanged(pb::DebtorChanged {
            debtor: Some(pb::Debtor {
                debtor_id: debtor_id.into(),
                tenant_id: tenant.into(),
                name: format!("Cliente {n}"),
                time_zone: zone.into(),
                locale: "es-US".into(),
                country: "US".into(),
                ..Default::default()
            }),
            contacts: vec![pb::Contact {
                contact_id: uuid::Uuid::new_v4().to_string(),
                role: pb::ContactRole::Other as i32,
                points: vec![pb::ContactPoint {
                    point_id: uuid::Uuid::new_v4().to_string(),
                    channel: pb::Channel::Email as i32,
                    address: format!("cartera{n}@cliente.example"),
                    consent: pb::Consent::Granted as i32,
                    consent_source: "erp".into(),
                    preferred: true,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            revision: 1,
            reason: "erp".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Waits until the view holds `debtors` debtors (10 minutes at most); returns how long it took.
pub async fn until_viewed(pool: &sqlx::PgPool, debtors: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let (known,): (i64,) = sqlx::query_as("SELECT count(*) FROM ledger_debtors")
            .fetch_one(pool)
            .await?;
        if known as usize >= debtors {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{known} of {debtors} debtors in the ledger view after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
