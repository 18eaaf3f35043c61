//! SQL for channels, one file per table family; each change is written with its event in one
//! transaction. Here: how channels, statuses and verdicts are named in the tables.

mod decisions;
mod deliveries;
mod ledger;
mod payments;
mod provider_events;
mod responses;
mod templates;

pub use decisions::*;
pub use deliveries::*;
pub use ledger::*;
pub use payments::*;
pub use provider_events::*;
pub use responses::*;
pub use templates::*;

use recobro_common::Channel;
use recobro_proto::v1::{self as pb, DeliveryStatus};

pub(super) fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Suppressed | DeliveryStatus::Deferred | DeliveryStatus::Unspecified => "suppressed",
    }
}

/// The name a channel on the wire has in our tables ("unspecified" for a reply whose channel
/// is not known, which matches no opt-out or window).
pub(super) fn stored_name(channel: pb::Channel) -> &'static str {
    Channel::try_from(channel).map_or("unspecified", Channel::as_str)
}

/// A rule verdict read back from the audit: an unknown name is corrupt data, reported.
pub fn stored_verdict(name: &str) -> Result<pb::ContactVerdict, sqlx::Error> {
    match name {
        "allowed" => Ok(pb::ContactVerdict::Allowed),
        "deferred" => Ok(pb::ContactVerdict::Deferred),
        "suppressed" => Ok(pb::ContactVerdict::Suppressed),
        other => Err(sqlx::Error::Decode(
            format!("unknown contact verdict {other:?}").into(),
        )),
    }
}

/// A status read back from our own table: an unknown name is corrupt data, reported.
pub(super) fn status_from_name(name: &str) -> Result<DeliveryStatus, sqlx::Error> {
    match name {
        "sent" => Ok(DeliveryStatus::Sent),
        "delivered" => Ok(DeliveryStatus::Delivered),
        "read" => Ok(DeliveryStatus::Read),
        "failed" => Ok(DeliveryStatus::Failed),
        "suppressed" => Ok(DeliveryStatus::Suppressed),
        other => Err(sqlx::Error::Decode(
            format!("unknown delivery status {other:?}").into(),
        )),
    }
}

/// A channel read back from our own tables: an unknown name is corrupt data, reported.
pub fn stored_channel(name: &str) -> Result<Channel, sqlx::Error> {
    recobro_common::db::decoded("channel", name.parse::<Channel>())
}
