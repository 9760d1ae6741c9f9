//! Arguments from C: NUL-terminated strings, byte buffers, QoS.

use crate::error::Failure;
use iot443_core::QoS;
use std::ffi::{CStr, CString, c_char, c_int, c_void};

/// `text` as a C string; a NUL inside it (which C cannot hold) becomes a space.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// The UTF-8 string at `ptr`, named `name` in errors.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged while the
/// returned reference is used.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{name} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|error| {
        Failure::invalid(format!(
            "{name} is not valid UTF-8 (at byte {}); pass it as UTF-8",
            error.valid_up_to()
        ))
    })
}

/// The `len` bytes at `ptr` (NULL is allowed when `len` is 0).
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that stay valid while the slice is used.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const c_void,
    len: usize,
    name: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{name} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!("{name} length {len} is impossible")));
    }
    // SAFETY: not NULL, `len` fits an isize, and the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// The QoS `qos`, 0 or 1 (AWS IoT Core has no QoS 2).
pub(crate) fn qos_arg(qos: c_int) -> Result<QoS, Failure> {
    match qos {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Err(Failure::invalid(
            "QoS 2 is not supported by AWS IoT Core; use QoS 0 or 1 (nothing was sent)",
        )),
        other => Err(Failure::invalid(format!("qos must be 0 or 1, not {other}"))),
    }
}

/// `qos` as C sees it.
pub(crate) fn qos_number(qos: QoS) -> c_int {
    c_int::from(qos as u8)
}
