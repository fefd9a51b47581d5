//! What the management commands print for people: tables with aligned columns, and
//! one object as `field: value` lines under the API's own field names, so a field the
//! server adds shows up without a change here. Control characters a heartbeat message
//! may hold are escaped, so one value stays on one line. A closed standard output
//! (`pushmon monitor list | head -1`) ends printing quietly.

use std::io::Write as _;

use serde_json::Value;

use super::Failure;

/// Writes `bytes` to standard output; a reader that went away is not an error.
pub fn print_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::other(format!(
            "cannot write to standard output: {error}"
        ))),
    }
}

pub fn print(text: &str) -> Result<(), Failure> {
    print_bytes(text.as_bytes())
}

/// The server's JSON as it sent it, with a final newline.
pub fn print_raw_json(body: &[u8]) -> Result<(), Failure> {
    if body.is_empty() {
        return Ok(());
    }
    let mut text = body.to_vec();
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    print_bytes(&text)
}

/// One value on one line: text as it is (control characters escaped), `-` for null,
/// arrays joined by commas, objects as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => escape_controls(text),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(_) => escape_controls(&value.to_string()),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `rows` under `headers`, each column as wide as its widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, (value, width)) in row.iter().zip(&widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(value);
            } else {
                line.push_str(value);
                let pad = width - value.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Each field of `object` on a line of its own, `first` in that order, the rest
/// alphabetically.
pub fn fields(object: &Value, first: &[&str]) -> String {
    let Some(map) = object.as_object() else {
        return format!("{}\n", cell(object));
    };
    let mut names: Vec<&str> = first
        .iter()
        .copied()
        .filter(|name| map.contains_key(*name))
        .collect();
    let mut rest: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|name| !first.contains(name))
        .collect();
    rest.sort_unstable();
    names.extend(rest);
    let width = names.iter().map(|name| name.len()).max().unwrap_or(0) + 1;
    let mut text = String::new();
    for name in names {
        let label = format!("{name}:");
        text.push_str(&format!("{label:<width$} {}\n", cell(&map[name])));
    }
    text
}

/// The field `name` of `object` as a cell (`-` when absent).
pub fn field(object: &Value, name: &str) -> String {
    cell(object.get(name).unwrap_or(&Value::Null))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let text = table(
            &["ID", "NAME", "STATUS"],
            &[
                vec!["1".into(), "nightly backup".into(), "up".into()],
                vec!["22".into(), "x".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "ID  NAME            STATUS\n1   nightly backup  up\n22  x\n"
        );
    }

    #[test]
    fn cells_keep_one_value_on_one_line() {
        assert_eq!(cell(&json!("two\nlines")), "two\\nlines");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(cell(&json!(42.5)), "42.5");
        assert_eq!(cell(&json!({"a": 1})), "{\"a\":1}");
    }

    #[test]
    fn fields_come_first_in_the_given_order_then_alphabetically() {
        let text = fields(
            &json!({"zeta": 1, "name": "n", "id": "i", "alpha": null}),
            &["id", "name", "missing"],
        );
        assert_eq!(text, "id:    i\nname:  n\nalpha: -\nzeta:  1\n");
    }
}
