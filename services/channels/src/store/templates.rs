//! Tenants' own wordings of templates.

use sqlx::PgPool;

/// Stores a tenant's wording (already checked); its version rises with every change.
pub async fn put_template(
    pool: &PgPool,
    tenant_id: &str,
    template_id: &str,
    language: &str,
    subject: &str,
    body: &str,
) -> Result<i32, sqlx::Error> {
    let (version,): (i32,) = sqlx::query_as(
        "INSERT INTO templates (tenant_id, template_id, language, subject, body, version)
         VALUES ($1, $2, $3, $4, $5, 1)
         ON CONFLICT (tenant_id, template_id, language) DO UPDATE
           SET subject = EXCLUDED.subject, body = EXCLUDED.body,
               version = templates.version + 1, updated_at = now()
         RETURNING version",
    )
    .bind(tenant_id)
    .bind(template_id)
    .bind(language)
    .bind(subject)
    .bind(body)
    .fetch_one(pool)
    .await?;
    Ok(version)
}

pub async fn delete_template(
    pool: &PgPool,
    tenant_id: &str,
    template_id: &str,
    language: &str,
) -> Result<bool, sqlx::Error> {
    let deleted =
        sqlx::query("DELETE FROM templates WHERE tenant_id = $1 AND template_id = $2 AND language = $3")
            .bind(tenant_id)
            .bind(template_id)
            .bind(language)
            .execute(pool)
            .await?;
    Ok(deleted.rows_affected() > 0)
}

/// A stored wording: (tenant, template, language, subject, body, version).
type WordingRow = (String, String, String, String, String, i32);

fn wordings(rows: Vec<WordingRow>) -> crate::templates::Wordings {
    rows.into_iter()
        .map(|(tenant, template, language, subject, body, version)| {
            let wording = crate::templates::Wording {
                subject,
                body,
                version,
            };
            ((tenant, template, language), wording)
        })
        .collect()
}

/// The tenants' own wordings of the (tenant, template) pairs a batch uses.
pub async fn wordings_among(
    pool: &PgPool,
    pairs: &[(String, String)],
) -> Result<crate::templates::Wordings, sqlx::Error> {
    let rows: Vec<WordingRow> = sqlx::query_as(
        "SELECT t.tenant_id, t.template_id, t.language, t.subject, t.body, t.version
         FROM templates t JOIN UNNEST($1::text[], $2::text[]) AS k(tenant_id, template_id)
           ON t.tenant_id = k.tenant_id AND t.template_id = k.template_id",
    )
    .bind(pairs.iter().map(|p| p.0.as_str()).collect::<Vec<_>>())
    .bind(pairs.iter().map(|p| p.1.as_str()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(wordings(rows))
}

/// Every wording of a tenant's own.
pub async fn tenant_wordings(
    pool: &PgPool,
    tenant_id: &str,
) -> Result<crate::templates::Wordings, sqlx::Error> {
    let rows: Vec<WordingRow> = sqlx::query_as(
        "SELECT tenant_id, template_id, language, subject, body, version FROM templates WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(wordings(rows))
}
