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

/// Why a secret's JSON could not be read, said without the value serde would quote: a field of
/// the wrong type (`"values": "tok-123"` where a list is expected) would otherwise put the token
/// itself in the error, and so in the log. Names of fields (missing, unknown) are kept; values
/// never are.
#[derive(Debug, thiserror::Error)]
#[error("{what} at line {line}, column {column}")]
pub struct SecretJsonError {
    what: String,
    line: usize,
    column: usize,
}

impl SecretJsonError {
    pub fn of(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let said = error.to_string();
        let said = said
            .rsplit_once(" at line ")
            .map_or(said.as_str(), |(message, _)| message);
        let what = match error.classify() {
            Category::Syntax => "not valid JSON".to_owned(),
            Category::Eof => "the JSON ends too soon".to_owned(),
            Category::Io => "the JSON could not be read".to_owned(),
            Category::Data
                if [
                    "missing field",
                    "unknown field",
                    "duplicate field",
                    "unknown variant",
                ]
                .iter()
                .any(|kind| said.starts_with(kind)) =>
            {
                // `unknown variant` quotes the variant given: a name of ours, not a value of theirs,
                // yet it is cut as a value would be.
                said.split(", expected")
                    .next()
                    .filter(|_| !said.starts_with("unknown variant"))
                    .map_or_else(
                        || "a value is not one of those allowed".to_owned(),
                        str::to_owned,
                    )
            }
            Category::Data => match said.split_once(", expected ") {
                Some((_, expected)) => {
                    format!("a value is of the wrong type (expected {expected})")
                }
                None => "a value is of the wrong type".to_owned(),
            },
        };
        Self {
            what,
            line: error.line(),
            column: error.column(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_s_json_error_names_fields_and_never_quotes_a_value() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Secret {
            values: Vec<String>,
            port: Option<u16>,
        }
        let read = |json: &str| {
            SecretJsonError::of(&serde_json::from_str::<Secret>(json).unwrap_err()).to_string()
        };
        let wrong_type = read(r#"{"values": "tok-4f9c1e"}"#);
        assert!(!wrong_type.contains("tok-4f9c1e"), "{wrong_type}");
        assert_eq!(
            wrong_type,
            "a value is of the wrong type (expected a sequence) at line 1, column 23"
        );
        let wrong_value = read(r#"{"values": [], "port": 99999999}"#);
        assert!(!wrong_value.contains("99999999"), "{wrong_value}");
        assert_eq!(
            read(r#"{"port": 1}"#),
            "missing field `values` at line 1, column 11"
        );
        assert!(read(r#"{"values": [], "tok-4f9c1e": 1}"#).starts_with("unknown field"));
        assert_eq!(
            read(r#"{"values": [tok"#),
            "not valid JSON at line 1, column 14"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_lists_every_cause() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }
}
