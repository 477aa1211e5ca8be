//! Validation failures that name the field at fault.

use serde::Serialize;

/// One field of a request that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// A dotted path into the request, e.g. `source.columns[2].kind`.
    pub field: String,
    /// What is wrong with it, in words a client can act on.
    pub message: String,
}

/// A request that is well-formed but invalid: one or more field errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {}", summary(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Invalid {
    /// A single field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// Collects field errors while a request is parsed, so a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Collector(Vec<FieldError>);

impl Collector {
    /// Records one error.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the errors of a nested parse.
    pub fn extend(&mut self, invalid: Invalid) {
        self.0.extend(invalid.0);
    }

    /// The errors recorded so far, for a parse that cannot go on without the failed part.
    pub fn into_invalid(self) -> Invalid {
        Invalid(self.0)
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Invalid(self.0))
        }
    }
}
