//! The integration tests: the real server on port 0, driven by real HTTP/1.1, HTTP/2 and HTTP/3
//! clients, and the real `kino` binary for the command line.

mod accounts;
mod architecture;
mod auth;
mod browser;
mod browser_accounts;
mod captions;
mod catalog;
mod cli;
mod common;
mod embed;
mod errors;
mod headers;
mod image_ownership;
mod images;
mod licences;
mod lifecycle;
mod limits;
mod mail;
mod ownership;
mod pages;
mod parking;
mod protocols;
mod ranges;
mod rate_limit;
mod readme;
mod recovery;
mod reliability;
mod secrets;
mod snapshot;
mod stats;
mod tus;
mod uploads;
mod views;
