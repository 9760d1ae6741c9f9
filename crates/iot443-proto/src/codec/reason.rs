//! What a server answered, whatever MQTT version it speaks: [`ConnectReason`] for a CONNECT,
//! [`SubscribeReason`] for each filter of a SUBSCRIBE. The two share their machinery (the
//! `reason_type!` macro) and differ in their constants and code tables.

use super::ProtocolVersion;
use super::QoS;
use super::connack::ConnectReturnCode;
use super::suback::SubAckReturnCode;
use core::fmt;
use core::hash::{Hash, Hasher};

/// Where a reason came from: the version of the packet that carried it and its value there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    version: ProtocolVersion,
    wire: u8,
}

/// What every reason type shares: construction from the wire, accessors, descriptions,
/// `Display`, and equality by meaning. A type provides `from_v311` (a 3.1.1 code in MQTT 5's
/// numbering) and `mqtt5_description`; `$v311` is the 3.1.1 code type it converts from.
macro_rules! reason_type {
    ($name:ident, $v311:ident) => {
        impl $name {
            /// The reason with this code in MQTT 5's numbering, not tied to a received packet
            /// ([`version`](Self::version) is `None`). The named constants are built so.
            pub const fn new(code: u8) -> Self {
                Self { code, origin: None }
            }

            /// The reason for the code `wire` that a packet of `version` carried.
            pub const fn from_wire(version: ProtocolVersion, wire: u8) -> Self {
                let code = match version {
                    ProtocolVersion::V311 => Self::from_v311(wire),
                };
                Self { code, origin: Some(Origin { version, wire }) }
            }

            /// The code in MQTT 5's numbering: below 0x80 is success, 0x80 and above a refusal.
            pub const fn get(self) -> u8 {
                self.code
            }

            /// The code as the packet carried it, in its version's numbering (the same as
            /// [`get`](Self::get) for a reason not built from a packet).
            pub const fn wire(self) -> u8 {
                match self.origin {
                    Some(origin) => origin.wire,
                    None => self.code,
                }
            }

            /// The MQTT version of the packet this reason came from; `None` for a reason built
            /// from MQTT 5's numbering with [`new`](Self::new) or a named constant.
            pub const fn version(self) -> Option<ProtocolVersion> {
                match self.origin {
                    Some(origin) => Some(origin.version),
                    None => None,
                }
            }

            /// Whether the server granted the request (a code below 0x80).
            pub const fn is_success(self) -> bool {
                self.code < 0x80
            }

            /// A short description in the words of the version it came from, or `None` for a
            /// code that version does not define.
            pub const fn description(self) -> Option<&'static str> {
                match self.origin {
                    Some(Origin { version: ProtocolVersion::V311, wire }) => {
                        $v311::new(wire).description()
                    }
                    None => Self::mqtt5_description(self.code),
                }
            }
        }

        impl From<$v311> for $name {
            fn from(code: $v311) -> Self {
                $name::from_wire(ProtocolVersion::V311, code.get())
            }
        }

        impl fmt::Display for $name {
            /// A 3.1.1 code as its 3.1.1 type shows it (`not authorized (5)`); otherwise the
            /// MQTT 5 description with the code in hexadecimal (`not authorized (0x87)`).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.origin {
                    Some(Origin { version: ProtocolVersion::V311, wire }) => {
                        $v311::new(wire).fmt(f)
                    }
                    None => match self.description() {
                        Some(text) => write!(f, "{text} ({:#04x})", self.code),
                        None => write!(f, "unknown reason code {:#04x}", self.code),
                    },
                }
            }
        }

        /// Equal when they mean the same: the codes in MQTT 5's numbering are compared, not
        /// where they came from. Compare [`wire`](Self::wire) and [`version`](Self::version)
        /// to tell apart codes that came differently.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.code == other.code
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.code.hash(state);
            }
        }
    };
}

/// How a 3.1.1 return code shows: its description and value (`not authorized (5)`), or
/// `unknown return code 7`.
pub(super) fn fmt_v311(
    f: &mut fmt::Formatter<'_>,
    description: Option<&str>,
    code: u8,
) -> fmt::Result {
    match description {
        Some(text) => write!(f, "{text} ({code})"),
        None => write!(f, "unknown return code {code}"),
    }
}

