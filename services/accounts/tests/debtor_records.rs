//! What accounts publishes about a debtor's record, against real PostgreSQL (the outbox is read
//! back instead of Kafka): the ERP's record is published when it is new or changed, never once
//! per invoice; an address the ERP replaced is retired, and comes back with the consent it had;
//! an opt-out channels received withdraws its point once, unless a later consent stands; what
//! was stored before records were published is published once.

use chrono::{DateTime, Duration, Utc};
use prost::Message as _;
use recobro_accounts::InvoiceEvent;
use recobro_accounts::ingest::InvoiceIngest;
use recobro_accounts::responses::{OptOut, OptOutIngest};
use recobro_common::config::Config;
use recobro_proto::v1 as pb;
use uuid::Uuid;

struct Ledger {
    pool: sqlx::PgPool,
    ingest: InvoiceIngest,
    opt_outs: OptOutIngest,
}

async fn setup() -> Ledger {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("records{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("records_{id}")),
    ]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        .execute(&pool)
        .await
        .expect("tenant");
    Ledger {
        ingest: InvoiceIngest {
            pool: pool.clone(),
            account_events_topic: config.topics.account_events.clone(),
            topics: config.topics.clone(),
        },
        opt_outs: OptOutIngest {
            pool: pool.clone(),
            account_events_topic: config.topics.account_events.clone(),
            unsure_sla: std::time::Duration::from_secs(24 * 3600),
        },
        pool,
    }
}

/// The ERP's event `event_id` about invoice F-1 of debtor C-1, with the debtor's addresses.
fn erp(event_id: &str, version: i64, email: &str, phone: &str) -> (InvoiceEvent, Option<String>) {
    let raw = pb::InvoiceEvent {
        event_id: event_id.into(),
        tenant_id: "acme".into(),
        kind: pb::InvoiceEventKind::Updated as i32,
        version,
        debtor: Some(pb::DebtorRecord {
            external_id: "C-1".into(),
            name: "Ferretería El Tornillo SAS".into(),
            kind: pb::DebtorKind::Company as i32,
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            country: "CO".into(),
            email: email.into(),
            phone: phone.into(),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: "F-1".into(),
            number: "FE-1".into(),
            amount: Some(pb::Money {
                amount_minor: 125_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 1,
            }),
            due_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 31,
            }),
        }),
        ..Default::default()
    };
    (InvoiceEvent::parse(&raw).expect("valid"), None)
}

/// What was queued since the last call, in order (taken out of the outbox).
async fn published(pool: &sqlx::PgPool) -> Vec<(String, pb::AccountEvent)> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "WITH taken AS (DELETE FROM outbox RETURNING id, key, payload) SELECT key, payload FROM taken ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("outbox");
    rows.into_iter()
        .map(|(key, payload)| {
            let event = pb::AccountEvent::decode(payload.as_slice()).expect("an AccountEvent");
            (key, event)
        })
        .collect()
}

/// "debtor:<reason>:<revision>" or "invoice:<reason>", per event.
fn summary(events: &[(String, pb::AccountEvent)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, event)| match &event.change {
            Some(pb::account_event::Change::DebtorChanged(c)) => {
                format!("debtor:{}:{}", c.reason, c.revision)
            }
            Some(pb::account_event::Change::InvoiceChanged(c)) => format!("invoice:{}", c.reason),
            other => format!("{other:?}"),
        })
        .collect()
}

fn record(events: &[(String, pb::AccountEvent)]) -> pb::DebtorChanged {
    events
        .iter()
        .find_map(|(_, event)| match &event.change {
            Some(pb::account_event::Change::DebtorChanged(c)) => Some(c.clone()),
            _ => None,
        })
        .expect("a debtor's record")
}

fn point<'a>(record: &'a pb::DebtorChanged, address: &str) -> &'a pb::ContactPoint {
    record
        .contacts
        .iter()
        .flat_map(|c| &c.points)
        .find(|p| p.address == address)
        .unwrap_or_else(|| panic!("no point {address}"))
}

#[tokio::test]
async fn an_erp_debtor_is_published_when_new_or_changed_never_once_per_invoice() {
    let ledger = setup().await;
    ledger
        .ingest
        .apply(&[erp("e1", 1, "a@tornillo.example", "+573001234567")])
        .await
        .expect("e1");
    let events = published(&ledger.pool).await;
    assert_eq!(
        summary(&events),
        ["debtor:erp:1", "invoice:erp"],
        "the record first"
    );
    let debtor_id = recobro_common::ids::debtor_id("acme", "C-1").to_string();
    assert_eq!(events[0].0, debtor_id, "keyed by debtor");
    assert_eq!(events[0].1.debtor_id, debtor_id);
    let first = record(&events);
    assert_eq!(first.debtor.as_ref().expect("debtor").routes.len(), 2);
    assert!(
        first
            .debtor
            .as_ref()
            .expect("debtor")
            .routes
            .iter()
            .all(|r| !r.point_id.is_empty())
    );
    assert!(point(&first, "a@tornillo.example").consent_at.is_some());

    ledger
        .ingest
        .apply(&[
            erp("e2", 2, "a@tornillo.example", "+573001234567"),
            erp("e3", 3, "a@tornillo.example", "+573001234567"),
        ])
        .await
        .expect("e2, e3");
    assert_eq!(
        summary(&published(&ledger.pool).await),
        ["invoice:erp"],
        "an unchanged debtor is not published again"
    );
}

