//! Method override for HTML forms, which can only `GET` and `POST`: a form `POST` with
//! `_method=PUT|PATCH|DELETE` becomes that method before routing.
//!
//! Only form posts (URL-encoded or multipart): a `GET` is never rewritten (it must stay safe and
//! cacheable), nor a JSON body (an API client says its method outright, and a JSON request that
//! could turn into a `DELETE` would be a way around CORS preflights).

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{AppError, excerpt};
use crate::middleware::form;

/// Middleware: rewrites the method of a form post that names one in `_method`.
pub(crate) async fn rewrite(request: Request, next: Next) -> Result<Response, AppError> {
    if !form::is_form_post(&request) {
        return Ok(next.run(request).await);
    }
    let (mut request, fields) = form::peek(request).await?;
    if let Some(method) = fields.method.as_deref() {
        *request.method_mut() = match method.to_ascii_uppercase().as_str() {
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            "POST" => Method::POST,
            _ => {
                return Err(AppError::BadRequest(format!(
                    "_method: {} is not PUT, PATCH or DELETE",
                    excerpt(method)
                )));
            }
        };
    }
    Ok(next.run(request).await)
}