/// Why a server accepted or refused a CONNECT, in any MQTT version.
///
/// MQTT 3.1.1 answers CONNECT with a return code from 0 to 5; MQTT 5 with a reason code, where
/// refusals start at 0x80. A `ConnectReason` holds the code in **MQTT 5's numbering**, so that
/// one named constant stands for one meaning in either version (`reason ==
/// ConnectReason::NOT_AUTHORIZED` holds for a 3.1.1 return code 5 and for an MQTT 5 reason code
/// 0x87), together with the version and the value it came with on the wire, so that it is
/// reported as it came (`not authorized (5)`) and an unknown code is never lost: a 3.1.1 code
/// outside its table counts as [`UNSPECIFIED_ERROR`](Self::UNSPECIFIED_ERROR) (MQTT 5's
/// catch-all refusal) and keeps its value in [`wire`](Self::wire) and in its `Display`.
///
/// Equality compares meanings, so a named constant is not a pattern: compare with `==`.
///
/// ```
/// use iot443_proto::codec::{ConnectReason, ConnectReturnCode};
///
/// let reason = ConnectReason::from(ConnectReturnCode::NOT_AUTHORIZED);
/// assert_eq!(reason, ConnectReason::NOT_AUTHORIZED);
/// assert_eq!((reason.get(), reason.wire()), (0x87, 5));
/// assert_eq!(reason.to_string(), "not authorized (5)");
///
/// let unknown = ConnectReason::from(ConnectReturnCode::new(7));
/// assert!(!unknown.is_success());
/// assert_eq!(unknown.wire(), 7);
/// assert_eq!(unknown.to_string(), "unknown return code 7");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConnectReason {
    code: u8,
    origin: Option<Origin>,
}

reason_type!(ConnectReason, ConnectReturnCode);

impl ConnectReason {
    /// 0x00: connection accepted (3.1.1 return code 0).
    pub const SUCCESS: Self = Self::new(0x00);
    /// 0x80: refused without a more specific reason; also every unknown 3.1.1 return code.
    pub const UNSPECIFIED_ERROR: Self = Self::new(0x80);
    /// 0x84: the server does not speak the requested protocol version (3.1.1 return code 1).
    pub const UNSUPPORTED_PROTOCOL_VERSION: Self = Self::new(0x84);
    /// 0x85: the client id is not allowed (3.1.1 return code 2, "identifier rejected").
    pub const CLIENT_IDENTIFIER_NOT_VALID: Self = Self::new(0x85);
    /// 0x86: malformed user name or password (3.1.1 return code 4).
    pub const BAD_USER_NAME_OR_PASSWORD: Self = Self::new(0x86);
    /// 0x87: the client is not authorized to connect (3.1.1 return code 5).
    pub const NOT_AUTHORIZED: Self = Self::new(0x87);
    /// 0x88: the MQTT service is unavailable (3.1.1 return code 3).
    pub const SERVER_UNAVAILABLE: Self = Self::new(0x88);
    /// 0x89: the server is busy; try again later (MQTT 5 only).
    pub const SERVER_BUSY: Self = Self::new(0x89);
    /// 0x8A: this client is banned (MQTT 5 only).
    pub const BANNED: Self = Self::new(0x8A);
    /// 0x97: a quota, such as a connection limit, is exceeded (MQTT 5 only).
    pub const QUOTA_EXCEEDED: Self = Self::new(0x97);
    /// 0x9F: connections arrive faster than the server allows (MQTT 5 only).
    pub const CONNECTION_RATE_EXCEEDED: Self = Self::new(0x9F);

    /// A 3.1.1 CONNACK return code in MQTT 5's numbering.
    const fn from_v311(wire: u8) -> u8 {
        match wire {
            0x00 => 0x00,
            0x01 => 0x84,
            0x02 => 0x85,
            0x03 => 0x88,
            0x04 => 0x86,
            0x05 => 0x87,
            _ => 0x80,
        }
    }

    /// MQTT 5's name for a CONNACK reason code (§3.2.2.2).
    const fn mqtt5_description(code: u8) -> Option<&'static str> {
        Some(match code {
            0x00 => "success",
            0x80 => "unspecified error",
            0x81 => "malformed packet",
            0x82 => "protocol error",
            0x83 => "implementation specific error",
            0x84 => "unsupported protocol version",
            0x85 => "client identifier not valid",
            0x86 => "bad user name or password",
            0x87 => "not authorized",
            0x88 => "server unavailable",
            0x89 => "server busy",
            0x8A => "banned",
            0x8C => "bad authentication method",
            0x90 => "topic name invalid",
            0x95 => "packet too large",
            0x97 => "quota exceeded",
            0x99 => "payload format invalid",
            0x9A => "retain not supported",
            0x9B => "QoS not supported",
            0x9C => "use another server",
            0x9D => "server moved",
            0x9F => "connection rate exceeded",
            _ => return None,
        })
    }
}

