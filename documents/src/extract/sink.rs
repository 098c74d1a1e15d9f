//! Text built up to a byte limit: extractors push as they parse and learn when to stop.

pub(crate) struct TextSink {
    text: String,
    max: usize,
    truncated: bool,
}

impl TextSink {
    pub fn new(max: usize) -> Self {
        TextSink {
            text: String::new(),
            max,
            truncated: false,
        }
    }

    /// Appends what fits (cut at a character boundary); false once the limit is reached.
    pub fn push(&mut self, s: &str) -> bool {
        if self.truncated {
            return false;
        }
        let room = self.max.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return true;
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        self.truncated = true;
        false
    }

    /// Ends the current line, unless there is none.
    pub fn newline(&mut self) -> bool {
        if self.text.is_empty() || self.text.ends_with('\n') {
            return !self.truncated;
        }
        self.push("\n")
    }

    /// Leaves one blank line (a paragraph, slide or sheet boundary).
    pub fn blank_line(&mut self) -> bool {
        self.newline();
        if self.text.is_empty() || self.text.ends_with("\n\n") {
            return !self.truncated;
        }
        self.push("\n")
    }

    pub fn is_full(&self) -> bool {
        self.truncated
    }

    pub fn ends_with_whitespace(&self) -> bool {
        self.text.is_empty() || self.text.ends_with(char::is_whitespace)
    }

    /// The text with trailing space trimmed from each line, and whether it was cut.
    pub fn finish(self) -> (String, bool) {
        let mut out = String::with_capacity(self.text.len());
        for line in self.text.split('\n') {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let trimmed = out.trim_end_matches('\n').trim_start_matches('\n');
        let mut text = trimmed.to_string();
        if !text.is_empty() {
            text.push('\n');
        }
        (text, self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_limit_on_a_char_boundary() {
        let mut s = TextSink::new(5);
        assert!(s.push("abc"));
        assert!(!s.push("dé€"));
        assert!(!s.push("more"));
        assert_eq!(s.finish(), ("abcd\n".to_string(), true));
    }
}
