//! Host-name lookups: each `getaddrinfo` call in the C library, with the name asked for,
//! the addresses answered or the error, and its latency; listed, and joined to the
//! connections that follow (`correlate::HostNames` names a connection to an answer).

mod answers;
mod commands;
mod event;
mod probe;
mod record;
mod text;
mod tools;

pub(crate) use self::{
    answers::each_question,
    tools::{execute, tool_router},
};
pub use self::{
    answers::{DnsList, DnsView, ListLookups},
    commands::Command,
    event::{DnsLookup, eai_name},
    probe::{PROBE, learn},
    record::StoredLookup,
    text::dns_list,
    tools::TOOLS,
};
