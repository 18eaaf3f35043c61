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
