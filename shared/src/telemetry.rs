//! Logging set-up and helpers shared by the functions.

use std::error::Error;
use std::fmt::Write as _;

/// Installs the runtime's subscriber, which follows the function's log level and format settings
/// (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT=JSON`, or `RUST_LOG` locally).
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// An error and all its causes on one line, for a log field.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_lists_every_cause() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }
}
