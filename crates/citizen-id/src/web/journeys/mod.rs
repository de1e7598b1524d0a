//! Citizen journeys: one file per journey, each handler thin (extract, call the logic, render).

pub mod authorize;
pub mod consent;
pub mod home;
pub mod passkey_pages;
pub mod passkeys;
pub mod prove;
pub mod reauth;
pub mod register;
pub mod reset;
pub mod settings;
pub mod settings_contact;
pub mod signin;
