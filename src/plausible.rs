//! Values given on the command line are promises: a value no run can have is refused before
//! anything is read or written, with the same message on every subcommand.
//!
//! The plausibility rule (also in the README): hours are finite, zero or more and at most
//! 100,000 (11 years); a device count is 1 to 1,000,000; devices × hours is at most 10⁹;
//! energy is finite, zero or more and at most 10¹⁰ kWh (10 TWh). Beyond that the value is a
//! typo, not a training run.

use anyhow::bail;

/// Most hours one run can take.
pub const MAX_HOURS: f64 = 100_000.0;
/// Most devices one run can use.
pub const MAX_COUNT: u32 = 1_000_000;
/// Most device-hours one run can use.
pub const MAX_DEVICE_HOURS: f64 = 1e9;
/// Most energy one run can draw, in kWh.
pub const MAX_KWH: f64 = 1e10;

/// Checks `--hours`, `--count` and `--energy-kwh` against the rule above.
/// A number as a person types it: `1e12`, not twelve zeros.
fn shown(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// `x` as typed ([`shown`]) when it is finite and zero or more; otherwise the error that
/// `flag` takes `what` as a finite number, zero or more.
fn finite_and_not_negative(flag: &str, what: &str, x: f64) -> anyhow::Result<String> {
    let v = shown(x);
    if !x.is_finite() {
        bail!("`{flag} {v}`: {what} must be a finite number");
    }
    if x < 0.0 {
        bail!("`{flag} {v}`: {what} must be zero or more");
    }
    Ok(v)
}

pub fn check(
    hours: Option<f64>,
    count: Option<u32>,
    energy_kwh: Option<f64>,
) -> anyhow::Result<()> {
    if let Some(n) = count {
        if n == 0 {
            bail!(
                "`--count 0`: the count of devices must be 1 or more; leave --count out if unknown"
            );
        }
        if n > MAX_COUNT {
            bail!(
                "`--count {n}`: more than {MAX_COUNT} devices is no training run; give the number of devices used"
            );
        }
    }
    if let Some(h) = hours {
        let v = finite_and_not_negative("--hours", "hours", h)?;
        if h > MAX_HOURS {
            bail!(
                "`--hours {v}`: more than {MAX_HOURS} hours (11 years) is no training run; give the run's wall-clock hours"
            );
        }
        if let Some(n) = count
            && f64::from(n) * h > MAX_DEVICE_HOURS
        {
            bail!(
                "`--count {n} --hours {v}`: more than 10^9 device-hours is no training run; check both values"
            );
        }
    }
    if let Some(e) = energy_kwh {
        let v = finite_and_not_negative("--energy-kwh", "energy", e)?;
        if e > MAX_KWH {
            bail!(
                "`--energy-kwh {v}`: more than 10^10 kWh (10 TWh) is no training run; give the energy in kWh"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_refuses_what_no_run_can_be() {
        assert!(check(Some(10.0), Some(8), Some(37.5)).is_ok());
        assert!(check(Some(0.0), None, Some(0.0)).is_ok());
        for (h, n, e) in [
            (Some(-5.0), None, None),
            (Some(f64::NAN), None, None),
            (Some(f64::INFINITY), None, None),
            (Some(1e12), None, None),
            (None, Some(0), None),
            (None, Some(4_294_967_295), None),
            (Some(2000.0), Some(1_000_000), None),
            (None, None, Some(1e300)),
            (None, None, Some(-37.5)),
        ] {
            assert!(check(h, n, e).is_err(), "{h:?} {n:?} {e:?}");
        }
        let inf = check(Some(f64::INFINITY), None, None).unwrap_err();
        assert_eq!(
            inf.to_string(),
            "`--hours inf`: hours must be a finite number"
        );
    }
}
