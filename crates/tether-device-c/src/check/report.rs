//! Findings as the caller receives them: counted by severity, the first error kept
//! as a code, and each written as one line of text, `error der-signature at 123:
//! what is wrong; how to fix it`. Lines that do not fit are left out whole.

use core::fmt::{self, Write as _};

use super::finding::tether_finding;
use crate::text::Text;

/// How much a finding matters (as in `tether jwt diagnose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// The token is refused because of it.
    Error,
    /// Accepted (as IoT Core did) but refused by strict servers, or suspicious.
    Warning,
    /// For information.
    Info,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Everything found so far.
pub(crate) struct Report<'t> {
    text: Option<Text<'t>>,
    pub(crate) errors: u32,
    pub(crate) warnings: u32,
    pub(crate) infos: u32,
    pub(crate) first_error: tether_finding,
    /// Bit `code` is set once a finding with that code was added.
    seen: u32,
    /// Each finding in order, for tests that compare with `tether jwt diagnose`.
    #[cfg(test)]
    pub(crate) log: std::vec::Vec<(tether_finding, Severity)>,
}

impl<'t> Report<'t> {
    pub(crate) fn new(text: Option<Text<'t>>) -> Self {
        Report {
            text,
            errors: 0,
            warnings: 0,
            infos: 0,
            first_error: tether_finding::TETHER_FINDING_NONE,
            seen: 0,
            #[cfg(test)]
            log: std::vec::Vec::new(),
        }
    }

    /// Records a finding; `at` is a byte offset in the token as given.
    pub(crate) fn add(
        &mut self,
        code: tether_finding,
        severity: Severity,
        at: Option<usize>,
        message: fmt::Arguments<'_>,
    ) {
        match severity {
            Severity::Error => {
                if self.errors == 0 {
                    self.first_error = code;
                }
                self.errors += 1;
            }
            Severity::Warning => self.warnings += 1,
            Severity::Info => self.infos += 1,
        }
        self.seen |= 1 << (code as u32);
        #[cfg(test)]
        self.log.push((code, severity));
        let Some(text) = &mut self.text else {
            return;
        };
        let line_start = text.len();
        let _ = write!(text, "{} {}", severity.as_str(), code.as_str());
        if let Some(at) = at {
            let _ = write!(text, " at {at}");
        }
        let _ = writeln!(text, ": {message}");
        if text.is_full() {
            text.cut(line_start);
        }
    }

    /// Whether a finding with `code` was added.
    pub(crate) fn has(&self, code: tether_finding) -> bool {
        self.seen & (1 << (code as u32)) != 0
    }

    /// The text's final state: NUL-terminated; (length, size needed, truncated).
    pub(crate) fn finish_text(&mut self) -> (usize, usize, bool) {
        match &mut self.text {
            Some(text) => {
                text.terminate();
                (text.len(), text.needed(), text.is_full())
            }
            None => (0, 0, false),
        }
    }
}
