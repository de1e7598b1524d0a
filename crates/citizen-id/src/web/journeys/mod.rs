//! Citizen journeys: one file per journey, each handler thin (extract, call the logic, render).

pub mod authorize;
pub mod consent;
pub mod home;
pub mod prove;
pub mod register;
pub mod reset;
pub mod signin;
