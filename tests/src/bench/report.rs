//! The results: one row per figure (median of its runs, next to its bound or target), printed as
//! a markdown table and written as JSON.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// How a figure compares with its bound or target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Reported for information; there is no bound to meet.
    Info,
    /// Could not be measured here (the row says why).
    NotMeasured,
}

impl Verdict {
    pub fn of(pass: bool) -> Verdict {
        if pass { Verdict::Pass } else { Verdict::Fail }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Info => "info",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable machine name, e.g. `refresh.throughput`.
    pub id: String,
    pub benchmark: String,
    /// The median, in `unit`; `None` when not measured.
    pub value: Option<f64>,
    pub unit: String,
    /// Every run's value, in run order.
    pub samples: Vec<f64>,
    /// The figure as printed (median with its unit and context).
    pub figure: String,
    pub bound: String,
    pub verdict: Verdict,
    /// The verdict's reason, shown after it.
    pub note: String,
    /// Whatever else was measured (per-run details, counts).
    pub details: Value,
}

impl Row {
    pub fn runs(&self) -> usize {
        self.samples.len()
    }

    /// A row for something that could not be measured.
    pub fn not_measured(id: &str, benchmark: &str, bound: &str, why: &str) -> Row {
        Row {
            id: id.to_owned(),
            benchmark: benchmark.to_owned(),
            value: None,
            unit: String::new(),
            samples: Vec::new(),
            figure: "—".into(),
            bound: bound.to_owned(),
            verdict: Verdict::NotMeasured,
            note: why.to_owned(),
            details: Value::Null,
        }
    }
}

/// The median of `xs` (mean of the middle two for an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The markdown table: benchmark | figure (median) | runs | bound/target | verdict.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| benchmark | figure (median) | runs | bound/target | verdict |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let verdict = if r.note.is_empty() {
            r.verdict.label().to_owned()
        } else {
            format!("{}: {}", r.verdict.label(), r.note)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&r.benchmark),
            cell(&r.figure),
            r.runs(),
            cell(&r.bound),
            cell(&verdict)
        ));
    }
    out
}

/// Write `doc` as pretty JSON to `path`, creating its directory.
pub fn write_json(path: &Path, doc: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(doc).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// `1234.5` → `"1,234.5"`-free short form with `digits` decimals (no thousands separators, so
/// the JSON and the table agree).
pub fn num(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn table_escapes_pipes() {
        let row = Row::not_measured("x", "a|b", "c", "d");
        assert!(markdown(&[row]).contains("a\\|b"));
    }
}
