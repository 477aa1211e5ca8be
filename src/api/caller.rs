//! The [`Caller`] of a request as an axum extractor: `auth` says who is calling, this says how
//! a refusal is answered (`401`, through [`ApiError`]).

use super::error::ApiError;
use crate::auth::{Authenticator, Caller};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Authenticator::from_ref(state);
        Ok(auth.authenticate(&parts.headers)?)
    }
}
