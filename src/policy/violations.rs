//! The rules a key breaks, policy by policy: what the webhook refuses (`Deny`) or warns about
//! (`Warn`), and what the audit of existing keys reports (every action).

use std::time::Duration;

use super::{KeyFacts, Matched, RuleName};
use crate::flags::format_duration;
use crate::resources::PolicyAction;

/// One rule of one policy that a key breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The policy's name.
    pub policy: String,
    /// The rule.
    pub rule: RuleName,
    /// The policy's action.
    pub action: PolicyAction,
    /// What is wrong and what to do, for a person (names no key value).
    pub message: String,
}

impl Violation {
    /// `APIKeyPolicy "sandbox" (rule maxLifetime, Deny): <message>`, the form every refusal,
    /// warning and Event takes.
    pub fn describe(&self) -> String {
        format!(
            "APIKeyPolicy {:?} (rule {}, {}): {}",
            self.policy,
            self.rule,
            self.action.as_str(),
            self.message
        )
    }
}

/// The rules of the `matched` policies that the key `facts` describes breaks, in policy-name then
/// rule order. `keys_ahead` is how many other keys of the same requester and product count
/// before this one (at admission: all that count), when known; without it the key limit is not
/// judged.
pub fn violations(
    matched: &[Matched<'_>],
    facts: &KeyFacts<'_>,
    keys_ahead: Option<usize>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for policy in matched {
        let rules = policy.rules;
        let mut broken = |rule: RuleName, message: String| {
            out.push(Violation {
                policy: policy.name.into(),
                rule,
                action: policy.action,
                message,
            })
        };
        if let (Some(max), Some(ahead)) = (rules.max_keys_per_requester_per_product, keys_ahead)
            && ahead >= max as usize
        {
            broken(
                RuleName::MaxKeys,
                format!(
                    "{ahead} other keys of this requester for this product already count; the \
                     policy allows at most {max}: delete one you no longer need first"
                ),
            );
        }
        if let Some(max) = policy.max_lifetime {
            match facts.lifetime {
                None => broken(
                    RuleName::MaxLifetime,
                    format!(
                        "the key has no spec.expiresAt; keys here live at most {}: set one",
                        format_duration(max)
                    ),
                ),
                Some(lifetime) if lifetime > max => broken(
                    RuleName::MaxLifetime,
                    format!(
                        "the key would live {}; keys here live at most {}: choose an earlier \
                         spec.expiresAt",
                        rounded(lifetime),
                        format_duration(max)
                    ),
                ),
                Some(_) => {}
            }
        }
        if rules.expiry_required == Some(true) && facts.lifetime.is_none() {
            broken(
                RuleName::ExpiryRequired,
                "keys here must carry spec.expiresAt: set one".into(),
            );
        }
        if let Some(tiers) = &rules.tiers {
            if let Some(allowed) = &tiers.allowed
                && !allowed.iter().any(|t| t == facts.tier)
            {
                broken(
                    RuleName::Tiers,
                    format!(
                        "tier {:?} is not allowed here; choose one of: {}",
                        facts.tier,
                        allowed.join(", ")
                    ),
                );
            }
            if let Some(forbidden) = &tiers.forbidden
                && forbidden.iter().any(|t| t == facts.tier)
            {
                broken(
                    RuleName::Tiers,
                    format!("tier {:?} is forbidden here; choose another", facts.tier),
                );
            }
        }
        if rules.manual_approval == Some(true) && facts.automatic {
            broken(
                RuleName::ManualApproval,
                "keys here need an owner's approval, even for a product that approves \
                 automatically"
                    .into(),
            );
        }
        if let (Some(min), Some(length)) = (rules.min_own_key_length, facts.own_key_length)
            && length < min as usize
        {
            broken(
                RuleName::MinOwnKeyLength,
                format!(
                    "the key in spec.secretRef has {length} characters; brought keys here have at \
                     least {min}: put a longer random key in the Secret"
                ),
            );
        }
    }
    out
}

/// A lifetime to the second, as the flags write durations (`30d`, `90m`).
fn rounded(lifetime: Duration) -> String {
    format_duration(Duration::from_secs(lifetime.as_secs().max(1)))
}
