//! Time as the sans-IO core sees it: a point that the caller passes in.
//!
//! The core never reads a clock (STYLE.md habit 2). The driver picks an origin (for example the
//! `std::time::Instant` at which it started) and hands in the time elapsed since then.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, measured from an origin the caller chose.
///
/// Only differences between two `Instant`s of the same origin mean anything.
///
/// ```
/// use core::time::Duration;
/// use iot443_proto::Instant;
///
/// let start = Instant::ZERO;
/// let later = start + Duration::from_secs(60);
/// assert_eq!(later - start, Duration::from_secs(60));
/// assert_eq!(later.saturating_duration_since(start), Duration::from_secs(60));
/// assert_eq!(start.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    /// How long after the origin this instant is.
    pub const fn duration_since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + duration`, or `None` on overflow.
    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the largest representable instant instead of panicking.
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub for Instant {
    type Output = Duration;

    /// Saturates at zero instead of panicking.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}
