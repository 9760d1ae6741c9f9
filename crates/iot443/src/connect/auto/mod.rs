//! `port = "auto"`: the race of 8883 and 443 to CONNACK ([`race`]), and the memory of the
//! winner per endpoint ([`memory`]).

pub(crate) mod memory;
pub(crate) mod race;
