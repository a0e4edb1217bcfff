//! The memory core: no Node-API types, tested directly by `cargo test`.

pub mod admission;
pub mod clock;
pub mod error;
pub mod events;
pub mod large;
pub mod limits;
pub mod loan;
pub mod pool;
pub mod size_class;
pub mod slab;
pub mod stats;
pub mod watermark;
