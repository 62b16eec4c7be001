//! Checks shared by the channels' configuration validators. Each returns the problem
//! in words; the caller names the key.

/// A name that is part of a callback URL.
pub(crate) fn name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be letters, digits, - or _ (it is part of the callback URL)"
        ))
    }
}

pub(crate) fn not_empty(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

/// An EncodingAESKey as the consoles show it: 43 base64 characters.
pub(crate) fn aes_key(value: &str) -> Result<(), String> {
    let ok = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be exactly 43 base64 characters (got {})",
            value.chars().count()
        ))
    }
}

pub(crate) fn http_url(value: &str) -> Result<(), String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(())
    } else {
        Err("must start with http:// or https://".into())
    }
}
