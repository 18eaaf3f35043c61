//! The local stack's administration, run by `deploy/local/services.sh` as the `admin` principal:
//!
//! `recobro-stack grant` grants the three services their topics and consumer groups (for
//! `RECOBRO_TOPIC_PREFIX`), as `recobro_testkit::acl` states them.
//! `recobro-stack tenant <tenant id> <connector principal>` creates the tenant's ERP topic and
//! lets that connector write it (and nothing else).

use recobro_common::config::{Env, ProcessEnv, Topics};
use recobro_testkit::{acl, create_topics, grant, kafka};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let topics = Topics::with_prefix(&ProcessEnv.or("RECOBRO_TOPIC_PREFIX", ""));
    let kafka = kafka()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["grant"] => {
            grant(&kafka, &acl::services(&topics)).await?;
            println!("[stack] service ACLs granted");
        }
        ["tenant", tenant, connector] => {
            let topic = topics.erp_invoices_of(tenant);
            create_topics(&kafka, &[(&topic, 6)]).await?;
            grant(&kafka, &acl::connector(&topics, connector, tenant)).await?;
            println!("[stack] {topic} created; {connector} may write it");
        }
        _ => anyhow::bail!(
            "usage: recobro-stack grant | recobro-stack tenant <tenant id> <connector principal>"
        ),
    }
    Ok(())
}
