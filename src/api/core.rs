//! Global script functions: checks, failures, unique and random data, the user's identity,
//! environment, sleeping and wait-time constructors.

use rhai::plugin::*;

use crate::vu::WaitTime;

/// Runs `f` with the current user, or fails the call with a clear message.
pub(super) fn user<R>(
    f: impl FnOnce(&std::rc::Rc<crate::vu::User>) -> R,
) -> Result<R, Box<EvalAltResult>> {
    crate::vu::with_user(f).map_err(|e| crate::script::script_error(e.to_string()))
}

fn random_alnum(rng: &mut impl rand::Rng, n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Seconds given as an integer or a float.
pub fn seconds(v: &Dynamic) -> Result<f64, Box<EvalAltResult>> {
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| crate::script::script_error(format!("expected a number of seconds, got {t}")))
}

#[export_module]
pub mod api {
    use rand::Rng;

    /// Records a named check as passed or failed and returns `condition`; the task goes on
    /// either way (unlike `fail`). Results appear in the summary's checks table.
    ///
    /// ```rhai
    /// check(r.json().data.name == name, "read-back returns the name written");
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn check(condition: bool, name: &str) -> Result<bool, Box<EvalAltResult>> {
        super::user(|u| {
            u.recorder().check(name, condition);
            condition
        })
    }

    /// Ends this task iteration as failed, counted with `message` (Locust's
    /// `RescheduleTask`). The user goes on with its next iteration.
    ///
    /// ```rhai
    /// if r.json().data.owner != this.user_id { fail("item belongs to another user"); }
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn fail(message: &str) -> Result<(), Box<EvalAltResult>> {
        Err(crate::script::raise(crate::script::Signal::Fail(
            message.to_owned(),
        )))
    }

    /// A random (version 4) UUID.
    ///
    /// ```rhai
    /// let key = uuid();   // "3f1c9a8e-…"
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn uuid() -> Result<String, Box<EvalAltResult>> {
        super::user(|u| {
            let bytes: [u8; 16] = u.rng.borrow_mut().random();
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string()
        })
    }

    /// A time-ordered (version 7) UUID, handy as a sortable key.
    ///
    /// ```rhai
    /// let id = uuid_v7();
    /// ```
    #[rhai_fn(volatile)]
    pub fn uuid_v7() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// A short, URL-safe id that is unique across every user of the run (and, through a
    /// random run tag, across runs).
    ///
    /// ```rhai
    /// let name = `city-${unique_id()}`;
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn unique_id() -> Result<String, Box<EvalAltResult>> {
        super::user(|u| u.run().ids.next())
    }

    /// A unique e-mail address at `domain`, for registering one account per user.
    ///
    /// ```rhai
    /// let email = unique_email("example.test");   // "u-k3f9z1a@example.test"
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn unique_email(domain: &str) -> Result<String, Box<EvalAltResult>> {
        super::user(|u| format!("u-{}@{domain}", u.run().ids.next()))
    }

