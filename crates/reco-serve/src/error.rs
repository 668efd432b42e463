//! Errors of the server: every failure becomes a JSON body with a status, a stable code and a
//! message that says what to fix. Bad input is a 4xx, never a 500 or a panic.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request or start-up step.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request is malformed or names something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The user, item or model version does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the server's state (409): a retrain already running.
    #[error("{0}")]
    Conflict(String),
    /// The request took longer than the limit (408).
    #[error("{0}")]
    Timeout(String),
    /// The body is larger than the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The request is well-formed but cannot be served as asked (422): an unknown event type,
    /// a capability the model lacks, `n` above the limit.
    #[error("{0}")]
    Unprocessable(String),
    /// No model is loaded yet (503).
    #[error("{0}")]
    NotReady(String),
    /// The database failed (500); the message names the operation.
    #[error("storage: {0}")]
    Storage(String),
    /// An engine error (model, artifact, I/O), mapped by category.
    #[error(transparent)]
    Engine(#[from] reco_core::Error),
    /// The configuration is invalid (start-up only).
    #[error("configuration: {0}")]
    Config(String),
}

/// Result of server operations.
pub type Result<T, E = ServeError> = std::result::Result<T, E>;

impl ServeError {
    /// The HTTP status of the error; an exhaustive match so a new engine category must be
    /// placed.
    pub fn status(&self) -> StatusCode {
        use reco_core::ErrorCategory as C;
        match self {
            ServeError::BadRequest(_) | ServeError::Config(_) => StatusCode::BAD_REQUEST,
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::Conflict(_) => StatusCode::CONFLICT,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ServeError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServeError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServeError::Engine(e) => match e.category() {
                C::Data | C::Spec => StatusCode::UNPROCESSABLE_ENTITY,
                C::Unsupported => StatusCode::UNPROCESSABLE_ENTITY,
                C::Resources => StatusCode::INSUFFICIENT_STORAGE,
                C::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
                C::Training | C::Artifact | C::Io => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// A short stable name of the error class, for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::BadRequest(_) => "bad_request",
            ServeError::Unauthorized(_) => "unauthorized",
            ServeError::NotFound(_) => "not_found",
            ServeError::Conflict(_) => "conflict",
            ServeError::TooLarge(_) => "too_large",
            ServeError::Timeout(_) => "timeout",
            ServeError::Unprocessable(_) => "unprocessable",
            ServeError::NotReady(_) => "not_ready",
            ServeError::Storage(_) => "storage",
            ServeError::Config(_) => "config",
            ServeError::Engine(e) => e.category().name(),
        }
    }
}

impl From<sqlx::Error> for ServeError {
    fn from(e: sqlx::Error) -> Self {
        ServeError::Storage(e.to_string())
    }
}

/// The JSON body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// HTTP status.
    pub status: u16,
    /// Stable class name (`not_found`, `unprocessable`, …).
    pub code: String,
    /// What to fix.
    pub message: String,
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Not being ready yet is a state, answered to every readiness probe, not a failure.
        if status.is_server_error() && !matches!(self, ServeError::NotReady(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                status: status.as_u16(),
                code: self.code().into(),
                message: self.to_string(),
            },
        };
        (status, axum::Json(body)).into_response()
    }
}
