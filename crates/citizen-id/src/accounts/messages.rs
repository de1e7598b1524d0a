//! The messages Citizen ID sends, as outbox rows. Recipient and personalisation are sealed
//! together under the key-encryption key and only opened by the delivery worker.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::crypto::{KeyEncryptionKey, random_token};
use crate::state::AppState;
use crate::store::outbox::NewOutboxMessage;

/// Every message, by its template name (mapped to a provider template id at delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    EmailVerificationCode,
    SignInCode,
    MobileVerificationCode,
    PasswordResetCode,
    AccountAlreadyExists,
    PasswordChanged,
    /// Someone proved an identity that already has this account (F7).
    DuplicateAccountHint,
    /// To the account that tried to prove that identity: the attempt was stopped (F7).
    ProvingStopped,
    /// To the old address when the email changes.
    EmailChanged,
    /// To the old number when the mobile changes.
    MobileChanged,
    /// Confirms an account deletion.
    AccountDeleted,
    /// A passkey was added to an existing account (ASVS 2.2.3: authentication details changed).
    PasskeyAdded,
    /// A passkey was removed from the account.
    PasskeyRemoved,
    /// The citizen stopped using a password (they sign in with passkeys only).
    PasswordRemoved,
    /// Too many wrong passwords for this email: a link to carry on signing in.
    SignInUnlock,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::EmailVerificationCode => "email-verification-code",
            Template::SignInCode => "sign-in-code",
            Template::MobileVerificationCode => "mobile-verification-code",
            Template::PasswordResetCode => "password-reset-code",
            Template::AccountAlreadyExists => "account-already-exists",
            Template::PasswordChanged => "password-changed",
            Template::DuplicateAccountHint => "duplicate-account-hint",
            Template::ProvingStopped => "proving-stopped",
            Template::EmailChanged => "email-changed",
            Template::MobileChanged => "mobile-changed",
            Template::AccountDeleted => "account-deleted",
            Template::PasskeyAdded => "passkey-added",
            Template::PasskeyRemoved => "passkey-removed",
            Template::PasswordRemoved => "password-removed",
            Template::SignInUnlock => "sign-in-unlock-link",
        }
    }

    pub fn channel(self) -> &'static str {
        match self {
            Template::SignInCode | Template::MobileVerificationCode | Template::MobileChanged => "sms",
            _ => "email",
        }
    }
}

/// The sealed part of an outbox row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedContent {
    pub to: String,
    pub personalisation: Map<String, Value>,
}

pub fn outbox_context(id: &str) -> String {
    format!("outbox:{id}")
}

pub fn compose(kek: &KeyEncryptionKey, template: Template, to: &str, personalisation: Value) -> NewOutboxMessage {
    let id = random_token(16);
    let content = SealedContent { to: to.to_string(), personalisation: personalisation.as_object().cloned().unwrap_or_default() };
    let sealed = kek.seal(&outbox_context(&id), &serde_json::to_vec(&content).expect("serialisable"));
    NewOutboxMessage { id, channel: template.channel().to_string(), template: template.name().to_string(), sealed_message: sealed }
}

/// A notice that something about the account changed (password, passkeys, contact details),
/// for the store to queue in the same transaction as the change: both happen, or neither.
pub fn notice(state: &AppState, template: Template, to: &str, personalisation: Value) -> NewOutboxMessage {
    compose(&state.kek, template, to, personalisation)
}

pub fn code_message(kek: &KeyEncryptionKey, template: Template, to: &str, code: &str) -> NewOutboxMessage {
    compose(kek, template, to, json!({ "code": code }))
}
