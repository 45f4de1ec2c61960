//! CSV as `baton history --csv` and `GET /api/v1/transfers?format=csv` write it: one header line,
//! fields quoted only when they must be, `\n` line ends. One writer, so the download and the
//! command's output have the same columns.

use serde_json::Value;

/// The columns of a transfer (hop) row, in order.
pub const HOP_COLUMNS: [&str; 27] = [
    "chain_id",
    "seq",
    "initiated_at",
    "offered_at",
    "accepted_at",
    "ended_at",
    "finished_at",
    "seconds_to_offer",
    "seconds_to_accept",
    "seconds_in_hop",
    "outcome",
    "from_task_sid",
    "to_task_sid",
    "from_reservation_sid",
    "to_reservation_sid",
    "from_worker_sid",
    "from_worker_name",
    "to_worker_sid",
    "to_worker_name",
    "from_queue_sid",
    "to_queue_sid",
    "target_type",
    "target_sid",
    "target_name",
    "mode",
    "transfer_id",
    "notes",
];

/// A header line and one line per row.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    push_line(&mut out, header.iter().copied());
    for row in rows {
        push_line(&mut out, row.iter().map(String::as_str));
    }
    out
}

/// Serialized records as CSV: each column is the record's field of that name (null: empty).
pub fn csv_of(columns: &[&str], records: &[Value]) -> String {
    let mut out = String::new();
    push_line(&mut out, columns.iter().copied());
    out.push_str(&rows_of(columns, records));
    out
}

/// [`csv_of`] without the header line: the next records of a CSV written in parts.
pub fn rows_of(columns: &[&str], records: &[Value]) -> String {
    let mut out = String::new();
    for record in records {
        let cells: Vec<String> = columns.iter().map(|c| cell(&record[*c])).collect();
        push_line(&mut out, cells.iter().map(String::as_str));
    }
    out
}

/// Records serialized for [`csv_of`].
pub fn to_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn push_line<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_fields_that_need_it() {
        let out = csv(
            &["a", "b"],
            &[vec!["plain".into(), "with, comma and \"quote\"".into()]],
        );
        assert_eq!(out, "a,b\nplain,\"with, comma and \"\"quote\"\"\"\n");
    }

    #[test]
    fn records_become_rows_by_field_name() {
        let records = vec![serde_json::json!({"a": 1, "b": null, "c": "x"})];
        assert_eq!(csv_of(&["c", "b", "a"], &records), "c,b,a\nx,,1\n");
        assert_eq!(rows_of(&["c", "b", "a"], &records), "x,,1\n");
    }
}
