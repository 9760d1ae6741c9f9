//! The sans-IO core of iot443: the MQTT codec, topic rules and the client [`Session`] state
//! machine, with no sockets, no TLS, no async runtime and no clock.
//!
//! # Architecture
//!
//! ```text
//!  driver (iot443 crate, tokio)            emulator (iot443-emulator)
//!        │ handle_bytes / handle_timeout          │
//!        ▼                                        ▼
//!  session::Session ── poll_transmit ──►   broker core
//!        │                                        │
//!        └──────────── codec::Codec ◄─────────────┘   Packet ⇄ bytes, one codec for both sides
//!                         │
//!                       topic                         TopicName / TopicFilter, IoT Core limits
//! ```
//!
//! * [`codec`] turns bytes into [`codec::Packet`]s and back. Decoding returns `Ok(None)` until a
//!   whole packet is buffered and a typed [`codec::DecodeError`] for malformed input; PUBLISH
//!   payloads are zero-copy [`bytes::Bytes`] slices of the receive buffer.
//! * [`topic`] holds the [`topic::TopicName`] and [`topic::TopicFilter`] newtypes: MQTT rules when
//!   they are built, AWS IoT Core's limits as an explicit extra check, and a matcher whose rule
//!   (MQTT or IoT Core) the caller chooses.
//! * [`aws`] holds AWS IoT Core's services as pure logic: the Device Shadow document (partial
//!   updates, delta, versions, limits) and its typed `$aws/things/…/shadow` topics, the same code
//!   for the client and the emulator.
//! * [`session`] is the client side of one MQTT session: packet ids, the QoS 1 in-flight window,
//!   keep-alive and redelivery after a reconnect. Time is an argument ([`Instant`]), never read.
//!
//! The crate is `#![no_std]` (it needs `alloc`) and forbids `unsafe`, so that a microcontroller
//! build can embed it as it is.
//!
//! # Example: encode and decode a PUBLISH
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use iot443_proto::codec::{Codec, Packet, PacketId, Publish, PublishQos};
//! use iot443_proto::topic::TopicName;
//!
//! let codec = Codec::default();
//! let publish = Publish::new(
//!     TopicName::new("sdkTest/sub").unwrap(),
//!     PublishQos::AtLeastOnce(PacketId::new(7).unwrap()),
//!     Bytes::from_static(b"hello from SDK QOS1 : 0"),
//! );
//! let mut wire = BytesMut::new();
//! codec.encode(&Packet::Publish(publish.clone()), &mut wire).unwrap();
//!
//! // A partial packet is not an error: the decoder waits for more bytes.
//! let mut partial = BytesMut::from(&wire[..5]);
//! assert_eq!(codec.decode(&mut partial), Ok(None));
//!
//! assert_eq!(codec.decode(&mut wire), Ok(Some(Packet::Publish(publish))));
//! assert!(wire.is_empty());
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;

pub mod aws;
pub mod codec;
pub mod session;
pub mod time;
pub mod topic;

pub use codec::{Codec, DecodeError, EncodeError, Packet, PacketId, QoS};
pub use session::{Event, Session, SessionConfig};
pub use time::Instant;
