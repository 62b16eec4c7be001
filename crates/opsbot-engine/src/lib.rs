//! The chat engine every channel feeds: parse → authorise → execute → reply.
//!
//! Channels hand an [`Incoming`] message to [`Engine::handle`] and get a [`Response`]
//! at once; long operations continue as jobs whose progress and results arrive through
//! the channel's [`ReplySink`]. Every message is written to the audit log.

pub mod command;
mod engine;
pub mod filter;
pub mod format;
pub mod jobs;
pub mod menu;
mod metrics;
pub mod pool;
pub mod render;
pub mod reply;
pub mod services;
pub mod session;
mod sync;
pub mod view;
pub mod words;

pub use command::{canonical_name, parse, validate, Command, ParseError, COMMANDS};
pub use engine::commands;
pub use engine::{sync_summary, Engine, EngineOperator, EngineSettings, Incoming};
pub use engine::{Acted, Caller, CloneSpec, Mode, Ran, Refusal, Request, VmAction};
pub use engine::{Click, Clicked};
pub use reply::{Discard, Reply, ReplySink, Response, Status};
pub use sync::fenced;
pub use view::{Lens, Overview, Viewer};