#[tokio::test]
async fn an_address_the_erp_replaced_is_retired_and_comes_back_with_its_consent() {
    let ledger = setup().await;
    ledger
        .ingest
        .apply(&[erp("e1", 1, "a@tornillo.example", "+573001234567")])
        .await
        .expect("e1");
    published(&ledger.pool).await;

    ledger
        .ingest
        .apply(&[erp("e2", 2, "b@tornillo.example", "+573001234567")])
        .await
        .expect("e2");
    let events = published(&ledger.pool).await;
    assert_eq!(summary(&events), ["debtor:erp:2", "invoice:erp"]);
    let changed = record(&events);
    let old = point(&changed, "a@tornillo.example");
    assert!(old.retired_at.is_some());
    assert_eq!(old.retired_reason, "replaced by the ERP record");
    let new = point(&changed, "b@tornillo.example");
    assert!(new.preferred && new.retired_at.is_none() && new.consent() == pb::Consent::Granted);
    let routes: Vec<&str> = changed
        .debtor
        .as_ref()
        .expect("debtor")
        .routes
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(routes, ["b@tornillo.example", "+573001234567"]);

    // An older event still carries the debtor as the ERP had it: the phone it no longer has.
    ledger
        .ingest
        .apply(&[erp("e3", 1, "b@tornillo.example", "")])
        .await
        .expect("e3");
    let events = published(&ledger.pool).await;
    assert_eq!(summary(&events), ["debtor:erp:3"], "the stale invoice is not");
    assert_eq!(
        point(&record(&events), "+573001234567").retired_reason,
        "no longer in the ERP record"
    );

    // Withdrawn, then the ERP gives the old address again: current, and still withdrawn.
    let withdrawn_point = point(&changed, "b@tornillo.example").point_id.clone();
    sqlx::query("UPDATE contact_points SET consent = 'withdrawn', consent_source = 'debtor letter' WHERE point_id = $1")
        .bind(Uuid::parse_str(&withdrawn_point).expect("uuid"))
        .execute(&ledger.pool)
        .await
        .expect("withdraw");
    ledger
        .ingest
        .apply(&[erp("e4", 4, "b@tornillo.example", "")])
        .await
        .expect("e4");
    assert_eq!(
        summary(&published(&ledger.pool).await),
        ["invoice:erp"],
        "a re-sync never re-grants"
    );
    ledger
        .ingest
        .apply(&[erp("e5", 5, "a@tornillo.example", "")])
        .await
        .expect("e5");
    ledger
        .ingest
        .apply(&[erp("e6", 6, "b@tornillo.example", "")])
        .await
        .expect("e6");
    let events = published(&ledger.pool).await;
    let last = record(&events[2..]);
    let back = point(&last, "b@tornillo.example");
    assert!(back.retired_at.is_none(), "{back:?}");
    assert_eq!(back.consent(), pb::Consent::Withdrawn);
    assert_eq!(back.consent_source, "debtor letter");
    let debtor = last.debtor.as_ref().expect("debtor");
    assert!(debtor.routes.is_empty() && debtor.email.is_empty(), "{debtor:?}");
}

fn opt_out(response_id: &str, tenant_id: &str, point_id: Uuid, at: DateTime<Utc>) -> OptOut {
    OptOut {
        response_id: response_id.into(),
        tenant_id: tenant_id.into(),
        debtor_id: None,
        point_id,
        source: "sendgrid bounce".into(),
        received_at: at,
        unsure: false,
        text: String::new(),
    }
}

