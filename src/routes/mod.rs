//! HTTP routes, one module per area; each exports `router()` and the root merges them.

pub(crate) mod account;
pub(crate) mod assets;
pub(crate) mod auth;
pub(crate) mod captions;
pub(crate) mod chrome;
pub(crate) mod embed;
pub(crate) mod health;
pub(crate) mod images;
pub(crate) mod manage;
pub(crate) mod origin;
pub(crate) mod pages;
pub(crate) mod stats;
pub(crate) mod stream;
#[cfg(feature = "test-routes")]
pub(crate) mod testing;
pub(crate) mod tus;
pub(crate) mod upload;
pub(crate) mod videos;
pub(crate) mod view_stats;
