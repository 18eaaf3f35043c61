//! Clients that are not ours, against the real services: the Python example of docs/clients.md
//! (stubs generated from proto/, mutual TLS, a certificate-bound token, BadRequest details), and
//! ghz, which knows no proto file and finds the method by v1alpha reflection alone. Both are
//! installed by deploy/local/clients.sh, which `make test` sources.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::Stack;
use crate::pki::{claims, pki};

fn tool(variable: &str) -> PathBuf {
    let path = std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is unset: run the tests with `make test`, which installs it (deploy/local/clients.sh)"
        )
    });
    PathBuf::from(path)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_and_ghz_call_recobro_with_tls_and_tokens() {
    let stack =
        Stack::start_with_service_env(None, Vec::new(), vec![("RECOBRO_GRPC_REFLECTION", "true".into())])
            .await;
    let pki = pki();

    // The Python example, with a token bound to the certificate it presents (RFC 8705).
    let mut bound = claims(Some(&stack.tenant), "recobro:read recobro:write");
    bound.bound_to = Some(std::fs::read(&pki.client.0).expect("client certificate"));
    let run = |token: &str| {
        Command::new(tool("RECOBRO_EXAMPLE_PYTHON"))
            .arg(repo().join("examples/python/recobro_example.py"))
            .arg("PY-1")
            .env("RECOBRO_ACCOUNTS", format!("localhost:{}", stack.accounts_port))
            .env("RECOBRO_CA", &pki.ca)
            .env("RECOBRO_CLIENT_CERT", &pki.client.0)
            .env("RECOBRO_CLIENT_KEY", &pki.client.1)
            .env("RECOBRO_TOKEN", token)
            .output()
            .expect("run the Python example")
    };
    let output = run(&stack.token(bound));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let debtor_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("upserted debtor "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the example names the debtor it wrote")
        .to_string();
    assert!(
        stdout.contains(&format!(
            "read debtor {debtor_id}: zone America/Bogota, 1 contact point(s)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: INVALID_ARGUMENT, fields debtor.time_zone"),
        "the BadRequest detail names the field: {stdout}"
    );
    // No personal data in what the example prints.
    assert!(
        !stdout.contains("ap@example.com") && !stdout.contains("Example Supplies"),
        "{stdout}"
    );

    // The same example with a token bound to another certificate is turned away.
    let mut elsewhere = claims(Some(&stack.tenant), "recobro:read recobro:write");
    elsewhere.bound_to = Some(std::fs::read(&pki.other_client.0).expect("other certificate"));
    let refused = run(&stack.token(elsewhere));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // ghz: no proto file, only reflection (v1alpha), over TLS with the token on reflection and
    // on the calls.
    let token = stack.token(claims(Some(&stack.tenant), "recobro:read"));
    let authorization = format!(r#"{{"authorization": "Bearer {token}"}}"#);
    let ghz = |authorization: &str| {
        Command::new(tool("RECOBRO_GHZ"))
            .args(["--cacert"])
            .arg(&pki.ca)
            .args([
                "--cname",
                "localhost",
                "--call",
                "recobro.v1.AccountsService.GetDebtor",
            ])
            .args(["-d", &format!(r#"{{"debtor_id": "{debtor_id}"}}"#)])
            .args(["-m", authorization, "--reflect-metadata", authorization])
            .args(["-n", "40", "-c", "4", "--format", "json"])
            .arg(format!("127.0.0.1:{}", stack.accounts_port))
            .output()
            .expect("run ghz")
    };
    let output = ghz(&authorization);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ghz's JSON report");
    assert_eq!(report["count"], 40, "{report}");
    assert_eq!(
        report["statusCodeDistribution"],
        serde_json::json!({"OK": 40}),
        "every call answered OK: {report}"
    );

    // Without a token, reflection itself is refused, so ghz cannot even find the method.
    let anonymous = ghz("{}");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&anonymous.stdout),
        String::from_utf8_lossy(&anonymous.stderr)
    );
    assert!(
        !anonymous.status.success() || !said.contains(r#""OK":40"#),
        "ghz without a token: {said}"
    );
    assert!(
        said.contains("Unauthenticated") || said.contains("authorization"),
        "{said}"
    );
}
