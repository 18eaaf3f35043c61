//! What TLS and tokens cost a read: `GetDebtor` at a fixed rate (open loop: each call's
//! latency counts from when it was due to be sent, so a slow server cannot hide its queue),
//! against the real accounts service in this process, first over plaintext without a token
//! (`Security::Plaintext`, which no setting selects), then over TLS with a verified ES256
//! token, in one run. A test PKI and signing key are made for the run.
//!
//! cargo bench -p recobro-accounts --bench grpc_auth
//! (BENCH_RATE calls/s, default 3000; BENCH_SECONDS, default 10; the local stack's database
//! and broker, or DATABASE_URL and KAFKA_BROKERS.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use recobro_accounts::{Application, Settings};
use recobro_common::identity::client::{self, Authorized, ClientTls};
use recobro_common::identity::{Caller, IdentitySettings, Scope, Security};
use recobro_proto::v1 as pb;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_testkit::setting;
use recobro_token::{Claims, Signer};
use tokio_util::sync::CancellationToken;

const CONNECTIONS: usize = 4;

struct Pki {
    dir: std::path::PathBuf,
    signer: Signer,
}

fn pki() -> anyhow::Result<Pki> {
    let dir = std::env::temp_dir().join(format!("recobro-bench-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), cert.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;
    let signing = KeyPair::generate()?;
    let point = signing.public_key_raw();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "bench",
        "x": b64(&point[1..33]), "y": b64(&point[33..65])}]});
    std::fs::write(dir.join("jwks.json"), jwks.to_string())?;
    let signer = Signer::from_pem(signing.serialize_pem().as_bytes(), "bench")?;
    Ok(Pki { dir, signer })
}

