//! # nc2zarr-plan
//!
//! Stage 2 of nc2zarr, in a crate of its own so that Cargo enforces what it promises:
//! chunk shapes and a memory-bounded schedule are pure functions of shapes, sizes and a
//! budget. It depends on serde (plans are saved with a split run's job) and thiserror
//! only, so it cannot read files, talk to a store or call netCDF.
//!
//! - [`plan`]: chunk (and shard) shapes, read blocks, the direct and two-pass strategies
//!   and their predicted peak memory;
//! - [`slab`]: boxes of values and the index arithmetic to copy between them;
//! - [`units`]: byte sizes as users write and read them (`2GiB`).

#![forbid(unsafe_code)]

pub mod plan;
pub mod slab;
pub mod units;
