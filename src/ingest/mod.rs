//! Ingest: a signed delivery becomes an inbox row. The signature check, parsing each wire
//! format into typed events (once), and the rows the inbox stores — used alike by the webhook
//! routes, the Events API backfills and the fuzz targets.

pub mod form;
pub mod parse;
mod row;
pub mod signature;

pub use row::inbox_row;
