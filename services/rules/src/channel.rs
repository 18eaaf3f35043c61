//! The channels Recobro contacts debtors through: one enum, one name each, and unknown names
//! are an error (a typo in a pack or a row must never switch a rule off or pick a channel).

use std::fmt;
use std::str::FromStr;

use recobro_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (email, sms or whatsapp)")]
pub struct UnknownChannel(pub String);

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

    /// The name a channel has in packs, tables, templates and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }

    /// SMS and WhatsApp go to a phone number; email to an address.
    pub fn uses_phone(self) -> bool {
        !matches!(self, Channel::Email)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(name: &str) -> Result<Channel, UnknownChannel> {
        match name {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            "whatsapp" => Ok(Channel::Whatsapp),
            other => Err(UnknownChannel(other.to_string())),
        }
    }
}

impl TryFrom<pb::Channel> for Channel {
    type Error = UnknownChannel;

    fn try_from(channel: pb::Channel) -> Result<Channel, UnknownChannel> {
        match channel {
            pb::Channel::Email => Ok(Channel::Email),
            pb::Channel::Sms => Ok(Channel::Sms),
            pb::Channel::Whatsapp => Ok(Channel::Whatsapp),
            pb::Channel::Unspecified => Err(UnknownChannel("CHANNEL_UNSPECIFIED".into())),
        }
    }
}

impl From<Channel> for pb::Channel {
    fn from(channel: Channel) -> pb::Channel {
        match channel {
            Channel::Email => pb::Channel::Email,
            Channel::Sms => pb::Channel::Sms,
            Channel::Whatsapp => pb::Channel::Whatsapp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_its_name_and_the_wire() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
            assert_eq!(Channel::try_from(pb::Channel::from(channel)), Ok(channel));
        }
    }

    #[test]
    fn unknown_names_are_errors_not_guesses() {
        assert!("Email".parse::<Channel>().is_err());
        assert!("smss".parse::<Channel>().is_err());
        assert!("".parse::<Channel>().is_err());
        assert!(Channel::try_from(pb::Channel::Unspecified).is_err());
    }
}
