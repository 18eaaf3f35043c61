//! `recobro-import`: imports debtors and invoices from a CSV file through
//! `AccountsService.BulkImport`, reporting every rejected row by its line. The parsing rules live
//! in `recobro_accounts::csv_import`; this is arguments, the file, the call and the report.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use recobro_accounts::csv_import;
use recobro_common::config::{Env, ProcessEnv};
use recobro_common::identity::client::{self, ClientTls};
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;

const HELP: &str = "\
recobro-import: import debtors and invoices from a CSV file into Recobro.

USAGE:
    recobro-import --tenant <id> [--accounts <url>] <file.csv>

OPTIONS:
    --tenant <id>      the tenant the rows belong to (required; the token's tenant)
    --accounts <url>   the accounts gRPC service; default $RECOBRO_ACCOUNTS_URL,
                       else https://localhost:50051
    -h, --help         this text

IDENTITY (from the environment; `source deploy/local/env.sh` sets the local stack's):
    RECOBRO_TOKEN      an access token with the recobro:write scope (required), e.g.
                       $(target/debug/recobro-token --tenant acme --scope recobro:write)
    RECOBRO_CA         the CA that signed the service's certificate (else RECOBRO_DEV_CA)
    RECOBRO_CLIENT_CERT, RECOBRO_CLIENT_KEY
                       a client certificate for mTLS (else RECOBRO_DEV_CLIENT_CERT/KEY)

FILE:
    UTF-8 (\"CSV UTF-8\" in Excel), separated by commas, or by semicolons if the header
    uses them. Line 1 is a header naming these columns, in any order, any case:

    debtor_id        the debtor's id in your books (required in every row)
    debtor_name
    kind             company | consumer
    time_zone        IANA name, e.g. America/Bogota
    locale           e.g. es-CO
    country          ISO 3166 alpha-2, e.g. CO
    region           optional column
    segment          optional column
    contact_name     optional column; defaults to debtor_name
    contact_role     optional column: treasury | accounts_payable | purchasing |
                     decision_maker | other
    email            optional column
    phone            optional column; E.164 (+573001234567), used for SMS
    whatsapp         optional column; E.164
    invoice_id, invoice_number
    amount           major units: 1250000.50, 1250000,50, 1.250.000,50 or 1,250,000.50
                     (quote it if it has a comma in a comma-separated file)
    currency         ISO 4217, e.g. COP
    issue_date, due_date   YYYY-MM-DD

    Unknown columns are an error. A debtors-only file may leave out all six invoice
    columns. One row is one debtor and one invoice; a row with empty invoice cells
    imports the debtor only; several rows may repeat a debtor (it is upserted).
    Amounts accept thousands separators only in groups of 3 and one decimal separator;
    a single separator before exactly 3 digits (1.250) is ambiguous and rejected, as are
    negative amounts and more decimals than the currency has (CLP has none).
    Contact points imported are recorded as consented, with source \"csv-import\".

OUTPUT:
    One line per problem, `line N: column: reason`, then `imported N rows, rejected M`.
    Rows with a problem are not imported; the others are.

EXIT STATUS:
    0 every row imported, 1 some row rejected, 2 bad arguments, unreadable file or
    header, or the service unreachable.
";

struct Args {
    tenant: String,
    accounts: String,
    file: String,
}

/// The first of these variables that is set.
fn first_set(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| ProcessEnv.get(name).filter(|value| !value.trim().is_empty()))
}

enum Command {
    Help,
    Import(Args),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let (mut tenant, mut accounts, mut file) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--tenant" => tenant = Some(args.next().ok_or("--tenant needs a value")?),
            "--accounts" => accounts = Some(args.next().ok_or("--accounts needs a value")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(path.to_string()),
            extra => return Err(format!("one file at a time; {extra:?} is one too many")),
        }
    }
    Ok(Command::Import(Args {
        tenant: tenant
            .filter(|t| !t.trim().is_empty())
            .ok_or("--tenant is required")?,
        accounts: accounts
            .unwrap_or_else(|| ProcessEnv.or("RECOBRO_ACCOUNTS_URL", "https://localhost:50051")),
        file: file.ok_or("the CSV file to import is required")?,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Import(args)) => args,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!(
                "recobro-import: {problem}\nusage: recobro-import --tenant <id> [--accounts <url>] <file.csv>"
            );
            return ExitCode::from(2);
        }
    };
    match import(&args).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("recobro-import: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Imports the file and prints the report; returns how many rows were rejected.
async fn import(args: &Args) -> anyhow::Result<u64> {
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file))?;
    let parsed = csv_import::parse(&args.tenant, file).with_context(|| args.file.clone())?;
    let mut rejected = parsed.rejected_rows() as u64;
    let mut problems: Vec<(u64, String, String)> = parsed
        .errors
        .into_iter()
        .map(|e| (e.line, e.column, e.reason))
        .collect();
    let mut accepted = 0;
    if !parsed.records.is_empty() {
        match send(&args.accounts, parsed.records.clone()).await {
            Ok(summary) => {
                accepted = summary.accepted;
                rejected += u64::try_from(summary.rejected).unwrap_or_default();
                problems.extend(summary.errors.into_iter().map(|e| {
                    // Records are in line order; the row tells which column a contact point is.
                    let record = parsed
                        .records
                        .binary_search_by_key(&e.line, |r| r.line)
                        .ok()
                        .and_then(|i| parsed.records.get(i));
                    let column = csv_import::column_of(&e.field, record);
                    (u64::try_from(e.line).unwrap_or_default(), column, e.reason)
                }));
            }
            Err(err) => {
                // What was found locally still helps whoever fixes the file.
                report(&problems);
                return Err(err);
            }
        }
    }
    // In file order, local and server problems together, as someone going down the sheet reads them.
    problems.sort_by_key(|p| p.0);
    report(&problems);
    println!("imported {accepted} rows, rejected {rejected}");
    Ok(rejected)
}

async fn send(
    url: &str,
    records: Vec<recobro_proto::v1::ImportRecord>,
) -> anyhow::Result<recobro_proto::v1::ImportSummary> {
    let token = first_set(&["RECOBRO_TOKEN"]).context("RECOBRO_TOKEN is not set (see --help)")?;
    let ca = first_set(&["RECOBRO_CA", "RECOBRO_DEV_CA"]).context("RECOBRO_CA is not set (see --help)")?;
    let cert = first_set(&["RECOBRO_CLIENT_CERT", "RECOBRO_DEV_CLIENT_CERT"]);
    let key = first_set(&["RECOBRO_CLIENT_KEY", "RECOBRO_DEV_CLIENT_KEY"]);
    let identity = cert.as_deref().map(Path::new).zip(key.as_deref().map(Path::new));
    let tls = ClientTls::from_files(Path::new(&ca), identity)?;
    let channel = client::connect(url, &tls, Some(&token))
        .await
        .with_context(|| format!("cannot reach the accounts service at {url}"))?;
    match AccountsServiceClient::new(channel)
        .bulk_import(tokio_stream::iter(records))
        .await
    {
        Ok(summary) => Ok(summary.into_inner()),
        Err(status) if status.code() == tonic::Code::Unimplemented => Err(anyhow::anyhow!(
            "the accounts service at {url} has no BulkImport (an older version?); nothing was imported"
        )),
        Err(status) => Err(anyhow::Error::new(status)
            .context("the import stopped part-way; rows sent before the failure may have been imported")),
    }
}

fn report(problems: &[(u64, String, String)]) {
    for (line, column, reason) in problems {
        if column.is_empty() {
            println!("line {line}: {reason}");
        } else {
            println!("line {line}: {column}: {reason}");
        }
    }
}
