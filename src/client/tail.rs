//! The end of a command's output: a byte ring that keeps the last `keep` bytes of
//! everything pushed into it, and the body of a run's report made from it.

use std::collections::VecDeque;

/// The last bytes of an output.
#[derive(Debug)]
pub struct Tail {
    bytes: VecDeque<u8>,
    keep: usize,
}

impl Tail {
    pub fn new(keep: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(keep.min(64 * 1024)),
            keep,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.keep {
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - self.keep..]);
            return;
        }
        let excess = (self.bytes.len() + chunk.len()).saturating_sub(self.keep);
        self.bytes.drain(..excess);
        self.bytes.extend(chunk);
    }

    /// At most the last `count` bytes, starting at a character boundary if the
    /// output is UTF-8 (a cut never leaves half a character at the front).
    pub fn last(&self, count: usize) -> Vec<u8> {
        let start = self.bytes.len().saturating_sub(count);
        let mut tail: Vec<u8> = self.bytes.range(start..).copied().collect();
        if start > 0 {
            let continuation = tail
                .iter()
                .take(3)
                .take_while(|byte| (0x80..0xC0).contains(*byte))
                .count();
            tail.drain(..continuation);
        }
        tail
    }
}

/// A report's body in at most `budget` bytes: the end of the output, then `note` (a
/// line pushmon adds, such as the signal that killed the command) on a line of its
/// own. The note is kept whole if it fits; the output gives way first.
pub fn report_body(tail: &Tail, note: Option<&str>, budget: usize) -> Vec<u8> {
    let Some(note) = note else {
        return tail.last(budget);
    };
    let note = format!("{note}\n");
    if note.len() >= budget {
        return cut_to_boundary(note.as_bytes(), budget).to_vec();
    }
    let mut body = tail.last(budget - note.len());
    if !body.is_empty() && !body.ends_with(b"\n") {
        // One byte for the line break, taken from the front of the output.
        body = tail.last(budget - note.len() - 1);
        body.push(b'\n');
    }
    body.extend_from_slice(note.as_bytes());
    body
}

/// The longest prefix of `text` (UTF-8) of at most `limit` bytes that ends at a
/// character boundary.
fn cut_to_boundary(text: &[u8], limit: usize) -> &[u8] {
    let mut end = limit.min(text.len());
    while end > 0 && end < text.len() && (0x80..0xC0).contains(&text[end]) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_across_chunks() {
        let mut tail = Tail::new(5);
        tail.push(b"abc");
        tail.push(b"defg");
        assert_eq!(tail.last(100), b"cdefg");
        tail.push(b"0123456789");
        assert_eq!(tail.last(100), b"56789");
        assert_eq!(tail.last(2), b"89");
        assert_eq!(Tail::new(0).last(10), b"");
    }

    #[test]
    fn a_cut_never_starts_inside_a_character() {
        let mut tail = Tail::new(100);
        tail.push("aé€".as_bytes()); // 1 + 2 + 3 bytes
        assert_eq!(tail.last(4), "€".as_bytes());
        assert_eq!(tail.last(5), "é€".as_bytes());
        assert_eq!(tail.last(2), b"");
    }

    #[test]
    fn the_note_is_kept_and_the_output_gives_way() {
        let mut tail = Tail::new(100);
        tail.push(b"line one\nline two");
        let body = report_body(&tail, Some("killed"), 12);
        assert_eq!(body, b" two\nkilled\n");
        let body = report_body(&tail, Some("killed"), 1000);
        assert_eq!(body, b"line one\nline two\nkilled\n");
        assert_eq!(report_body(&tail, None, 8), b"line two");
        assert_eq!(report_body(&tail, Some("killed by signal"), 6), b"killed");
        assert!(report_body(&tail, Some("x"), 0).is_empty());
        for budget in 0..40 {
            assert!(report_body(&tail, Some("timed out"), budget).len() <= budget);
        }
    }
}
