//! The HubSpot provider: OAuth install and token refresh, a CRM v3 client with a
//! per-portal rate limiter, and webhook signature checks and event parsing.

pub mod webhook;
