//! How the client commands print: aligned tables (and one line per record) for people
//! by default, JSON lines with `--json` for scripts. Everything goes through [`Output`],
//! so a closed stdout (`| head -1`) is an error the command stops on, never a panic.

mod payload;
mod progress;
mod record;
mod table;
mod time;

use std::io::Write;

use clap::Args;
use serde_json::Value;

use super::errors::ClientError;
pub use progress::Progress;
pub use record::{record_json, record_line};
pub use table::Table;
pub use time::rfc3339;

/// The output flags every client command takes.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print JSON lines (one object per line) instead of tables, for scripts and jq.
    #[arg(long)]
    pub json: bool,
}

/// Writes a command's results to stdout, as tables or JSON lines.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON lines instead of tables.
    pub json: bool,
}

impl From<OutputArgs> for Output {
    fn from(args: OutputArgs) -> Self {
        Self { json: args.json }
    }
}

impl Output {
    /// One line of text, as is.
    pub fn line(&self, text: &str) -> Result<(), ClientError> {
        writeln!(std::io::stdout().lock(), "{text}").map_err(ClientError::Output)
    }

    /// Text without a newline (a terminal control sequence).
    pub fn raw(&self, text: &str) -> Result<(), ClientError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(ClientError::Output)
    }

    /// One JSON value on its own line.
    pub fn json_line(&self, value: &Value) -> Result<(), ClientError> {
        self.line(&value.to_string())
    }

    /// A list of rows: each row's JSON object with `--json`; else the table, or
    /// `empty` when there are no rows (so an empty list is never silence).
    pub fn rows(&self, table: Table, json: &[Value], empty: &str) -> Result<(), ClientError> {
        if self.json {
            return json.iter().try_for_each(|v| self.json_line(v));
        }
        if table.is_empty() {
            return self.line(empty);
        }
        self.line(table.render().trim_end_matches('\n'))
    }

    /// One object: the JSON with `--json`, else `key  value` lines.
    pub fn object(&self, value: &Value) -> Result<(), ClientError> {
        if self.json {
            return self.json_line(value);
        }
        let Value::Object(map) = value else {
            return self.line(&value.to_string());
        };
        let mut table = Table::new([]);
        for (key, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => "-".to_owned(),
                other => other.to_string(),
            };
            table.push([key.clone(), text]);
        }
        self.line(table.render().trim_end_matches('\n'))
    }
}