    /// A random integer between `lo` and `hi`, both included.
    ///
    /// ```rhai
    /// let page = random_int(1, 10);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn random_int(lo: i64, hi: i64) -> Result<i64, Box<EvalAltResult>> {
        if lo > hi {
            return Err(crate::script::script_error(format!(
                "random_int({lo}, {hi}): lo must not exceed hi"
            )));
        }
        super::user(|u| u.rng.borrow_mut().random_range(lo..=hi))
    }

    /// A random float in `[0, 1)`.
    ///
    /// ```rhai
    /// if random_float() < 0.1 { http::get("/rare"); }
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn random_float() -> Result<f64, Box<EvalAltResult>> {
        super::user(|u| u.rng.borrow_mut().random::<f64>())
    }

    /// A random string of `n` letters and digits.
    ///
    /// ```rhai
    /// let password = random_string(12);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn random_string(n: i64) -> Result<String, Box<EvalAltResult>> {
        let n = usize::try_from(n).map_err(|_| {
            crate::script::script_error(format!("random_string({n}): length must be >= 0"))
        })?;
        super::user(|u| super::random_alnum(&mut *u.rng.borrow_mut(), n))
    }

    /// A random element of `items`; an error if it is empty.
    ///
    /// ```rhai
    /// let city = random_choice(["Paris", "Lima", "Oslo"]);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn random_choice(items: rhai::Array) -> Result<Dynamic, Box<EvalAltResult>> {
        if items.is_empty() {
            return Err(crate::script::script_error(
                "random_choice: the array is empty",
            ));
        }
        let i = super::user(|u| u.rng.borrow_mut().random_range(0..items.len()))?;
        Ok(items[i].clone())
    }

    /// This virtual user's number, from 1 (0 in `setup` and `teardown`).
    ///
    /// ```rhai
    /// log::info(`user ${vu_id()} starting`);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn vu_id() -> Result<i64, Box<EvalAltResult>> {
        super::user(|u| u.id as i64)
    }

    /// How many task iterations this user has started, counting the current one (0 in
    /// `on_start`).
    ///
    /// ```rhai
    /// if iteration() % 10 == 0 { http::get("/summary"); }
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn iteration() -> Result<i64, Box<EvalAltResult>> {
        super::user(|u| u.iteration.get() as i64)
    }

    /// The environment variable `name`, or `default` when it is unset.
    ///
    /// ```rhai
    /// const PASSWORD = env("DEMO_PASSWORD", "abcdefghi");
    /// ```
    #[rhai_fn(volatile)]
    pub fn env(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_owned())
    }

    /// What `setup()` returned, as a read-only copy (unit if there is no `setup`).
    ///
    /// ```rhai
    /// let token = setup_data().admin_token;
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn setup_data() -> Result<Dynamic, Box<EvalAltResult>> {
        super::user(|u| u.worker.setup_data.clone())
    }

    /// Pauses this user for `seconds` without blocking others. When the run stops, the
    /// sleep is cut short and the task ends.
    ///
    /// ```rhai
    /// sleep(0.5);
    /// ```
    #[rhai_fn(return_raw, volatile, name = "sleep")]
    pub fn sleep(seconds: f64) -> Result<(), Box<EvalAltResult>> {
        crate::vu::sleep(seconds)
    }

    /// Pauses this user for a whole number of `seconds` (Rhai's own `sleep` would block
    /// the whole worker thread; this one shadows it).
    ///
    /// ```rhai
    /// sleep(1);
    /// ```
    #[rhai_fn(return_raw, volatile, name = "sleep")]
    pub fn sleep_int(seconds: i64) -> Result<(), Box<EvalAltResult>> {
        crate::vu::sleep(seconds as f64)
    }

    /// Wait time: a random pause between `min` and `max` seconds after each task
    /// (Locust's `between`). Use it as `wait_time` in the options map.
    ///
    /// ```rhai
    /// const options = #{ wait_time: between(0.1, 0.5) };
    /// ```
    #[rhai_fn(return_raw)]
    pub fn between(min: Dynamic, max: Dynamic) -> Result<WaitTime, Box<EvalAltResult>> {
        WaitTime::between(super::seconds(&min)?, super::seconds(&max)?)
            .map_err(crate::script::script_error)
    }

    /// Wait time: the same pause of `seconds` after each task.
    ///
    /// ```rhai
    /// const options = #{ wait_time: constant(1.0) };
    /// ```
    #[rhai_fn(return_raw)]
    pub fn constant(seconds: Dynamic) -> Result<WaitTime, Box<EvalAltResult>> {
        WaitTime::constant(super::seconds(&seconds)?).map_err(crate::script::script_error)
    }

    /// Wait time: start a task every `seconds` at most; the pause fills what the task did
    /// not use (Locust's `constant_pacing`).
    ///
    /// ```rhai
    /// const options = #{ wait_time: constant_pacing(2.0) };
    /// ```
    #[rhai_fn(return_raw)]
    pub fn constant_pacing(seconds: Dynamic) -> Result<WaitTime, Box<EvalAltResult>> {
        WaitTime::constant_pacing(super::seconds(&seconds)?).map_err(crate::script::script_error)
    }
}
