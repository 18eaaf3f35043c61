//! `recobro-token`: prints a development access token for the local stack.

use std::time::Duration;

use recobro_token::{Claims, Signer};

const USAGE: &str = "\
recobro-token: mint a development access token (local stack only).

usage:
    recobro-token --tenant <id> [--scope \"recobro:read recobro:write\"] [--bind-cert <client.pem>]
                  [--subject <id>] [--ttl <seconds>]
    recobro-token --admin            a token for tenant administration (no tenant)

The key, its kid, the issuer and the audience come from RECOBRO_DEV_SIGNING_KEY,
RECOBRO_DEV_SIGNING_KID, RECOBRO_TOKEN_ISSUER and RECOBRO_TOKEN_AUDIENCE
(`source deploy/local/env.sh` sets them). Scopes: recobro:read, recobro:write, recobro:send,
recobro:templates, recobro:admin.";

fn main() {
    if let Err(err) = run() {
        eprintln!("recobro-token: {err:#}\n\n{USAGE}");
        std::process::exit(2);
    }
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| anyhow::anyhow!("{name} is not set"))
}

fn run() -> anyhow::Result<()> {
    let mut tenant = None;
    let mut scope = "recobro:read recobro:write recobro:send recobro:templates".to_string();
    let mut bound_to = None;
    let mut subject = "recobro-dev".to_string();
    let mut ttl = 3600;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--tenant" => tenant = Some(value()?),
            "--scope" => scope = value()?,
            "--bind-cert" => bound_to = Some(std::fs::read(value()?)?),
            "--subject" => subject = value()?,
            "--ttl" => ttl = value()?.parse()?,
            "--admin" => scope = "recobro:admin".into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    if tenant.is_none() && scope != "recobro:admin" {
        anyhow::bail!("--tenant is required (or --admin)");
    }
    let signer = Signer::from_pem(
        &std::fs::read(env("RECOBRO_DEV_SIGNING_KEY")?)?,
        &env("RECOBRO_DEV_SIGNING_KID")?,
    )?;
    let token = signer.mint(&Claims {
        issuer: env("RECOBRO_TOKEN_ISSUER")?,
        audience: env("RECOBRO_TOKEN_AUDIENCE")?,
        subject,
        tenant_claim: std::env::var("RECOBRO_TENANT_CLAIM").unwrap_or_else(|_| "tenant_id".into()),
        tenant,
        scope,
        lifetime: Duration::from_secs(ttl),
        age: Duration::ZERO,
        bound_to,
    })?;
    println!("{token}");
    Ok(())
}
