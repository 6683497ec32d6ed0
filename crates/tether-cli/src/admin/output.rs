//! Printing results: aligned tables for lists, `key: value` lines for one resource
//! (like gcloud's default), or the API's JSON with `--format json`.

use std::io::Write as _;

use serde_json::Value;

use super::Format;

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A cell: strings as they are, other JSON compactly, absent as empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows under headers, columns padded to the widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        emit(&format!("{}\n", text.join("  ").trim_end()));
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// A list: JSON array or a table of `columns` (header, JSON pointer).
pub fn list(format: Format, items: &[Value], columns: &[(&str, &str)]) {
    match format {
        Format::Json => json(&Value::Array(items.to_vec())),
        Format::Table => {
            let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    columns
                        .iter()
                        .map(|(_, ptr)| item.pointer(ptr).map(cell).unwrap_or_default())
                        .collect()
                })
                .collect();
            table(&headers, &rows);
        }
    }
}

/// One resource: JSON or indented `key: value` lines.
pub fn resource(format: Format, v: &Value) {
    match format {
        Format::Json => json(v),
        Format::Table => {
            let mut out = String::new();
            yaml_like(v, 0, &mut out);
            emit(&out);
        }
    }
}

/// Pretty JSON.
pub fn json(v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    emit(&format!("{text}\n"));
}

fn yaml_like(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_like(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_like(v, indent, out);
                    }
                    Value::String(s) if s.contains('\n') => {
                        out.push_str(&format!("{pad}{k}: |\n"));
                        for line in s.lines() {
                            out.push_str(&format!("{pad}  {line}\n"));
                        }
                    }
                    other => out.push_str(&format!("{pad}{k}: {}\n", cell(other))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let mut inner = String::new();
                yaml_like(item, indent + 2, &mut inner);
                // The first line of each item carries the "- " marker.
                let trimmed = inner.get(indent + 2..).unwrap_or("").to_string();
                out.push_str(&format!("{pad}- {trimmed}"));
            }
        }
        other => out.push_str(&format!("{pad}{}\n", cell(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_like_nests() {
        let mut out = String::new();
        yaml_like(
            &json!({"id": "d", "config": {"version": "1"}, "credentials": [{"publicKey": {"format": "ES256_PEM"}}]}),
            0,
            &mut out,
        );
        assert_eq!(
            out,
            "config:\n  version: 1\ncredentials:\n- publicKey:\n    format: ES256_PEM\nid: d\n"
        );
    }
}