/// What a server granted for one filter of a SUBSCRIBE, in any MQTT version: a QoS, or a
/// refusal and why.
///
/// Codes of different versions compare as for [`ConnectReason`]: in MQTT 5's numbering, where
/// 3.1.1's SUBACK codes keep their values (0, 1, 2 granted; 0x80, "failure", is MQTT 5's
/// [`UNSPECIFIED_ERROR`](Self::UNSPECIFIED_ERROR)), and an unknown 3.1.1 code counts as
/// `UNSPECIFIED_ERROR` and keeps its value in [`wire`](Self::wire).
///
/// ```
/// use iot443_proto::QoS;
/// use iot443_proto::codec::{SubAckReturnCode, SubscribeReason};
///
/// let granted = SubscribeReason::from(SubAckReturnCode::GRANTED_QOS1);
/// assert_eq!(granted.granted_qos(), Some(QoS::AtLeastOnce));
///
/// let refused = SubscribeReason::from(SubAckReturnCode::FAILURE);
/// assert_eq!(refused, SubscribeReason::UNSPECIFIED_ERROR);
/// assert_eq!(refused.granted_qos(), None);
/// assert_eq!(refused.to_string(), "failure (128)");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SubscribeReason {
    code: u8,
    origin: Option<Origin>,
}

reason_type!(SubscribeReason, SubAckReturnCode);

impl SubscribeReason {
    /// 0x00: granted at QoS 0.
    pub const GRANTED_QOS0: Self = Self::new(0x00);
    /// 0x01: granted at QoS 1.
    pub const GRANTED_QOS1: Self = Self::new(0x01);
    /// 0x02: granted at QoS 2.
    pub const GRANTED_QOS2: Self = Self::new(0x02);
    /// 0x80: refused without a more specific reason (3.1.1's only refusal, "failure"); also
    /// every unknown 3.1.1 return code.
    pub const UNSPECIFIED_ERROR: Self = Self::new(0x80);
    /// 0x87: the client may not subscribe to this filter (MQTT 5 only).
    pub const NOT_AUTHORIZED: Self = Self::new(0x87);
    /// 0x8F: the filter is well formed but the server does not accept it (MQTT 5 only).
    pub const TOPIC_FILTER_INVALID: Self = Self::new(0x8F);
    /// 0x97: a quota, such as a subscription limit, is exceeded (MQTT 5 only).
    pub const QUOTA_EXCEEDED: Self = Self::new(0x97);

    /// The reason granting `qos`.
    pub const fn granted(qos: QoS) -> Self {
        Self::new(qos as u8)
    }

