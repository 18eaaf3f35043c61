//! The broker's administration a test or the local stack needs, as the `admin` principal:
//! topics, and ACLs. rust-rdkafka has no ACL API, so ACLs go through librdkafka's C API
//! (`rd_kafka_CreateAcls`), the only unsafe code in the workspace, and dev-only.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka_sys::bindings as sys;
use recobro_common::kafka::KafkaSettings;

use crate::acl::{Acl, Operation, Pattern, Resource};

fn admin(kafka: &KafkaSettings) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(kafka.client_config().create()?)
}

/// Creates each (topic, partitions) with one replica; one that exists already is fine.
pub async fn create_topics(kafka: &KafkaSettings, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin(kafka)?.create_topics(&new, &AdminOptions::new()).await? {
        match result {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, err)) => anyhow::bail!("create {topic}: {err}"),
        }
    }
    Ok(())
}

/// Deletes a run's topics when it is done.
pub async fn delete_topics(kafka: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    admin(kafka)?.delete_topics(topics, &AdminOptions::new()).await?;
    Ok(())
}

/// Adds `acls` (allow rules, any host). Adding one that exists is a no-op for the broker.
pub async fn grant(kafka: &KafkaSettings, acls: &[Acl]) -> anyhow::Result<()> {
    if acls.is_empty() {
        return Ok(());
    }
    let client = admin(kafka)?;
    let acls = acls.to_vec();
    tokio::task::spawn_blocking(move || create_acls(&client, &acls)).await?
}

fn create_acls(client: &AdminClient<DefaultClientContext>, acls: &[Acl]) -> anyhow::Result<()> {
    let rk = client.inner().native_ptr();
    let mut bindings = Vec::with_capacity(acls.len());
    let mut errstr = [0 as std::ffi::c_char; 512];
    let any_host = CString::new("*")?;
    for acl in acls {
        let name = CString::new(acl.name.as_str())?;
        let principal = CString::new(acl.principal.as_str())?;
        // SAFETY: every pointer is a live NUL-terminated string or a buffer of the given size;
        // librdkafka copies the strings into the binding it returns.
        let binding = unsafe {
            sys::rd_kafka_AclBinding_new(
                match acl.resource {
                    Resource::Topic => sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                    Resource::Group => sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
                },
                name.as_ptr(),
                match acl.pattern {
                    Pattern::Literal => {
                        sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
                    }
                    Pattern::Prefixed => {
                        sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                    }
                },
                principal.as_ptr(),
                any_host.as_ptr(),
                match acl.operation {
                    Operation::Read => sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_READ,
                    Operation::Write => sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_WRITE,
                    Operation::Describe => sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_DESCRIBE,
                },
                sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if binding.is_null() {
            // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
            let reason = unsafe { CStr::from_ptr(errstr.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: the bindings made so far are ours to free.
            unsafe { sys::rd_kafka_AclBinding_destroy_array(bindings.as_mut_ptr(), bindings.len()) };
            anyhow::bail!("ACL {acl:?}: {reason}");
        }
        bindings.push(binding);
    }
    // SAFETY: rk is the admin client's live handle; the queue, options and event are created
    // and destroyed here; the bindings are freed after the call, which copies them.
    unsafe {
        let queue = sys::rd_kafka_queue_new(rk);
        let options =
            sys::rd_kafka_AdminOptions_new(rk, sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS);
        sys::rd_kafka_CreateAcls(rk, bindings.as_mut_ptr(), bindings.len(), options, queue);
        let event = sys::rd_kafka_queue_poll(queue, Duration::from_secs(30).as_millis() as i32);
        let outcome = acl_outcome(event);
        if !event.is_null() {
            sys::rd_kafka_event_destroy(event);
        }
        sys::rd_kafka_AdminOptions_destroy(options);
        sys::rd_kafka_queue_destroy(queue);
        sys::rd_kafka_AclBinding_destroy_array(bindings.as_mut_ptr(), bindings.len());
        outcome
    }
}

/// The result carried by a CreateAcls event: the first error, if any.
///
/// # Safety
/// `event` is null or a live event returned by `rd_kafka_queue_poll`.
unsafe fn acl_outcome(event: *mut sys::rd_kafka_event_t) -> anyhow::Result<()> {
    if event.is_null() {
        anyhow::bail!("the broker did not answer CreateAcls within 30 s");
    }
    // SAFETY: event is live (checked above); the strings it returns live as long as it does.
    unsafe {
        if sys::rd_kafka_event_error(event) != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let reason = CStr::from_ptr(sys::rd_kafka_event_error_string(event)).to_string_lossy();
            anyhow::bail!("CreateAcls: {reason}");
        }
        let result = sys::rd_kafka_event_CreateAcls_result(event);
        if result.is_null() {
            anyhow::bail!("CreateAcls: an event of another kind came back");
        }
        let mut count = 0usize;
        let results = sys::rd_kafka_CreateAcls_result_acls(result, &mut count);
        for index in 0..count {
            let error = sys::rd_kafka_acl_result_error(*results.add(index));
            if !error.is_null() {
                let reason = CStr::from_ptr(sys::rd_kafka_error_string(error)).to_string_lossy();
                anyhow::bail!("CreateAcls: {reason}");
            }
        }
    }
    Ok(())
}
