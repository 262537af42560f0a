//! The engine driven end to end with an in-memory store and scripted Auth0 answers.

#[allow(unused_imports)]
use super::*;
#[allow(unused_imports)]
use crate::flows::*;
#[allow(unused_imports)]
use crate::http::{Callout, CalloutResult, Reply, RequestHead};

mod driver;
mod flows;
mod identity;
mod logout;
mod management;
mod native_cost;
mod race;
mod redis;
mod remembered;
mod store_ops;
mod telemetry;
