//! Command output for people and scripts: aligned tables, CSV, and times in local time with
//! the zone. `baton sweep` and `baton history` print through these.

use chrono::{DateTime, Utc};

/// A time as people read it: local time with the zone (`TZ` decides which).
pub fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `local_time`, or `-` when unknown.
pub fn local_time_or_dash(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), local_time)
}

/// A column of text, left-aligned; numbers are right-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// An aligned table: a header line, then one line per row, columns two spaces apart, no
/// trailing spaces.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[(&'static str, Align)]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Left-aligned columns only.
    pub fn left(header: &[&'static str]) -> Table {
        let header: Vec<_> = header.iter().map(|h| (*h, Align::Left)).collect();
        Table::new(&header)
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, each ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = self
            .header
            .iter()
            .enumerate()
            .map(|(c, (name, _))| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .chain([name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let text: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.header)
                .map(|((cell, &w), (_, align))| match align {
                    Align::Left => format!("{cell:<w$}"),
                    Align::Right => format!("{cell:>w$}"),
                })
                .collect();
            format!("{}\n", text.join("  ").trim_end())
        };
        let mut out = line(self.header.iter().map(|(h, _)| *h).collect());
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_space() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("N", Align::Right),
            ("NOTE", Align::Left),
        ]);
        t.row(vec!["alice".into(), "7".into(), String::new()]);
        t.row(vec!["bo".into(), "1234".into(), "ok".into()]);
        assert_eq!(
            t.render(),
            "NAME      N  NOTE\nalice     7\nbo     1234  ok\n"
        );
    }
}
