//! Declared feature sets: the compiled plan ([`parse`]), the family catalogue ([`family`]),
//! per-node state ([`node`]) and the generic evaluator ([`engine::PlanEngine`]).
//!
//! A declared set (`featureplane/features/plan.py`) arrives as canonical JSON: nodes in a
//! topological order, each a family with parameters and at most one input. The evaluator runs
//! the per-message steps of [`crate::engine::Engine`] over the nodes; on the plan of
//! `lob_shared_v1` it gives that kernel's frames bit for bit (tests/plan.rs), which stays the
//! specialised path for the built-in set.

pub mod builtin;
pub mod engine;
pub mod family;
pub mod node;
pub mod node_state;
pub mod parse;
pub mod state;

pub use builtin::LOB_SHARED_V1_PLAN;
pub use engine::{PlanEngine, PlanValues};
pub use parse::{Node, Plan, MAX_OUTPUTS};
pub use state::Saved;
