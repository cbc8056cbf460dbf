//! The bench's error type: a message that says what failed, with the cause appended.
//!
//! Any `std::error::Error` converts into it with `?`; [`Context::context`] prefixes
//! what was being done (`"opening FIFO /tmp/x: No such file or directory"`).

use std::fmt;

/// A failed step of a benchmark run, as a human-readable message.
pub struct BenchError(String);

impl BenchError {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for BenchError {
    fn from(e: E) -> Self {
        BenchError(e.to_string())
    }
}

/// Result of a benchmark step.
pub type Result<T> = std::result::Result<T, BenchError>;

/// Say what was being done when an error happened.
pub trait Context<T> {
    /// Prefix the error with `what` (`"{what}: {cause}"`).
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<BenchError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| BenchError(format!("{what}: {}", e.into())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| BenchError(what.to_string()))
    }
}
