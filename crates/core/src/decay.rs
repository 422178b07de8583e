//! Fading interest: how much of an event's points remain after some days.

/// Share of an event's points left after `age_days` days when points halve
/// every `half_life_days` days: `2^(-age / half_life)`. Without a half-life,
/// points never fade (1.0).
///
/// Ages are fractional days of 86 400 s. An age of 0 keeps all the points.
pub fn remaining_share(age_days: f64, half_life_days: Option<f64>) -> f64 {
    match half_life_days {
        Some(h) => (-age_days / h).exp2(),
        None => 1.0,
    }
}

/// How many days it takes for `from` points to fade to `to` points under a
/// half-life (both of the same sign, `|to| < |from|`): `h * log2(from / to)`.
/// Returns `None` when the value never gets there.
pub fn days_until(from: f64, to: f64, half_life_days: f64) -> Option<f64> {
    if from == 0.0 || to == 0.0 || (from > 0.0) != (to > 0.0) || to.abs() >= from.abs() {
        return None;
    }
    Some(half_life_days * (from / to).log2())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_every_half_life() {
        assert_eq!(remaining_share(0.0, Some(30.0)), 1.0);
        assert!((remaining_share(30.0, Some(30.0)) - 0.5).abs() < 1e-15);
        assert!((remaining_share(60.0, Some(30.0)) - 0.25).abs() < 1e-15);
        assert_eq!(remaining_share(1000.0, None), 1.0);
    }

    #[test]
    fn spec_worked_example() {
        // 40 points, 40 days old, half-life 30 days.
        assert!((40.0 * remaining_share(40.0, Some(30.0)) - 15.874).abs() < 1e-3);
    }

    #[test]
    fn days_until_inverts_the_decay() {
        let d = days_until(80.0, 20.0, 30.0).unwrap();
        assert!((d - 60.0).abs() < 1e-12);
        assert!(days_until(10.0, 20.0, 30.0).is_none());
        assert!(days_until(10.0, -1.0, 30.0).is_none());
    }
}
