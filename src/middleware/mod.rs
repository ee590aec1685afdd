//! Request middleware of the one stack every protocol shares; the stack itself is in `app.rs`.

pub(crate) mod access_log;
pub(crate) mod alt_svc;
pub(crate) mod compression;
pub(crate) mod cors;
pub(crate) mod csrf;
pub(crate) mod form;
pub(crate) mod head;
pub(crate) mod method_override;
pub(crate) mod panic;
pub(crate) mod rate_limit;
pub(crate) mod request_id;
pub(crate) mod security_headers;
pub(crate) mod session;
pub(crate) mod small_body;
