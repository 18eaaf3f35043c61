use super::*;

const HEADER: &str = "debtor_id,debtor_name,kind,time_zone,locale,country,email,phone,\
                          invoice_id,invoice_number,amount,currency,issue_date,due_date";

fn row(debtor: &str, invoice: &str, amount: &str) -> String {
    format!(
        "{debtor},Ferretería {debtor},company,America/Bogota,es-CO,CO,pagos@{debtor}.co,+573001234567,\
             {invoice},FE-{invoice},\"{amount}\",COP,2025-03-01,2025-03-31"
    )
}

fn parse_lines(lines: &[&str]) -> Result<Parsed, FileError> {
    parse("t1", lines.join("\n").as_bytes())
}

#[test]
fn amounts_as_people_type_them() {
    for text in [
        "1250000.50",
        "1250000,50",
        "1.250.000,50",
        "1,250,000.50",
        " 1250000.5 ",
    ] {
        assert_eq!(amount_to_minor(text, "COP"), Ok(125_000_050), "{text}");
    }
    assert_eq!(amount_to_minor("1250000", "COP"), Ok(1_250_000_00));
    assert_eq!(amount_to_minor("1.250.000", "COP"), Ok(1_250_000_00));
    assert_eq!(amount_to_minor("1,250,000", "USD"), Ok(1_250_000_00));
    assert_eq!(amount_to_minor("1,5", "EUR"), Ok(1_50));
    assert_eq!(amount_to_minor("0", "EUR"), Ok(0));
    assert_eq!(amount_to_minor("1250.50", "EUR"), Ok(1_250_50));
    assert_eq!(amount_to_minor("12.345,67", "COP"), Ok(12_345_67));
}

#[test]
fn the_currency_sets_the_exponent() {
    assert_eq!(amount_to_minor("2.450.000", "CLP"), Ok(2_450_000));
    assert_eq!(amount_to_minor("2450000", "CLP"), Ok(2_450_000));
    assert_eq!(amount_to_minor("1,250.125", "KWD"), Ok(1_250_125));
    assert_eq!(amount_to_minor("12,5", "KWD"), Ok(12_500));
    // A whole part that cannot lead a thousands group makes 3 digits decimals.
    assert_eq!(amount_to_minor("0,250", "KWD"), Ok(250));
    assert_eq!(amount_to_minor("1250.500", "KWD"), Ok(1_250_500));
    let clp = amount_to_minor("1250,50", "CLP").unwrap_err();
    assert!(clp.contains("CLP has no minor units"), "{clp}");
    let clp = amount_to_minor("2450000.00", "CLP").unwrap_err();
    assert!(clp.contains("CLP has no minor units"), "{clp}");
    let cop = amount_to_minor("12.345,678", "COP").unwrap_err();
    assert!(cop.contains("more than the 2 decimals COP allows"), "{cop}");
}

#[test]
fn malformed_or_ambiguous_amounts_are_rejected() {
    let cases = [
        ("1.25.000", "groups of 3"),
        ("1,250,00", "groups of 3"),
        ("01.250.000", "groups of 3"),
        ("1.250.000.50", "groups of 3"),
        ("1.250", "ambiguous"),
        ("45,000", "ambiguous"),
        ("1.250,000.50", "appears more than once"),
        ("1.250.000,", "no digits after"),
        ("12.", "no digits after"),
        (",50", "digit before"),
        ("-1250", "negative"),
        ("$1250", "neither a digit"),
        ("1 250 000", "neither a digit"),
        ("1e6", "neither a digit"),
        ("", "empty"),
        ("99999999999999999999", "too large"),
    ];
    for (text, reason) in cases {
        let err = amount_to_minor(text, "COP").expect_err(text);
        assert!(err.contains(reason), "{text}: {err}");
    }
    assert!(amount_to_minor("100", "XYZ").is_err());
    // The ambiguity does not depend on the currency: 1.250 may be one dinar 250 or 1250.
    assert!(amount_to_minor("1.250", "KWD").unwrap_err().contains("ambiguous"));
    assert!(
        amount_to_minor("1.250", "CLP")
            .unwrap_err()
            .contains("write 1250")
    );
}