#[tokio::test]
async fn an_opt_out_withdraws_its_point_once_unless_a_later_consent_stands() {
    let ledger = setup().await;
    ledger
        .ingest
        .apply(&[erp("e1", 1, "a@tornillo.example", "+573001234567")])
        .await
        .expect("e1");
    let first = record(&published(&ledger.pool).await);
    let email = Uuid::parse_str(&point(&first, "a@tornillo.example").point_id).expect("uuid");

    let before_the_grant = Utc::now() - Duration::days(1);
    let refused = ledger
        .opt_outs
        .apply(&[(0, opt_out("r-0", "acme", email, before_the_grant), None)])
        .await
        .expect("r-0");
    assert!(refused.is_empty());
    assert!(
        published(&ledger.pool).await.is_empty(),
        "the consent recorded after it stands"
    );

    let now = Utc::now();
    let refused = ledger
        .opt_outs
        .apply(&[
            (0, opt_out("r-1", "acme", email, now), None),
            (1, opt_out("r-1", "acme", email, now), None),
            (2, opt_out("r-2", "other", email, now), None),
        ])
        .await
        .expect("r-1, r-2");
    assert_eq!(
        refused,
        [(2, format!("point {email} is not a contact point of tenant other"))]
    );
    let events = published(&ledger.pool).await;
    assert_eq!(summary(&events), ["debtor:opt_out:2", "invoice:opt_out"]);
    let withdrawn = point(&record(&events), "a@tornillo.example").clone();
    assert_eq!(withdrawn.consent(), pb::Consent::Withdrawn);
    assert_eq!(withdrawn.consent_source, "sendgrid bounce");
    assert_eq!(withdrawn.consent_at.map(|t| t.seconds), Some(now.timestamp()));

    ledger
        .opt_outs
        .apply(&[(0, opt_out("r-1", "acme", email, now), None)])
        .await
        .expect("r-1 again");
    assert!(published(&ledger.pool).await.is_empty(), "applied once");
}

#[tokio::test]
async fn tenants_and_debtors_stored_before_records_existed_are_published_once_at_start() {
    let ledger = setup().await;
    ledger
        .ingest
        .apply(&[erp("e1", 1, "a@tornillo.example", "+573001234567")])
        .await
        .expect("e1");
    published(&ledger.pool).await;
    // As a ledger migrated from before records were published: the tenant (made by `setup`
    // without UpsertTenant) and the debtor were never published.
    sqlx::query("UPDATE debtors SET revision = 0")
        .execute(&ledger.pool)
        .await
        .expect("an old debtor");
    let topic = &ledger.ingest.account_events_topic;

    let done = recobro_accounts::backfill::publish_missing_records(&ledger.pool, topic)
        .await
        .expect("backfill");

    assert_eq!((done.tenants, done.debtors), (1, 1));
    let events = published(&ledger.pool).await;
    let tenant = events
        .iter()
        .find_map(|(key, event)| match &event.change {
            Some(pb::account_event::Change::TenantChanged(c)) => Some((key.clone(), c.role())),
            _ => None,
        })
        .expect("the tenant's role");
    assert_eq!(tenant, ("acme".to_string(), pb::TenantRole::Creditor));
    let debtor = record(&events);
    assert_eq!((debtor.reason.as_str(), debtor.revision), ("backfill", 1));
    assert_eq!(
        point(&debtor, "a@tornillo.example").consent(),
        pb::Consent::Granted
    );

    let again = recobro_accounts::backfill::publish_missing_records(&ledger.pool, topic)
        .await
        .expect("backfill");
    assert_eq!((again.tenants, again.debtors), (0, 0), "once");
    assert!(published(&ledger.pool).await.is_empty());
}

#[tokio::test]
async fn an_unsure_opt_out_is_honoured_and_a_person_is_asked_to_confirm_it() {
    let ledger = setup().await;
    ledger
        .ingest
        .apply(&[erp("e1", 1, "a@tornillo.example", "+573001234567")])
        .await
        .expect("e1");
    let first = record(&published(&ledger.pool).await);
    let email = Uuid::parse_str(&point(&first, "a@tornillo.example").point_id).expect("uuid");
    let phone = Uuid::parse_str(&point(&first, "+573001234567").point_id).expect("uuid");

    let now = Utc::now();
    let unsure = OptOut {
        unsure: true,
        text: "estoy harto de tanto mensaje".into(),
        ..opt_out("r-unsure", "acme", phone, now)
    };
    let refused = ledger
        .opt_outs
        .apply(&[
            (0, unsure.clone(), None),
            (1, opt_out("r-sure", "acme", email, now), None),
            (2, unsure, None),
        ])
        .await
        .expect("opt-outs");
    assert!(refused.is_empty(), "{refused:?}");
    let events = published(&ledger.pool).await;
    let debtor = record(&events);
    assert_eq!(point(&debtor, "+573001234567").consent(), pb::Consent::Withdrawn);
    assert_eq!(
        point(&debtor, "a@tornillo.example").consent(),
        pb::Consent::Withdrawn
    );

    let items: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT response_id, kind, reply_text FROM work_items WHERE tenant_id = 'acme' ORDER BY response_id",
    )
    .fetch_all(&ledger.pool)
    .await
    .expect("work items");
    assert_eq!(
        items,
        [(
            "r-unsure".to_string(),
            "unsure_opt_out".to_string(),
            "estoy harto de tanto mensaje".to_string()
        )],
        "one item for the unsure opt-out, none for the sure one, once per response"
    );
}
