//! How a request fails, in the terms of both protocols: an HTTP status with the KServe v2 error
//! body `{"error": "..."}`, or a gRPC status code.

use axum::http::StatusCode;

/// A failed request; every variant carries the message the client sees.
#[derive(Debug, Clone, PartialEq)]
pub enum ServeError {
    /// Malformed or mismatched request: 400 / `INVALID_ARGUMENT`.
    BadRequest(String),
    /// No such model or version: 404 / `NOT_FOUND`.
    NotFound(String),
    /// Queue full or server shutting down: 503 / `UNAVAILABLE` (retry later).
    Unavailable(String),
    /// Missing or wrong bearer token: 401 / `UNAUTHENTICATED`.
    Unauthorized(String),
    /// The request did not finish within the request timeout: 504 / `DEADLINE_EXCEEDED`.
    Timeout(String),
    /// The body exceeds the size limit: 413 (gRPC: tonic answers `OUT_OF_RANGE` itself before
    /// a handler runs; this variant maps to `RESOURCE_EXHAUSTED` where rdeploy raises it).
    TooLarge(String),
    /// The engine failed on valid input: 500 / `INTERNAL`.
    Internal(String),
}

impl ServeError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            ServeError::BadRequest(m)
            | ServeError::NotFound(m)
            | ServeError::Unavailable(m)
            | ServeError::Unauthorized(m)
            | ServeError::Timeout(m)
            | ServeError::TooLarge(m)
            | ServeError::Internal(m) => m,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status.
    pub fn grpc(&self) -> tonic::Status {
        let m = self.message().to_string();
        match self {
            ServeError::BadRequest(_) => tonic::Status::invalid_argument(m),
            ServeError::NotFound(_) => tonic::Status::not_found(m),
            ServeError::Unavailable(_) => tonic::Status::unavailable(m),
            ServeError::Unauthorized(_) => tonic::Status::unauthenticated(m),
            ServeError::Timeout(_) => tonic::Status::deadline_exceeded(m),
            ServeError::TooLarge(_) => tonic::Status::resource_exhausted(m),
            ServeError::Internal(_) => tonic::Status::internal(m),
        }
    }

    /// The metrics label of the outcome.
    pub fn kind(&self) -> &'static str {
        match self {
            ServeError::BadRequest(_) => "bad_request",
            ServeError::NotFound(_) => "not_found",
            ServeError::Unavailable(_) => "unavailable",
            ServeError::Unauthorized(_) => "unauthorized",
            ServeError::Timeout(_) => "timeout",
            ServeError::TooLarge(_) => "too_large",
            ServeError::Internal(_) => "internal",
        }
    }
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ServeError {}

/// rdeploy's errors at the engine boundary: input mismatches are the client's (400), the rest
/// the engine's (500).
impl From<rdeploy::core::Error> for ServeError {
    fn from(e: rdeploy::core::Error) -> Self {
        match e {
            rdeploy::core::Error::InputMismatch { .. } | rdeploy::core::Error::Tensor(_) => {
                ServeError::BadRequest(e.report())
            }
            _ => ServeError::Internal(e.report()),
        }
    }
}
