//! What passes for an e-mail address in `spec.requestedBy.email`.

/// Whether `s` looks like an e-mail address: one `@`, a non-empty local part, a dotted domain,
/// no whitespace or control characters, at most 254 bytes.
pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
}
