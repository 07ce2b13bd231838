//! Event kinds each held in one directory: its event (decoded from the kernel's wire
//! struct), its record in the history, its answers and their text. The layers (`events`,
//! `store`, `query`, `mcp`) hold what every kind shares and take a kind's pieces from here.
//! TCP retransmissions are the first kind kept this way; the kinds built before them still
//! sit in the layers' files.

pub mod retransmit;
