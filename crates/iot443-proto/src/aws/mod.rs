//! AWS IoT Core's `$aws` services as pure logic: typed topics and documents, no IO and no clock.
//!
//! * [`shadow`]: Device Shadow, the document logic shared by the client and the emulator.
pub mod shadow;