#[test]
fn a_row_becomes_a_debtor_with_its_contact_and_an_invoice() {
    let parsed = parse_lines(&[HEADER, &row("D1", "F1", "1.250.000,50")]).unwrap();
    assert_eq!(parsed.errors, vec![]);
    let record = &parsed.records[0];
    assert_eq!((record.tenant_id.as_str(), record.line), ("t1", 2));
    let debtor = record.debtor.as_ref().unwrap();
    assert_eq!(debtor.external_id, "D1");
    assert_eq!(debtor.kind, DebtorKind::Company as i32);
    let contact = &debtor.contacts[0];
    assert_eq!(contact.name, "Ferretería D1");
    assert_eq!(contact.role, ContactRole::Unspecified as i32);
    let channels: Vec<i32> = contact.points.iter().map(|p| p.channel).collect();
    assert_eq!(channels, vec![Channel::Email as i32, Channel::Sms as i32]);
    assert!(contact.points.iter().all(|p| p.consent_source == CONSENT_SOURCE));
    let invoice = record.invoice.as_ref().unwrap();
    assert_eq!(invoice.debtor_external_id, "D1");
    assert_eq!(
        (invoice.external_id.as_str(), invoice.number.as_str()),
        ("F1", "FE-F1")
    );
    assert_eq!(
        invoice.amount,
        Some(Money {
            amount_minor: 125_000_050,
            currency: "COP".to_string()
        })
    );
    assert_eq!(
        invoice.due_date,
        Some(Date {
            year: 2025,
            month: 3,
            day: 31
        })
    );
}

#[test]
fn a_bad_row_is_reported_by_its_line_and_the_others_still_parse() {
    let parsed = parse_lines(&[
        HEADER,
        &row("D1", "F1", "100"),
        &row("D2", "F2", "1.25.000"),
        &row("D3", "F3", "300"),
    ])
    .unwrap();
    let lines: Vec<i64> = parsed.records.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 4]);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(
        (parsed.errors[0].line, parsed.errors[0].column.as_str()),
        (3, "amount")
    );
    assert_eq!(parsed.rejected_rows(), 1);
}

#[test]
fn line_numbers_are_lines_of_the_file_whatever_the_line_endings() {
    // A quoted name spanning two lines, blank lines, a row with too few fields: each row
    // keeps the line a person sees in an editor, with LF, CRLF (Excel) or CR endings.
    let header = "debtor_id,debtor_name,kind,time_zone,locale,country,email";
    let lines = [
        header,
        "D1,\"Ferretería",
        "El Tornillo\",company,America/Bogota,es-CO,CO,a@b.co",
        "",
        "D2,Otra,empresa,America/Bogota,es-CO,CO,a@b.co",
        "",
        "",
        "D3,short",
        "D4,Ana,consumer,America/Lima,es-PE,PE,a@b.pe",
    ];
    for ending in ["\n", "\r\n", "\r"] {
        let parsed = parse("t1", lines.join(ending).as_bytes()).unwrap();
        let accepted: Vec<i64> = parsed.records.iter().map(|r| r.line).collect();
        assert_eq!(accepted, vec![2, 9], "{ending:?}");
        let rejected: Vec<(u64, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(rejected, vec![(5, "kind"), (8, "")], "{ending:?}");
        assert!(parsed.errors[0].reason.contains("company or consumer"));
        assert!(
            parsed.errors[1]
                .reason
                .contains("has 2 fields but the header has 7")
        );
    }
    let parsed = parse_lines(&lines).unwrap();
    assert_eq!(
        parsed.records[0].debtor.as_ref().unwrap().name,
        "Ferretería\nEl Tornillo"
    );
}

#[test]
fn every_bad_cell_of_a_row_is_reported() {
    let header = "debtor_id,debtor_name,kind,time_zone,locale,country,contact_role,\
                      invoice_id,invoice_number,amount,currency,issue_date,due_date";
    let parsed = parse_lines(&[
        header,
        "D1,A,company,America/Bogota,es-CO,CO,boss,F1,1,100,COP,31/03/2025,2025-02-30",
        "D2,B,consumer,America/Bogota,es-CO,CO,,F2,2,100,XYZ,2025-03-01,",
    ])
    .unwrap();
    assert!(parsed.records.is_empty());
    let columns: Vec<(u64, &str)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(
        columns,
        vec![
            (2, "contact_role"),
            (2, "issue_date"),
            (2, "due_date"),
            (3, "currency"),
            (3, "due_date")
        ]
    );
    assert_eq!(parsed.rejected_rows(), 2);
}

#[test]
fn a_repeated_debtor_travels_with_each_of_its_invoices() {
    let parsed = parse_lines(&[HEADER, &row("D1", "F1", "100"), &row("D1", "F2", "200")]).unwrap();
    assert_eq!(parsed.records.len(), 2);
    for record in &parsed.records {
        assert_eq!(record.debtor.as_ref().unwrap().external_id, "D1");
        assert_eq!(record.invoice.as_ref().unwrap().debtor_external_id, "D1");
    }
}

#[test]
fn empty_invoice_cells_import_the_debtor_only() {
    let debtor_only = "D1,Ana,consumer,America/Lima,es-PE,PE,ana@x.pe,,,,,,,";
    let parsed = parse_lines(&[HEADER, debtor_only, ",,,,,,,,,,,,,"]).unwrap();
    assert_eq!(parsed.errors, vec![]);
    assert_eq!(parsed.records.len(), 1, "the all-empty row is skipped");
    assert!(parsed.records[0].invoice.is_none());

    // A file without invoice columns is a debtors-only file.
    let parsed = parse_lines(&[
        "debtor_id,debtor_name,kind,time_zone,locale,country,whatsapp,contact_name,contact_role",
        "D1,Ana,consumer,America/Lima,es-PE,PE,+51987654321,Luis,Treasury",
    ])
    .unwrap();
    let debtor = parsed.records[0].debtor.as_ref().unwrap();
    assert!(parsed.records[0].invoice.is_none());
    assert_eq!(debtor.contacts[0].name, "Luis");
    assert_eq!(debtor.contacts[0].role, ContactRole::Treasury as i32);
    assert_eq!(debtor.contacts[0].points[0].channel, Channel::Whatsapp as i32);
}

#[test]
fn a_debtor_without_any_address_is_left_for_the_server_to_explain() {
    let parsed = parse_lines(&[HEADER, "D1,Ana,consumer,America/Lima,es-PE,PE,,,,,,,,"]).unwrap();
    assert!(parsed.records[0].debtor.as_ref().unwrap().contacts.is_empty());
}

#[test]
fn header_columns_match_by_name_in_any_order_and_case() {
    let parsed = parse_lines(&[
        " Country ;DEBTOR_ID;debtor_name;kind;time_zone;locale;Email",
        "CO;D1;Ana;company;America/Bogota;es-CO;a@b.co",
    ])
    .unwrap();
    let debtor = parsed.records[0].debtor.as_ref().unwrap();
    assert_eq!(
        (debtor.external_id.as_str(), debtor.country.as_str()),
        ("D1", "CO")
    );
}

#[test]
fn semicolon_files_take_decimal_commas_unquoted() {
    let header = HEADER.replace(',', ";");
    let line = "D1;Ana;company;America/Bogota;es-CO;CO;a@b.co;;F1;1;1.250.000,50;cop;2025-03-01;2025-03-31";
    let parsed = parse("t1", format!("\u{feff}{header}\n{line}\n").as_bytes()).unwrap();
    assert_eq!(parsed.errors, vec![]);
    let amount = parsed.records[0]
        .invoice
        .as_ref()
        .unwrap()
        .amount
        .as_ref()
        .unwrap();
    assert_eq!(
        (amount.amount_minor, amount.currency.as_str()),
        (125_000_050, "COP")
    );
}

#[test]
fn an_unquoted_decimal_comma_is_a_row_error_with_a_hint() {
    let unquoted = row("D2", "F2", "1").replace("\"1\"", "1250,50");
    let parsed = parse_lines(&[HEADER, &row("D1", "F1", "1"), &unquoted]).unwrap();
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.errors[0].line, 3);
    assert!(
        parsed.errors[0].reason.contains("must be quoted"),
        "{}",
        parsed.errors[0].reason
    );
}

