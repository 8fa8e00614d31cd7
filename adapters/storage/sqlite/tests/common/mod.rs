//! Helpers shared by the integration tests: the conformance kit's fixtures.
#![allow(dead_code)]

pub use persevere_conformance::fixtures::*;
