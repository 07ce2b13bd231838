//! TCP retransmissions: a segment sent again (a timeout, a SYN unanswered, a fast
//! retransmit, a tail loss probe that resends, a listener's SYN-ACK), with its 4-tuple, TCP
//! state, owner and segment count; summarized by process and connection, listed, counted in
//! `/metrics`.

mod answers;
mod commands;
mod event;
mod facts;
mod probe;
mod record;
mod text;
mod tools;

pub(crate) use self::{
    answers::each_question,
    tools::{execute, tool_router},
};
pub use self::{
    answers::{
        ListRetransmits, RetransmitFlow, RetransmitList, RetransmitOwner, RetransmitSummary,
        RetransmitView, SummarizeRetransmits,
    },
    commands::Command,
    event::TcpRetransmit,
    facts::learn,
    probe::PROBE,
    record::StoredRetransmit,
    text::{retransmit_list, retransmit_summary},
    tools::TOOLS,
};
