//! Twilio resource identifiers: two uppercase letters naming the resource type, then 32 hex digits.

use std::fmt;

/// A syntactically valid Twilio SID (`WT` + 32 hex digits, …). The prefix says what it names.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sid(String);

/// Why a string is not a SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    #[error("must be two letters followed by 32 hex digits")]
    Malformed,
    #[error("must start with {expected} ({what})")]
    WrongPrefix {
        expected: &'static str,
        what: &'static str,
    },
}

impl Sid {
    /// Any well-formed SID.
    pub fn parse(s: &str) -> Result<Sid, SidError> {
        let bytes = s.as_bytes();
        let well_formed = bytes.len() == 34
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..].iter().all(u8::is_ascii_hexdigit);
        if well_formed {
            Ok(Sid(s.to_owned()))
        } else {
            Err(SidError::Malformed)
        }
    }

    /// A SID of one kind, e.g. `Sid::parse_kind(s, SidKind::Workspace)`.
    pub fn parse_kind(s: &str, kind: SidKind) -> Result<Sid, SidError> {
        let sid = Sid::parse(s)?;
        if sid.kind() == Some(kind) {
            Ok(sid)
        } else {
            Err(SidError::WrongPrefix {
                expected: kind.prefix(),
                what: kind.name(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn prefix(&self) -> &str {
        &self.0[..2]
    }

    pub fn kind(&self) -> Option<SidKind> {
        SidKind::ALL
            .iter()
            .copied()
            .find(|k| k.prefix() == self.prefix())
    }
}

/// A SID reads as the text it is, wherever text is wanted.
impl std::ops::Deref for Sid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sid {
    type Error = SidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Sid::parse(&s)
    }
}

impl From<Sid> for String {
    fn from(s: Sid) -> String {
        s.0
    }
}

/// The resource kinds baton meets, by their Twilio prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidKind {
    Account,
    Workspace,
    Task,
    Reservation,
    Worker,
    TaskQueue,
    Workflow,
    Activity,
    TaskChannel,
    Event,
    Conversation,
    ConversationParticipant,
    ConversationMessage,
    Interaction,
    InteractionChannel,
    InteractionParticipant,
}

impl SidKind {
    pub const ALL: [SidKind; 16] = [
        SidKind::Account,
        SidKind::Workspace,
        SidKind::Task,
        SidKind::Reservation,
        SidKind::Worker,
        SidKind::TaskQueue,
        SidKind::Workflow,
        SidKind::Activity,
        SidKind::TaskChannel,
        SidKind::Event,
        SidKind::Conversation,
        SidKind::ConversationParticipant,
        SidKind::ConversationMessage,
        SidKind::Interaction,
        SidKind::InteractionChannel,
        SidKind::InteractionParticipant,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            SidKind::Account => "AC",
            SidKind::Workspace => "WS",
            SidKind::Task => "WT",
            SidKind::Reservation => "WR",
            SidKind::Worker => "WK",
            SidKind::TaskQueue => "WQ",
            SidKind::Workflow => "WW",
            SidKind::Activity => "WA",
            SidKind::TaskChannel => "TC",
            SidKind::Event => "EV",
            SidKind::Conversation => "CH",
            SidKind::ConversationParticipant => "MB",
            SidKind::ConversationMessage => "IM",
            SidKind::Interaction => "KD",
            SidKind::InteractionChannel => "UO",
            SidKind::InteractionParticipant => "UT",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SidKind::Account => "an account SID",
            SidKind::Workspace => "a TaskRouter workspace SID",
            SidKind::Task => "a task SID",
            SidKind::Reservation => "a reservation SID",
            SidKind::Worker => "a worker SID",
            SidKind::TaskQueue => "a task queue SID",
            SidKind::Workflow => "a workflow SID",
            SidKind::Activity => "an activity SID",
            SidKind::TaskChannel => "a task channel SID",
            SidKind::Event => "a TaskRouter event SID",
            SidKind::Conversation => "a conversation SID",
            SidKind::ConversationParticipant => "a conversation participant SID",
            SidKind::ConversationMessage => "a conversation message SID",
            SidKind::Interaction => "an interaction SID",
            SidKind::InteractionChannel => "an interaction channel SID",
            SidKind::InteractionParticipant => "an interaction participant SID",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_sids_and_names_their_kind() {
        let sid = Sid::parse("WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        assert_eq!(sid.kind(), Some(SidKind::Task));
        assert_eq!(sid.prefix(), "WT");
    }

    #[test]
    fn rejects_wrong_length_case_and_digits() {
        for bad in [
            "",
            "WT",
            "WTaaaa",
            "wtaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "WTgaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ÉTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(Sid::parse(bad), Err(SidError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn parse_kind_checks_the_prefix() {
        let err =
            Sid::parse_kind("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", SidKind::Workspace).unwrap_err();
        assert_eq!(
            err.to_string(),
            "must start with WS (a TaskRouter workspace SID)"
        );
        assert!(Sid::parse_kind("WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", SidKind::Workspace).is_ok());
    }
}