fn settings(pki: &Pki, id: &str) -> anyhow::Result<Settings> {
    let mut env = identity_env(pki);
    env.extend([
        ("RECOBRO_GRPC_ADDR".into(), "127.0.0.1:0".into()),
        ("RECOBRO_HEALTH_ADDR".into(), "127.0.0.1:0".into()),
        ("RECOBRO_METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("RECOBRO_DB_SCHEMA".into(), format!("bench_{id}")),
        ("RECOBRO_TOPIC_PREFIX".into(), format!("bench{id}.")),
    ]);
    // The local stack's addresses and admin credentials (deploy/local/env.sh); the identity
    // settings stay the bench's own.
    let backend = [
        "KAFKA_",
        "DATABASE_URL",
        "RECOBRO_SECRETS_DIR",
        "RECOBRO_KAFKA_",
        "RECOBRO_DATABASE_",
    ];
    for (name, value) in std::env::vars() {
        if backend.iter().any(|prefix| name.starts_with(prefix)) {
            env.entry(name).or_insert(value);
        }
    }
    Ok(Settings::from_env(&env)?)
}

/// Calls GetDebtor `rate` times a second for `seconds`, spread over a few connections; returns
/// each answered call's latency from its due time, and how many were refused (the server sheds
/// calls past its per-connection limit rather than queue them) or failed.
async fn load(
    clients: Vec<AccountsServiceClient<Authorized>>,
    request: pb::GetDebtorRequest,
    rate: usize,
    seconds: usize,
) -> (Vec<Duration>, usize) {
    let total = rate * seconds;
    let start = Instant::now() + Duration::from_millis(100);
    let mut calls = Vec::with_capacity(total);
    for index in 0..total {
        let due = start + Duration::from_secs_f64(index as f64 / rate as f64);
        let mut client = clients[index % clients.len()].clone();
        let request = request.clone();
        calls.push(tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let ok = client.get_debtor(request).await.is_ok();
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for call in calls {
        let (latency, ok) = call.await.expect("call task");
        if ok {
            latencies.push(latency);
        } else {
            failed += 1;
        }
    }
    latencies.sort();
    (latencies, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Runs one server, creates the tenant and a debtor through it, and measures.
async fn measure(
    label: &str,
    id: &str,
    pki: &Pki,
    security: Security,
    tls: bool,
    rate: usize,
    seconds: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let settings = settings(pki, id)?;
    // The bench's own schema, migrated as the administrator (a service never migrates itself).
    recobro_accounts::migrate_and_connect(&settings.common)
        .await?
        .close()
        .await;
    let app = Application::build_with(settings, security).await?;
    let port = app.grpc_port();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let tenant = format!("bench-{id}");
    let token = pki.signer.mint(&Claims {
        issuer: "https://issuer.bench".into(),
        audience: "recobro".into(),
        subject: "bench".into(),
        tenant_claim: "tenant_id".into(),
        tenant: Some(tenant.clone()),
        scope: "recobro:read recobro:write recobro:admin".into(),
        lifetime: Duration::from_secs(3600),
        age: Duration::ZERO,
        bound_to: None,
    })?;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let channel = if tls {
            let trust = ClientTls::from_files(&pki.dir.join("ca.pem"), None)?;
            client::connect(&format!("https://localhost:{port}"), &trust, Some(&token)).await?
        } else {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
                .connect()
                .await?;
            tonic::service::interceptor::InterceptedService::new(channel, client::Bearer::new(None)?)
        };
        clients.push(AccountsServiceClient::new(channel));
    }
    let mut admin = clients[0].clone();
    admin
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: tenant.clone(),
                name: "Bench".into(),
                role: pb::TenantRole::Creditor as i32,
            }),
        })
        .await?;
    let debtor = admin
        .upsert_debtor(pb::UpsertDebtorRequest {
            tenant_id: tenant.clone(),
            debtor: Some(pb::DebtorInput {
                external_id: "D-1".into(),
                name: "Cliente SAS".into(),
                kind: pb::DebtorKind::Company as i32,
                time_zone: "America/Bogota".into(),
                locale: "es-CO".into(),
                country: "CO".into(),
                contacts: vec![pb::Contact {
                    name: "Tesorería".into(),
                    role: pb::ContactRole::Treasury as i32,
                    points: vec![pb::ContactPoint {
                        channel: pb::Channel::Email as i32,
                        address: "cartera@cliente.example".into(),
                        consent_source: "contract".into(),
                        preferred: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    let request = pb::GetDebtorRequest {
        tenant_id: tenant,
        debtor_id: debtor.debtor.map(|d| d.debtor_id).unwrap_or_default(),
    };
    // Warm up connections and caches, then measure.
    let _ = load(clients.clone(), request.clone(), rate / 10, 1).await;
    let (latencies, failed) = load(clients, request, rate, seconds).await;
    shutdown.cancel();
    running.await??;
    anyhow::ensure!(!latencies.is_empty(), "{label}: every call failed");
    let refused = failed as f64 * 100.0 / (rate * seconds) as f64;
    Ok((
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        refused,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = setting("BENCH_RATE", 3000);
    let seconds = setting("BENCH_SECONDS", 10);
    let pki = pki()?;
    let new_id = || uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let (plain_id, tls_id) = (new_id(), new_id());
    let as_caller = Caller {
        tenant: Some(format!("bench-{plain_id}")),
        subject: "bench".into(),
        scopes: Scope::ALL.into_iter().collect(),
    };
    let plaintext = Security::Plaintext(as_caller);
    let (plain_p50, plain_p99, plain_refused) =
        measure("plaintext", &plain_id, &pki, plaintext, false, rate, seconds).await?;
    let identity = IdentitySettings::from_env(&identity_env(&pki), 50051)?;
    let guarded = Security::guarded(&identity, recobro_accounts::method_scopes()).await?;
    let (tls_p50, tls_p99, tls_refused) =
        measure("TLS and token", &tls_id, &pki, guarded, true, rate, seconds).await?;
    println!("GetDebtor at {rate}/s for {seconds} s, plaintext without token, p50 ms: {plain_p50:.2}");
    println!("GetDebtor at {rate}/s for {seconds} s, plaintext without token, p99 ms: {plain_p99:.2}");
    println!("GetDebtor at {rate}/s for {seconds} s, TLS and token, p50 ms: {tls_p50:.2}");
    println!("GetDebtor at {rate}/s for {seconds} s, TLS and token, p99 ms: {tls_p99:.2}");
    // Percentiles are of the answered calls: a refused call is not a fast one.
    println!(
        "GetDebtor at {rate}/s for {seconds} s, plaintext without token, calls refused or failed, percent: {plain_refused:.1}"
    );
    println!(
        "GetDebtor at {rate}/s for {seconds} s, TLS and token, calls refused or failed, percent: {tls_refused:.1}"
    );
    println!(
        "GetDebtor benchmark peak resident memory, MiB: {:.0}",
        recobro_testkit::peak_resident_mib()?
    );
    println!(
        "TLS and token p99 overhead, percent: {:.1}",
        (tls_p99 / plain_p99 - 1.0) * 100.0
    );
    std::fs::remove_dir_all(&pki.dir)?;
    Ok(())
}

/// The run's TLS files and token issuer.
fn identity_env(pki: &Pki) -> HashMap<String, String> {
    HashMap::from([
        (
            "RECOBRO_TLS_CERT".into(),
            pki.dir.join("server.pem").display().to_string(),
        ),
        (
            "RECOBRO_TLS_KEY".into(),
            pki.dir.join("server.key").display().to_string(),
        ),
        (
            "RECOBRO_JWKS".into(),
            pki.dir.join("jwks.json").display().to_string(),
        ),
        ("RECOBRO_TOKEN_ISSUER".into(), "https://issuer.bench".into()),
        ("RECOBRO_TOKEN_AUDIENCE".into(), "recobro".into()),
    ])
}