    /// The granted QoS, or `None` for a refusal.
    pub const fn granted_qos(self) -> Option<QoS> {
        match self.code {
            0x00 => Some(QoS::AtMostOnce),
            0x01 => Some(QoS::AtLeastOnce),
            0x02 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// A 3.1.1 SUBACK return code in MQTT 5's numbering.
    const fn from_v311(wire: u8) -> u8 {
        match wire {
            0x00..=0x02 => wire,
            _ => 0x80,
        }
    }

    /// MQTT 5's name for a SUBACK reason code (§3.9.3).
    const fn mqtt5_description(code: u8) -> Option<&'static str> {
        Some(match code {
            0x00 => "granted QoS 0",
            0x01 => "granted QoS 1",
            0x02 => "granted QoS 2",
            0x80 => "unspecified error",
            0x83 => "implementation specific error",
            0x87 => "not authorized",
            0x8F => "topic filter invalid",
            0x91 => "packet identifier in use",
            0x97 => "quota exceeded",
            0x9E => "shared subscriptions not supported",
            0xA1 => "subscription identifiers not supported",
            0xA2 => "wildcard subscriptions not supported",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn every_v311_connack_code_has_its_mqtt5_meaning() {
        let pairs = [
            (ConnectReturnCode::ACCEPTED, ConnectReason::SUCCESS),
            (
                ConnectReturnCode::UNACCEPTABLE_PROTOCOL_VERSION,
                ConnectReason::UNSUPPORTED_PROTOCOL_VERSION,
            ),
            (ConnectReturnCode::IDENTIFIER_REJECTED, ConnectReason::CLIENT_IDENTIFIER_NOT_VALID),
            (ConnectReturnCode::SERVER_UNAVAILABLE, ConnectReason::SERVER_UNAVAILABLE),
            (ConnectReturnCode::BAD_USERNAME_OR_PASSWORD, ConnectReason::BAD_USER_NAME_OR_PASSWORD),
            (ConnectReturnCode::NOT_AUTHORIZED, ConnectReason::NOT_AUTHORIZED),
        ];
        for (v311, meaning) in pairs {
            let reason = ConnectReason::from(v311);
            assert_eq!(reason, meaning, "{v311}");
            assert_eq!(reason.wire(), v311.get());
            assert_eq!(reason.version(), Some(ProtocolVersion::V311));
            assert_eq!(reason.is_success(), v311.is_accepted());
            assert_eq!(reason.description(), v311.description());
            assert_eq!(reason.to_string(), v311.to_string());
        }
    }

    #[test]
    fn an_unknown_v311_connack_code_is_an_unspecified_refusal_that_keeps_its_value() {
        for wire in 6..=u8::MAX {
            let reason = ConnectReason::from(ConnectReturnCode::new(wire));
            assert_eq!(reason, ConnectReason::UNSPECIFIED_ERROR);
            assert!(!reason.is_success());
            assert_eq!(reason.wire(), wire);
            assert_eq!(reason.description(), None);
            assert_eq!(reason.to_string(), alloc::format!("unknown return code {wire}"));
        }
    }

    #[test]
    fn constants_speak_mqtt5() {
        assert_eq!(ConnectReason::NOT_AUTHORIZED.version(), None);
        assert_eq!(ConnectReason::NOT_AUTHORIZED.wire(), 0x87);
        assert_eq!(ConnectReason::NOT_AUTHORIZED.to_string(), "not authorized (0x87)");
        assert_eq!(ConnectReason::QUOTA_EXCEEDED.to_string(), "quota exceeded (0x97)");
        assert_eq!(ConnectReason::new(0x42).to_string(), "unknown reason code 0x42");
        assert!(ConnectReason::SUCCESS.is_success());
        assert!(!ConnectReason::BANNED.is_success());
    }

    #[test]
    fn equal_reasons_hash_alike() {
        use core::hash::BuildHasher;
        // A fixed hasher: FNV-1a over the bytes written.
        #[derive(Default)]
        struct Fnv(u64);
        impl Hasher for Fnv {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for &byte in bytes {
                    self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        let build = core::hash::BuildHasherDefault::<Fnv>::default();
        let from_wire = ConnectReason::from(ConnectReturnCode::NOT_AUTHORIZED);
        assert_eq!(build.hash_one(from_wire), build.hash_one(ConnectReason::NOT_AUTHORIZED));
        assert_ne!(build.hash_one(from_wire), build.hash_one(ConnectReason::BANNED));
    }

    #[test]
    fn v311_suback_codes_keep_their_meaning() {
        let pairs = [
            (SubAckReturnCode::GRANTED_QOS0, SubscribeReason::GRANTED_QOS0, Some(QoS::AtMostOnce)),
            (SubAckReturnCode::GRANTED_QOS1, SubscribeReason::GRANTED_QOS1, Some(QoS::AtLeastOnce)),
            (SubAckReturnCode::GRANTED_QOS2, SubscribeReason::GRANTED_QOS2, Some(QoS::ExactlyOnce)),
            (SubAckReturnCode::FAILURE, SubscribeReason::UNSPECIFIED_ERROR, None),
        ];
        for (v311, meaning, qos) in pairs {
            let reason = SubscribeReason::from(v311);
            assert_eq!(reason, meaning);
            assert_eq!(reason.granted_qos(), qos);
            assert_eq!(reason.granted_qos(), v311.granted_qos());
            assert_eq!(reason.is_success(), qos.is_some());
            assert_eq!(reason.wire(), v311.get());
            assert_eq!(reason.to_string(), v311.to_string());
        }
        assert_eq!(SubscribeReason::granted(QoS::AtLeastOnce), SubscribeReason::GRANTED_QOS1);
    }

    #[test]
    fn an_unknown_v311_suback_code_is_a_refusal_that_keeps_its_value() {
        let reason = SubscribeReason::from(SubAckReturnCode::new(0x42));
        assert_eq!(reason, SubscribeReason::UNSPECIFIED_ERROR);
        assert_eq!(reason.granted_qos(), None);
        assert_eq!(reason.wire(), 0x42);
        assert_eq!(reason.to_string(), "unknown return code 66");
        assert_eq!(SubscribeReason::QUOTA_EXCEEDED.to_string(), "quota exceeded (0x97)");
    }
}
