//! Code metrics an app reports with pm2's in-app library `@pm2/io` (pm2's `axm_monitor`,
//! kept by the daemon from the app's `axm:monitor` messages): their text as `describe` and
//! `monit` show them (`value unit`, as pm2's describe), and their numbers for `metrics`.
//!
//! Pure: data in, text out.

use serde_json::{Map, Value};

/// The metric's value: `{value, unit}` objects as @pm2/io sends them, or a bare value.
fn value(m: &Value) -> &Value {
    m.get("value").unwrap_or(m)
}

/// (name, "value unit") of each metric, in name order.
pub fn rows(metrics: &Map<String, Value>) -> Vec<(String, String)> {
    metrics
        .iter()
        .map(|(k, m)| {
            let v = match value(m) {
                Value::String(s) => s.clone(),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() != 0.0 => format!("{}", (f * 100.0).round() / 100.0),
                    _ => n.to_string(),
                },
                other => other.to_string(),
            };
            let unit = m.get("unit").and_then(Value::as_str).unwrap_or("");
            let text = if unit.is_empty() {
                v
            } else {
                format!("{v} {unit}")
            };
            (k.clone(), text)
        })
        .collect()
}

/// The metrics whose value is a number (or a numeric string, as some probes send), for
/// Prometheus gauges.
pub fn numbers(metrics: &Map<String, Value>) -> Vec<(&str, f64)> {
    metrics
        .iter()
        .filter_map(|(k, m)| {
            let n = match value(m) {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }?;
            n.is_finite().then_some((k.as_str(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn as_pm2_describe_shows_them() {
        let m = json!({
            "Heap Size": {"value": 12.3456, "unit": "MiB"},
            "req/min": {"value": 4},
            "state": "warm",
            "p95": {"value": "7.5", "unit": "ms"},
        });
        let m = m.as_object().unwrap();
        assert_eq!(
            rows(m),
            vec![
                ("Heap Size".to_string(), "12.35 MiB".to_string()),
                ("p95".into(), "7.5 ms".into()),
                ("req/min".into(), "4".into()),
                ("state".into(), "warm".into()),
            ]
        );
        assert_eq!(
            numbers(m),
            vec![("Heap Size", 12.3456), ("p95", 7.5), ("req/min", 4.0)]
        );
    }
}
