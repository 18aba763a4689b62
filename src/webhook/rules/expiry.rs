//! A key's expiry under `--max-key-lifetime`: the `expiresAt` a key created without one gets
//! ([`default_for`], by the mutating webhook), and the checks of the validating webhook — an
//! `expiresAt` lies in the future and within the lifetime ([`check`]), and is not removed while a
//! lifetime is configured ([`check_kept`]). The controller expires keys without `expiresAt` at
//! their creation plus the lifetime (`controller::apikey::phase`).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{Checked, Limits, Reason, Verdict};
use crate::resources::APIKey;

/// The `expiresAt` a key created without one gets when a maximum lifetime is in force (the flag's,
/// or a tighter one of an APIKeyPolicy): now plus that lifetime, to the second.
pub fn default_for(
    key: &APIKey,
    max_lifetime: Option<Duration>,
    now: Timestamp,
) -> Option<Timestamp> {
    if key.spec.expires_at.is_some() {
        return None;
    }
    let lifetime = SignedDuration::try_from(max_lifetime?).ok()?;
    let at = now.checked_add(lifetime).ok()?;
    Timestamp::from_second(at.as_second()).ok()
}

/// `expiresAt`, when set, lies in the future and within the maximum lifetime.
pub fn check(key: &APIKey, limits: &Limits, now: Timestamp) -> Checked {
    let Some(Time(expires)) = key.spec.expires_at else {
        return Ok(());
    };
    if expires <= now {
        return Err(Verdict::deny(
            Reason::ExpiresInPast,
            format!("spec.expiresAt {expires} is not in the future (now is {now})"),
        ));
    }
    let Some(max) = limits.max_lifetime() else {
        return Ok(());
    };
    let lifetime = SignedDuration::try_from(max).unwrap_or(SignedDuration::MAX);
    let latest = now.saturating_add(lifetime).unwrap_or(Timestamp::MAX);
    if expires > latest {
        return Err(Verdict::deny(
            Reason::ExpiresTooLate,
            format!(
                "spec.expiresAt {expires} is beyond the maximum key lifetime of {}; choose a \
                 time no later than {latest}",
                lifetime_text(max)
            ),
        ));
    }
    Ok(())
}

/// A key keeps an `expiresAt` while a maximum lifetime is configured: removing it would make the
/// key live for ever (the controller would still expire it at its creation plus the lifetime).
pub fn check_kept(key: &APIKey, limits: &Limits) -> Checked {
    match limits.max_lifetime() {
        Some(max) if key.spec.expires_at.is_none() => Err(Verdict::deny(
            Reason::ExpiresTooLate,
            format!(
                "spec.expiresAt may not be removed: keys live at most {} (--max-key-lifetime); \
                 set another time instead",
                lifetime_text(max)
            ),
        )),
        _ => Ok(()),
    }
}

/// A key lifetime as people read it: `30 days`, else the flag's own form (`12h`).
pub fn lifetime_text(lifetime: std::time::Duration) -> String {
    let days = lifetime.as_secs() / 86_400;
    if days > 0 && lifetime.as_secs().is_multiple_of(86_400) {
        format!("{days} days")
    } else {
        crate::flags::format_duration(lifetime)
    }
}
