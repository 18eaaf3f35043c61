//! Recobro's ids for ERP records: UUIDv5 of (tenant, external id), so the same record always
//! maps to the same id, in accounts and in anything that needs to look one up.

use uuid::Uuid;

/// Namespace of Recobro's UUIDv5 ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_5a8e_7a1b_4c2e_9f3d_2b6e_1c4a_8e70);

pub fn debtor_id(tenant_id: &str, external_id: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("debtor/{tenant_id}/{external_id}").as_bytes())
}

pub fn invoice_id(tenant_id: &str, external_id: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("invoice/{tenant_id}/{external_id}").as_bytes(),
    )
}
