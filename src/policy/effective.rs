//! The limits in force for a key: the flags as defaults, tightened by every matching `Deny`
//! policy; the most restrictive wins, and each limit names where it comes from.

use std::time::Duration;

use super::Matched;
use crate::resources::PolicyAction;

/// The process's flags: the limits when no policy tightens them.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `--max-keys-per-user-per-product`.
    pub max_keys: usize,
    /// `--max-key-lifetime` (`None`: no maximum).
    pub max_lifetime: Option<Duration>,
    /// `--own-key-min-length`.
    pub min_own_key_length: usize,
}

/// A limit and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit<T> {
    /// The value.
    pub value: T,
    /// The policy that set it; `None`: the flag.
    pub policy: Option<String>,
}

impl<T> Limit<T> {
    /// `APIKeyPolicy "name"`, or `flag` when no policy set it.
    pub fn source(&self, flag: &str) -> String {
        match &self.policy {
            Some(name) => format!("APIKeyPolicy {name:?}"),
            None => flag.into(),
        }
    }
}

/// The limits in force for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// At most this many keys per requester per product.
    pub max_keys: Limit<usize>,
    /// The longest life of the key.
    pub max_lifetime: Option<Limit<Duration>>,
    /// The policy that requires an expiry, if one does.
    pub expiry_required: Option<String>,
    /// The policy that requires an owner's approval, if one does.
    pub manual_approval: Option<String>,
    /// A brought key has at least this many characters.
    pub min_own_key_length: Limit<usize>,
    /// Tiers only these policies' `allowed` lists all name (`None`: no such list).
    pub allowed_tiers: Option<Limit<Vec<String>>>,
    /// Forbidden tiers and the policy that forbids each.
    pub forbidden_tiers: Vec<(String, String)>,
}

impl Effective {
    /// The policy that forbids `tier`, if one does: one that lists it as forbidden, or one whose
    /// `allowed` list leaves it out.
    pub fn tier_refused_by(&self, tier: &str) -> Option<&str> {
        if let Some((_, policy)) = self.forbidden_tiers.iter().find(|(t, _)| t == tier) {
            return Some(policy);
        }
        match &self.allowed_tiers {
            Some(allowed) if !allowed.value.iter().any(|t| t == tier) => allowed.policy.as_deref(),
            _ => None,
        }
    }
}

/// Keeps the tighter of `current` and `candidate` (the earlier on a tie, so the first policy by
/// name is named).
fn tighter<T: PartialOrd>(current: &mut Limit<T>, candidate: T, policy: &str) {
    if candidate < current.value {
        *current = Limit {
            value: candidate,
            policy: Some(policy.into()),
        };
    }
}

/// The limits in force for a key the `matched` policies concern: `defaults`, tightened by every
/// `Deny` policy among them (`Warn` and `Audit` policies report, they do not enforce).
pub fn effective(matched: &[Matched<'_>], defaults: &Defaults) -> Effective {
    let mut out = Effective {
        max_keys: Limit {
            value: defaults.max_keys,
            policy: None,
        },
        max_lifetime: defaults.max_lifetime.map(|value| Limit {
            value,
            policy: None,
        }),
        expiry_required: None,
        manual_approval: None,
        min_own_key_length: Limit {
            value: defaults.min_own_key_length,
            policy: None,
        },
        allowed_tiers: None,
        forbidden_tiers: Vec::new(),
    };
    for policy in matched.iter().filter(|m| m.action == PolicyAction::Deny) {
        let rules = policy.rules;
        if let Some(max) = rules.max_keys_per_requester_per_product {
            tighter(&mut out.max_keys, max as usize, policy.name);
        }
        if let Some(max) = policy.max_lifetime {
            match &mut out.max_lifetime {
                Some(current) => tighter(current, max, policy.name),
                None => {
                    out.max_lifetime = Some(Limit {
                        value: max,
                        policy: Some(policy.name.into()),
                    })
                }
            }
        }
        if rules.expiry_required == Some(true) && out.expiry_required.is_none() {
            out.expiry_required = Some(policy.name.into());
        }
        if rules.manual_approval == Some(true) && out.manual_approval.is_none() {
            out.manual_approval = Some(policy.name.into());
        }
        if let Some(min) = rules.min_own_key_length {
            let min = min as usize;
            if min > out.min_own_key_length.value {
                out.min_own_key_length = Limit {
                    value: min,
                    policy: Some(policy.name.into()),
                };
            }
        }
        if let Some(tiers) = &rules.tiers {
            for tier in tiers.forbidden.iter().flatten() {
                if !out.forbidden_tiers.iter().any(|(t, _)| t == tier) {
                    out.forbidden_tiers.push((tier.clone(), policy.name.into()));
                }
            }
            if let Some(allowed) = &tiers.allowed {
                out.allowed_tiers = Some(match out.allowed_tiers.take() {
                    None => Limit {
                        value: allowed.clone(),
                        policy: Some(policy.name.into()),
                    },
                    Some(current) => {
                        let narrowed: Vec<String> = current
                            .value
                            .iter()
                            .filter(|t| allowed.contains(t))
                            .cloned()
                            .collect();
                        // The policy that removed something is the one to name.
                        let policy = if narrowed.len() < current.value.len() {
                            Some(policy.name.into())
                        } else {
                            current.policy
                        };
                        Limit {
                            value: narrowed,
                            policy,
                        }
                    }
                });
            }
        }
    }
    out
}