#[test]
fn server_fields_are_reported_as_csv_columns() {
    let parsed = parse_lines(&[HEADER, &row("D1", "F1", "100")]).unwrap();
    let record = parsed.records.first();
    let column = |field| column_of(field, record);
    assert_eq!(column("debtor.time_zone"), "time_zone");
    assert_eq!(column("invoice.debtor_external_id"), "debtor_id");
    assert_eq!(column("invoice.amount.currency"), "currency");
    assert_eq!(column("debtor.contacts[0].name"), "contact_name");
    assert_eq!(column("debtor.contacts[0].points[0].address"), "email");
    assert_eq!(column("debtor.contacts[0].points[1].address"), "phone");
    assert_eq!(
        column("debtor.contacts[0].points[7].address"),
        "debtor.contacts[0].points[7].address"
    );
    assert_eq!(
        column_of("debtor.contacts[0].points[0].address", None),
        "debtor.contacts[0].points[0].address"
    );
    assert_eq!(column(""), "");
}

#[test]
fn header_errors_name_the_columns() {
    let err =
        parse_lines(&["debtor_id,debtor_nme,kind,time_zone,locale,country,amount,,email,Email"]).unwrap_err();
    let FileError::Columns {
        unknown,
        missing,
        duplicate,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(unknown, &["debtor_nme", "(unnamed column 8)"]);
    assert_eq!(
        missing,
        &[
            "debtor_name",
            "invoice_id",
            "invoice_number",
            "currency",
            "issue_date",
            "due_date"
        ]
    );
    assert_eq!(duplicate, &["email"]);
    assert!(
        err.to_string()
            .starts_with("line 1: unknown column(s) debtor_nme"),
        "{err}"
    );
}

#[test]
fn unusable_files_are_refused_whole() {
    assert_eq!(parse_lines(&[""]).unwrap_err(), FileError::Empty);
    let latin1 = b"debtor_id,debtor_name\nD1,Ferreter\xeda\n";
    assert_eq!(
        parse("t1", &latin1[..]).unwrap_err(),
        FileError::NotUtf8 { line: 2 }
    );
}
