//! The topic lifecycle: admin RPCs, and deleted events never served again (from memory
//! or PostgreSQL).

mod removed_records;
