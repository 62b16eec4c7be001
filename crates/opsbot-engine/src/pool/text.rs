//! One text per VM laid end to end, so "which VMs contain this" is a single SIMD scan
//! (memchr's memmem) over the whole pool instead of 10,000 short searches.

/// Separates the VMs' texts: no name, hostname or address contains it, and a needle
/// that does matches nothing.
const BETWEEN: char = '\0';

#[derive(Debug, Default)]
pub struct TextColumn {
    text: String,
    /// Where each VM's text starts; it ends at the separator before the next.
    starts: Vec<usize>,
}

impl TextColumn {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(texts: I) -> Self {
        let mut column = TextColumn::default();
        for t in texts {
            column.starts.push(column.text.len());
            // A separator inside a text would let a match run into the next VM's.
            column
                .text
                .extend(t.as_ref().chars().filter(|c| *c != BETWEEN));
            column.text.push(BETWEEN);
        }
        column
    }

    /// For each VM (by index), whether its text contains `needle`.
    pub fn containing(&self, needle: &str) -> Vec<bool> {
        let mut hit = vec![false; self.starts.len()];
        if needle.contains(BETWEEN) {
            return hit;
        }
        let haystack = self.text.as_bytes();
        // Matches come in order, so the VM holding each is found by walking forward.
        let mut i = 0;
        for at in memchr::memmem::find_iter(haystack, needle.as_bytes()) {
            while self.starts.get(i + 1).is_some_and(|s| *s <= at) {
                i += 1;
            }
            hit[i] = true;
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_vm_once_and_never_across_two() {
        let c = TextColumn::new(["web01\u{1}web01.local", "db01", "aa", "aab", ""]);
        assert_eq!(c.containing("web"), [true, false, false, false, false]);
        assert_eq!(c.containing("01"), [true, true, false, false, false]);
        // "aa" ends one VM and starts the next: both hold it, neither by straddling.
        assert_eq!(c.containing("aa"), [false, false, true, true, false]);
        assert_eq!(c.containing("ab"), [false, false, false, true, false]);
        assert_eq!(c.containing("1db"), [false; 5]);
        assert_eq!(c.containing("a\0a"), [false; 5]);
        assert_eq!(c.containing(""), [true; 5]);
    }

    #[test]
    fn a_separator_inside_a_text_is_dropped() {
        let c = TextColumn::new(["x\0y", "y"]);
        assert_eq!(c.containing("xy"), [true, false]);
        assert_eq!(c.containing("y"), [true, true]);
    }
}
