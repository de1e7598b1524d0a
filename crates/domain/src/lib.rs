//! Value types and pure rules of Citizen ID.
//!
//! Every type here follows "parse, don't validate": a value can only be made
//! through its `parse` constructor (serde deserialisation goes through the
//! same function), so code that holds an [`NhsNumber`] or a [`VectorRequest`]
//! never has to check it again. The crate does no I/O, knows nothing of the
//! web or of SQL, and its error messages are written to be shown to a citizen.

#[macro_use]
mod macros;

mod birth_date;
mod email;
mod level;
mod mobile;
mod nhs_number;
mod password;
mod postcode;
mod redirect_uri;
mod scope;
mod vtr;

pub use birth_date::{BirthDate, BirthDateError, civil_from_days};
pub use email::{Email, EmailError};
pub use level::{Credential, CredentialError, CredentialSet, ProofingLevel, ProofingLevelError};
pub use mobile::{LandlineNumber, LandlineNumberError, MobileNumber, MobileNumberError};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordPolicyError, check_password_shape,
};
pub use postcode::{Postcode, PostcodeError};
pub use redirect_uri::{MAX_REDIRECT_URI_CHARS, RedirectUri, RedirectUriError};
pub use scope::{Scope, ScopeError, ScopeSet, ScopeSetError};
pub use vtr::{MAX_VECTORS, Vector, VectorError, VectorRequest, VectorRequestError};
