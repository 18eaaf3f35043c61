//! Limits at the edge: one client cannot hold a service. A call that outlives the server's
//! deadline is cancelled, and a connection already running its share of calls is told
//! RESOURCE_EXHAUSTED for the next one instead of queueing it.

use std::time::Duration;

use recobro_proto::v1::{self as pb, accounts_service_client::AccountsServiceClient};

use crate::helpers::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outliving_the_deadline_is_cancelled_and_a_busy_connection_says_so() {
    let mut stack = Stack::start().await;
    let accounts = stack.service("accounts");
    let _ = accounts.child.kill();
    let _ = accounts.child.wait();
    stack
        .restart(
            "accounts",
            vec![
                ("RECOBRO_GRPC_DEADLINE_SECONDS", "2".to_string()),
                ("RECOBRO_GRPC_CALLS_PER_CONNECTION", "1".to_string()),
            ],
        )
        .await;
    let mut client = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);

    // An import whose stream the client never ends holds the connection's one slot.
    let (records, stream) = tokio::sync::mpsc::channel::<pb::ImportRecord>(1);
    let held = tokio::spawn({
        let mut client = client.clone();
        async move {
            client
                .bulk_import(tokio_stream::wrappers::ReceiverStream::new(stream))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let debtor = || pb::GetDebtorRequest {
        tenant_id: stack.tenant.clone(),
        debtor_id: uuid::Uuid::new_v4().to_string(),
    };
    let busy = client.get_debtor(debtor()).await.expect_err("one call at a time");
    assert_eq!(busy.code(), tonic::Code::ResourceExhausted, "{busy:?}");

    let cut = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("cut within the deadline")
        .expect("task")
        .expect_err("the import outlived the deadline");
    assert_eq!(cut.code(), tonic::Code::Cancelled, "{cut:?}");
    drop(records);

    // The slot is free again: the next call is answered on its merits.
    let answered = client.get_debtor(debtor()).await.expect_err("no such debtor");
    assert_eq!(answered.code(), tonic::Code::NotFound, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debtors_invoices_come_in_pages_that_follow_each_other_by_due_date() {
    let stack = Stack::start().await;
    let stored = stack
        .ledger_debtor(crate::ledger::us_company("D-PAGES", "en-US"))
        .await;
    let debtor_id = stored.debtor.expect("debtor").debtor_id;
    for (n, due_in) in [(1, 30), (2, 10), (3, 20), (4, 20), (5, 40)] {
        let id = format!("INV-P{n}");
        crate::ledger::ledger_invoice(&stack, "D-PAGES", &id, &id, due_in).await;
    }
    let mut accounts = stack.accounts().await;
    let request = |page_token: String| pb::ListInvoicesRequest {
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.clone(),
        page_size: 2,
        page_token,
    };
    let mut numbers = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = accounts
            .list_invoices(request(token))
            .await
            .expect("a page")
            .into_inner();
        assert!(page.invoices.len() <= 2, "{page:?}");
        pages += 1;
        numbers.extend(page.invoices.into_iter().map(|invoice| invoice.number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        numbers,
        ["INV-P2", "INV-P3", "INV-P4", "INV-P1", "INV-P5"],
        "by due date, each once"
    );

    let first = accounts
        .list_invoices(request(String::new()))
        .await
        .expect("first page")
        .into_inner();
    let foreign = accounts
        .list_invoices(pb::ListInvoicesRequest {
            debtor_id: uuid::Uuid::new_v4().to_string(),
            ..request(first.next_page_token)
        })
        .await
        .expect_err("another debtor's token");
    assert_eq!(foreign.code(), tonic::Code::InvalidArgument);
    assert!(foreign.message().contains("page_token"), "{}", foreign.message());
    let negative = accounts
        .list_invoices(pb::ListInvoicesRequest {
            page_size: -1,
            ..request(String::new())
        })
        .await
        .expect_err("a negative page size");
    assert!(negative.message().contains("page_size"), "{}", negative.message());
}
