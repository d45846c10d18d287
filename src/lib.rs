//! stampede: a load tester for HTTP services, scripted in Rhai.
//!
//! Data flows one way: [`cli::Plan`] → [`runner`] → workers → [`vu`] users → [`script`] →
//! [`http`] → [`metrics`] → [`report`]. Nothing downstream reaches back upstream except the
//! stop signal.

pub mod api;
pub mod app;
pub mod cli;
pub mod demo;
pub mod duration;
pub mod http;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod prometheus;
pub mod report;
pub mod runner;
pub mod script;
pub mod vu;
pub mod web;
