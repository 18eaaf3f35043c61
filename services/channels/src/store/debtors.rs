//! Where the debtors channels has seen are, for the contact-budget view.

use sqlx::PgPool;
use uuid::Uuid;

/// (time zone, country, region) of a debtor channels has seen.
pub async fn debtor(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT time_zone, country, region FROM debtors WHERE tenant_id = $1 AND debtor_id = $2")
        .bind(tenant_id)
        .bind(debtor_id)
        .fetch_optional(pool)
        .await
}

/// Remembers where debtors are (tenant, debtor, time zone, country, region), for the budget view.
pub async fn remember_debtors(
    pool: &PgPool,
    places: &[(String, Uuid, String, String, String)],
) -> Result<(), sqlx::Error> {
    type Place = (String, Uuid, String, String, String);
    let mut latest: std::collections::HashMap<(&str, Uuid), &Place> = Default::default();
    for place in places {
        latest.insert((place.0.as_str(), place.1), place);
    }
    let places: Vec<_> = latest.into_values().collect();
    sqlx::query(
        "INSERT INTO debtors (tenant_id, debtor_id, time_zone, country, region)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (tenant_id, debtor_id) DO UPDATE SET time_zone = EXCLUDED.time_zone,
            country = EXCLUDED.country, region = EXCLUDED.region, updated_at = now()
         WHERE (debtors.time_zone, debtors.country, debtors.region)
            IS DISTINCT FROM (EXCLUDED.time_zone, EXCLUDED.country, EXCLUDED.region)",
    )
    .bind(places.iter().map(|p| p.0.as_str()).collect::<Vec<_>>())
    .bind(places.iter().map(|p| p.1).collect::<Vec<_>>())
    .bind(places.iter().map(|p| p.2.as_str()).collect::<Vec<_>>())
    .bind(places.iter().map(|p| p.3.as_str()).collect::<Vec<_>>())
    .bind(places.iter().map(|p| p.4.as_str()).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}
