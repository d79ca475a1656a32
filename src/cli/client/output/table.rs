//! Aligned text tables, as `kubectl get` and `nats stream ls` print them.

/// Rows of cells under an optional header, rendered with columns padded to their
/// widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles (none: no header line).
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push<const N: usize>(&mut self, row: [String; N]) {
        self.rows.push(row.into());
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, the last column not padded.
    pub fn render(&self) -> String {
        let lines = std::iter::once(&self.header)
            .filter(|h| !h.is_empty())
            .chain(&self.rows);
        let mut widths: Vec<usize> = Vec::new();
        for row in lines.clone() {
            for (i, cell) in row.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in lines {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = widths[i] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let mut table = Table::new(["TOPIC", "HEAD"]);
        table.push(["lessons".into(), "12".into()]);
        table.push(["q".into(), "3".into()]);
        assert_eq!(table.render(), "TOPIC    HEAD\nlessons  12\nq        3\n");
    }
}
