//! Due reminders written straight into scheduling's tables, for tests and the month-end benchmark.

use prost::Message as _;
use recobro_proto::v1 as pb;

/// `invoices` open invoices, each with its own debtor, and `steps` reminders each, all due now.
pub async fn seed(pool: &sqlx::PgPool, invoices: usize, steps: i32) {
    let mut ids = Vec::new();
    let mut debtors = Vec::new();
    let mut snapshots = Vec::new();
    for n in 0..invoices {
        let invoice_id = uuid::Uuid::new_v4();
        let debtor_id = uuid::Uuid::new_v4();
        let snapshot = pb::InvoiceChanged {
            invoice: Some(pb::Invoice {
                invoice_id: invoice_id.to_string(),
                tenant_id: "month-end".into(),
                debtor_id: debtor_id.to_string(),
                number: format!("FE-{n}"),
                status: pb::InvoiceStatus::Open as i32,
                ..Default::default()
            }),
            debtor: Some(pb::Debtor {
                debtor_id: debtor_id.to_string(),
                email: format!("d{n}@example.com"),
                ..Default::default()
            }),
            reason: "erp".into(),
        };
        ids.push(invoice_id);
        debtors.push(debtor_id);
        snapshots.push(snapshot.encode_to_vec());
    }
    sqlx::query(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, status, version, snapshot)
         SELECT i, 'month-end', d, 'open', 1, s FROM UNNEST($1::uuid[], $2::uuid[], $3::bytea[]) AS x(i, d, s)",
    )
    .bind(&ids)
    .bind(&debtors)
    .bind(&snapshots)
    .execute(pool)
    .await
    .expect("invoices");
    sqlx::query(
        "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                state, strategy_id, arm, action, channels, roles)
         SELECT md5(i.invoice_id::text || s)::uuid, 'month-end', i.debtor_id, i.invoice_id, 'step-' || s, 'email', 'overdue',
                now() - interval '1 minute', 'pending', 'standard', 'champion', 'message', '{email}', '{}'
         FROM invoices i CROSS JOIN generate_series(1, $1) s WHERE i.invoice_id = ANY($2)",
    )
    .bind(steps)
    .bind(&ids)
    .execute(pool)
    .await
    .expect("reminders");
}
