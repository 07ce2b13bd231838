//! The correlation stage: what one event says about another that came through another ring
//! buffer, in either order. Between decoding and the consumers of events (the daemon's
//! store, `netspy trace`), which share it:
//! - [`HostNames`] names connections by the host names their process looked up;
//! - [`Joiner`] pairs TCP outcomes with their connects (per socket and destination);
//! - [`Orphans`] gives a drop that lost its socket to the process that sent it, from the
//!   4-tuple a connect or outcome tells;
//! - [`HeldDrops`] is the orphans for a consumer that cannot amend what it has shown (a
//!   live trace): such drops wait briefly for their sender, then pass attributed or not.
//!
//! A consumer that keeps history (the store) pairs by its own record keys and amends its
//! records when the other half arrives; the matching rules are all here.

mod held_drops;
mod host_names;
mod join;
mod orphans;

pub use self::{
    held_drops::HeldDrops,
    host_names::HostNames,
    join::{JoinKey, Joiner},
    orphans::{Orphans, is_orphan},
};

/// The stage's and the store's maps: a fast hash that an attacker choosing addresses or names
/// cannot collide.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
