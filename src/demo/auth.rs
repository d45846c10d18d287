//! Accounts, password hashes, bearer tokens, and the access-control object with the bug.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use uuid::Uuid;

/// Argon2id with deliberately cheap parameters (1 MiB, one pass): the demo must not spend
/// the machine's CPU on hashing while it is being load-tested.
fn hasher() -> Argon2<'static> {
    let params = Params::new(1024, 1, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> String {
    hasher()
        .hash_password(password.as_bytes())
        .expect("hashing with a generated salt succeeds")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&hasher(), password.as_bytes(), hash).is_ok()
}

#[derive(Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
}

/// Accounts by e-mail and the tokens issued to them.
#[derive(Default)]
pub struct Accounts {
    by_email: Mutex<HashMap<String, Account>>,
    tokens: Mutex<HashMap<String, Uuid>>,
}

pub enum RegisterError {
    Taken,
}

impl Accounts {
    pub fn register(&self, email: &str, password: &str) -> Result<Account, RegisterError> {
        if self.by_email.lock().unwrap().contains_key(email) {
            return Err(RegisterError::Taken);
        }
        let account = Account {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            password_hash: hash_password(password),
        };
        let mut by_email = self.by_email.lock().unwrap();
        if by_email.contains_key(email) {
            return Err(RegisterError::Taken);
        }
        by_email.insert(email.to_owned(), account.clone());
        Ok(account)
    }

    /// A new bearer token for valid credentials.
    pub fn login(&self, email: &str, password: &str) -> Option<String> {
        let account = self.by_email.lock().unwrap().get(email).cloned()?;
        if !verify_password(password, &account.password_hash) {
            return None;
        }
        let token = Uuid::new_v4().simple().to_string();
        self.tokens
            .lock()
            .unwrap()
            .insert(token.clone(), account.id);
        Some(token)
    }

    pub fn user_for_token(&self, token: &str) -> Option<Uuid> {
        self.tokens.lock().unwrap().get(token).copied()
    }
}

/// The bug, kept on purpose: a single object shared by every request that remembers "the
/// current user". Authentication sets it; handlers read it again later, after awaiting the
/// store, by which time a concurrent request may have replaced it.
#[derive(Default)]
pub struct SharedAccessControl {
    current_user: Mutex<Option<Uuid>>,
}

impl SharedAccessControl {
    pub fn set_current_user(&self, user: Uuid) {
        *self.current_user.lock().unwrap() = Some(user);
    }

    pub fn current_user(&self) -> Option<Uuid> {
        *self.current_user.lock().unwrap()
    }
}
