//! The figures of the tables (medians with min–max, per-round ratios, completed runs) and their
//! rows.

use crate::measure::Run;

/// Bytes in a MiB.
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

/// The median; NaN for no values.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// "median (min–max)" with `decimals`.
pub(crate) fn summary(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "—".to_owned();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.d$} ({:.d$}–{:.d$})", median(values), min, max, d = decimals)
}

/// Per-round ratios `value(contender) / value(reference)` over the rounds both completed.
pub(crate) fn ratios(
    results: &[Vec<Option<Run>>],
    contender: usize,
    reference: usize,
    value: impl Fn(&Run) -> f64,
) -> Vec<f64> {
    results[contender]
        .iter()
        .zip(&results[reference])
        .filter_map(|(a, b)| Some(value(a.as_ref()?) / value(b.as_ref()?)))
        .collect()
}

/// `value` of every completed run.
pub(crate) fn values(runs: &[Option<Run>], value: impl Fn(&Run) -> f64) -> Vec<f64> {
    runs.iter().flatten().map(value).collect()
}

/// How many runs completed: `N`, or `K of N` when some failed.
pub(crate) fn completed(runs: &[Option<Run>]) -> String {
    let ok = runs.iter().flatten().count();
    if ok == runs.len() { ok.to_string() } else { format!("{ok} of {}", runs.len()) }
}

/// A markdown table row: `| a | b | … |` and a newline.
pub(crate) fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// From runs that report `connect_ms=<first> <second> …`: each run's first connection, and the
/// median of each run's later ones.
pub(crate) fn first_and_later_connects(runs: &[Option<Run>]) -> (Vec<f64>, Vec<f64>) {
    let series: Vec<Vec<f64>> = runs
        .iter()
        .flatten()
        .filter_map(|r| r.reported("connect_ms"))
        .filter(|v| !v.is_empty())
        .collect();
    let first = series.iter().map(|v| v[0]).collect();
    let later = series.iter().filter(|v| v.len() > 1).map(|v| median(&v[1..])).collect();
    (first, later)
}
