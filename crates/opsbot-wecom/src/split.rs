//! Splitting long text into parts that fit WeCom's byte limits.
//!
//! WeCom counts UTF-8 **bytes** and rejects (app messages) or truncates (robots) content
//! over the limit. We cut at line breaks where we can, never inside a character, and
//! number the parts so a reader sees that more follows.

/// `message/send` and `appchat/send` text content limit.
pub const APP_TEXT_MAX_BYTES: usize = 2048;
/// `message/send` and `appchat/send` markdown content limit.
pub const APP_MARKDOWN_MAX_BYTES: usize = 2048;
/// Group-robot text content limit.
pub const ROBOT_TEXT_MAX_BYTES: usize = 2048;
/// Group-robot markdown content limit.
pub const ROBOT_MARKDOWN_MAX_BYTES: usize = 4096;

/// The longest char is 4 bytes; below that a cut could not make progress.
const MIN_CHUNK: usize = 4;

/// Cut `text` into consecutive pieces of at most `max_bytes` bytes (at least 4 are
/// always allowed). Pieces concatenate back to `text` exactly. A piece ends just after a
/// `'\n'` when one lies in its second half, else at the last char boundary that fits.
pub fn split_chunks(text: &str, max_bytes: usize) -> Vec<&str> {
    let max = max_bytes.max(MIN_CHUNK);
    let mut chunks = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Preferring a line break, but not one so early that parts become tiny.
        if let Some(newline) = rest[..cut].rfind('\n') {
            if newline + 1 >= cut / 2 {
                cut = newline + 1;
            }
        }
        let (head, tail) = rest.split_at(cut);
        chunks.push(head);
        rest = tail;
    }
    if !rest.is_empty() || chunks.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// Split `text` into numbered parts of at most `max_bytes` bytes each, marker included:
/// every part of a multi-part message ends with `"\n(i/n)"`. Text that fits is returned
/// unchanged as a single part. `max_bytes` should leave room for the marker (≥ 32).
pub fn split_message(text: &str, max_bytes: usize) -> Vec<String> {
    if text.len() <= max_bytes {
        return vec![text.to_owned()];
    }
    // The marker's width depends on the part count, which depends on the marker's width:
    // guess one digit and widen until the count fits the guess.
    let mut digits = 1;
    loop {
        let marker_len = "\n(/)".len() + 2 * digits;
        let chunks = split_chunks(text, max_bytes.saturating_sub(marker_len));
        let total = chunks.len();
        if total.to_string().len() <= digits {
            return chunks
                .iter()
                .enumerate()
                .map(|(i, chunk)| {
                    let body = chunk.strip_suffix('\n').unwrap_or(chunk);
                    format!("{body}\n({}/{total})", i + 1)
                })
                .collect();
        }
        digits += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(split_message("hello", 2048), vec!["hello".to_string()]);
        assert_eq!(split_chunks("", 10), vec![""]);
    }

    #[test]
    fn prefers_line_breaks_and_numbers_parts() {
        let text = "line one\nline two\nline three\n";
        let parts = split_message(text, 24);
        assert_eq!(
            parts,
            vec!["line one\nline two\n(1/2)", "line three\n(2/2)"]
        );
        assert!(parts.iter().all(|p| p.len() <= 24));
    }

    #[test]
    fn never_splits_a_multibyte_char() {
        let text = "告警".repeat(1000);
        let chunks = split_chunks(&text, 2048);
        assert_eq!(chunks.concat(), text);
        assert!(chunks.iter().all(|c| c.len() <= 2048));
        let parts = split_message(&text, 2048);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= 2048));
        assert!(parts[2].ends_with("(3/3)"));
    }

    #[test]
    fn marker_widens_with_part_count() {
        let text = "x".repeat(500);
        let parts = split_message(&text, 40);
        assert!(parts.len() >= 10);
        assert!(parts.iter().all(|p| p.len() <= 40), "{parts:?}");
        assert!(parts[0].ends_with(&format!("\n(1/{})", parts.len())));
    }
}
