#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod browser;
mod console;
mod constraints;
mod csrf;
mod demo;
mod hardening;
mod health_and_errors;
mod helpers;
mod journey;
mod mail;
mod migrations;
mod process;
mod rules;
mod smtp_server;
mod staff;
