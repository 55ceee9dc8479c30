#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod domain;
mod error;
pub mod memory;
pub mod ports;
pub mod service;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{BoxError, Error, Result};
