//! Empty on purpose: a library target lets netspy declare this crate as a build-dependency,
//! so cargo re-runs netspy's build.rs (which builds the programs) when they change.
#![no_std]
