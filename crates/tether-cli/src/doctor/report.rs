//! The checklist: one line per step (✓ ✗ ! –), the first failure's cause and fix,
//! and the same as JSON for scripts.

use serde_json::{Value, json};

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It worked.
    Pass,
    /// It worked, with something worth knowing.
    Warn,
    /// It failed; later steps are skipped.
    Fail,
    /// Not run (an earlier step failed, or it does not apply).
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "–",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct Step {
    /// `dns`, `tcp`, `tls`, `token`, `mqtt`, `config`, `event`.
    pub name: &'static str,
    /// How it went.
    pub status: Status,
    /// One line.
    pub summary: String,
    /// More lines.
    pub details: Vec<String>,
    /// For a failure: precisely what is wrong.
    pub cause: Option<String>,
    /// For a failure: what to do.
    pub fix: Option<String>,
}

impl Step {
    /// A passed step.
    pub fn pass(name: &'static str, summary: impl Into<String>) -> Self {
        Step {
            name,
            status: Status::Pass,
            summary: summary.into(),
            details: Vec::new(),
            cause: None,
            fix: None,
        }
    }

    /// A failed step with its cause and fix.
    pub fn fail(
        name: &'static str,
        summary: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Step {
            status: Status::Fail,
            cause: Some(cause.into()),
            fix: Some(fix.into()),
            ..Step::pass(name, summary)
        }
    }

    /// A step that did not run.
    pub fn skip(name: &'static str, why: impl Into<String>) -> Self {
        Step {
            status: Status::Skip,
            ..Step::pass(name, why)
        }
    }

    /// The same step with more detail lines.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details.extend(details);
        self
    }
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The device's client id.
    pub client_id: String,
    /// `host:port`.
    pub target: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What the server has stored about the device (`lastErrorStatus` etc.).
    pub server: Option<Value>,
    /// Lines about the server's view (admin API), shown after the checklist.
    pub notes: Vec<String>,
    /// A `--provision` run (its steps end with `provision`).
    pub provisioning: bool,
}

impl Report {
    /// The first failed step.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.status == Status::Fail)
    }

    /// Human-readable checklist.
    pub fn render_text(&self) -> String {
        let mut out = format!("tether doctor: {} at {}\n\n", self.client_id, self.target);
        for s in &self.steps {
            out.push_str(&format!(
                "{} {:<7} {}\n",
                s.status.mark(),
                s.name,
                s.summary
            ));
            for d in &s.details {
                out.push_str(&format!("          {d}\n"));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("\n{n}"));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        match self.first_failure() {
            Some(f) => {
                out.push_str(&format!("\nFirst failure: {}\n", f.name));
                if let Some(c) = &f.cause {
                    out.push_str(&format!("  cause: {c}\n"));
                }
                if let Some(x) = &f.fix {
                    out.push_str(&format!("  fix:   {x}\n"));
                }
            }
            None => out.push_str("\nAll checks passed.\n"),
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "status": s.status.as_str(),
                    "summary": s.summary,
                    "details": s.details,
                    "cause": s.cause,
                    "fix": s.fix,
                })
            })
            .collect();
        json!({
            "client_id": self.client_id,
            "target": self.target,
            "ok": self.first_failure().is_none(),
            "first_failure": self.first_failure().map(|s| s.name),
            "steps": steps,
            "server": self.server,
            "notes": self.notes,
        })
    }
}
