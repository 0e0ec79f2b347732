//! Partner Catalog: course catalogs for corporate partners of a course platform.

pub mod cli;
pub mod configuration;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod jobs;
pub mod mail;
pub mod models;
pub mod policies;
pub mod services;
pub mod startup;
pub mod telemetry;
pub mod web;

// Set here rather than in the binary, so that tests and benchmarks, which run the
// application in their own process, allocate as the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
