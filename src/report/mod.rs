//! What a run reports: the terminal summary (more outputs plug in beside it).

pub mod summary;
