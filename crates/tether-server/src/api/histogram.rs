//! Latency histograms recorded once per message, kept in atomics and rendered into
//! `/metrics` beside the recorder's own series.
//!
//! The Prometheus recorder keeps every histogram sample until its upkeep folds them
//! into buckets: a 0.5 KiB block allocated per 64 samples. For a histogram taken per
//! device message (`tether_sink_publish_seconds`) that was the largest single user of
//! the allocator at saturation (BENCHMARKS.md). Here a sample is two relaxed atomic
//! adds into fixed buckets, and the rendering is the same Prometheus histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One series: `name{labels}` with the bucket bounds `bounds` (seconds, ascending).
#[derive(Debug)]
pub(crate) struct Histogram {
    name: &'static str,
    /// Rendered labels without braces, e.g. `sink="log"`.
    labels: String,
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last one is past every bound (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(name: &'static str, labels: &[(&str, &str)], bounds: &'static [f64]) -> Self {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            name,
            labels,
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one sample.
    pub(crate) fn record(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = self.bounds.partition_point(|bound| *bound < secs);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Prometheus text: the cumulative buckets, the sum and the count.
    fn render(&self, out: &mut String) {
        let sep = if self.labels.is_empty() { "" } else { "," };
        let mut total = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            total += count.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(
                out,
                "{}_bucket{{{}{sep}le=\"{le}\"}} {total}",
                self.name, self.labels
            );
        }
        let braces = if self.labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", self.labels)
        };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{}_sum{braces} {sum}", self.name);
        let _ = writeln!(out, "{}_count{braces} {total}", self.name);
    }
}

/// Every series made by [`histogram`], in the order made.
static SERIES: Mutex<Vec<Arc<Histogram>>> = Mutex::new(Vec::new());

/// The series `name{labels}`, made on first use; the same one for the same name and
/// labels.
pub(crate) fn histogram(
    name: &'static str,
    labels: &[(&str, &str)],
    bounds: &'static [f64],
) -> Arc<Histogram> {
    let wanted = Histogram::new(name, labels, bounds);
    let mut series = SERIES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = series
        .iter()
        .find(|h| h.name == name && h.labels == wanted.labels)
    {
        return Arc::clone(found);
    }
    let made = Arc::new(wanted);
    series.push(Arc::clone(&made));
    made
}

/// Appends every series to `out` (Prometheus text), each name once with its `help`.
pub(crate) fn render(out: &mut String, help: impl Fn(&str) -> Option<&'static str>) {
    let series = SERIES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut names: Vec<&'static str> = series.iter().map(|h| h.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if let Some(help) = help(name) {
            let _ = writeln!(out, "# HELP {name} {help}");
        }
        let _ = writeln!(out, "# TYPE {name} histogram");
        for h in series.iter().filter(|h| h.name == name) {
            h.render(out);
        }
    }
}

/// A label value as Prometheus text wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.001, 0.01, 0.1];

    #[test]
    fn samples_land_in_cumulative_buckets_with_sum_and_count() {
        let h = Histogram::new("t_seconds", &[("sink", "log")], BOUNDS);
        for ms in [0, 1, 5, 50, 2000] {
            h.record(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.render(&mut out);
        assert_eq!(
            out,
            "t_seconds_bucket{sink=\"log\",le=\"0.001\"} 2\n\
             t_seconds_bucket{sink=\"log\",le=\"0.01\"} 3\n\
             t_seconds_bucket{sink=\"log\",le=\"0.1\"} 4\n\
             t_seconds_bucket{sink=\"log\",le=\"+Inf\"} 5\n\
             t_seconds_sum{sink=\"log\"} 2.056\n\
             t_seconds_count{sink=\"log\"} 5\n"
        );
    }

    #[test]
    fn one_series_per_name_and_labels_rendered_under_one_help() {
        let a = histogram("t_registry_seconds", &[("sink", "a\"b")], BOUNDS);
        let again = histogram("t_registry_seconds", &[("sink", "a\"b")], BOUNDS);
        assert!(Arc::ptr_eq(&a, &again));
        let b = histogram("t_registry_seconds", &[], BOUNDS);
        a.record(Duration::from_micros(10));
        b.record(Duration::from_secs(1));
        let mut out = String::new();
        render(&mut out, |n| (n == "t_registry_seconds").then_some("Help."));
        let ours: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("t_registry_seconds"))
            .collect();
        assert_eq!(ours[0], "# HELP t_registry_seconds Help.");
        assert_eq!(ours[1], "# TYPE t_registry_seconds histogram");
        assert!(ours.contains(&"t_registry_seconds_bucket{sink=\"a\\\"b\",le=\"0.001\"} 1"));
        assert!(ours.contains(&"t_registry_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(ours.contains(&"t_registry_seconds_count 1"));
        assert_eq!(
            ours.iter().filter(|l| l.starts_with("# TYPE")).count(),
            1,
            "{out}"
        );
    }
}
