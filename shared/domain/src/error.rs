//! What every layer needs to keep an error's cause: a boxed cause, and the whole chain on one line
//! for a log field or a report.

use std::error::Error;
use std::fmt::Write as _;

/// A cause of any kind, kept (never turned into a string) so that a reader can walk the chain.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

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
