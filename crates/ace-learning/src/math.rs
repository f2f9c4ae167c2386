//! The few floating-point functions the policies need, for `no_std`
//! (`core` has no `sqrt`, `ln` or `exp` on stable). Accurate to about
//! 1e-12 relative over the ranges used; deterministic on every target.

/// Square root (0 for non-positive or NaN input).
pub fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return x;
    }
    // Initial guess from halving the exponent, then Newton (quadratic).
    let mut y = f64::from_bits((x.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + x / y);
    }
    y
}

const LN2: f64 = core::f64::consts::LN_2;

/// Natural logarithm (−∞ for 0, NaN for negative input).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // x = m · 2^e with m in [1, 2) (subnormals scaled first).
    let (mut x, mut e) = (x, 0i64);
    if x < f64::MIN_POSITIVE {
        x *= (1u64 << 54) as f64;
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    // Centre m around 1: [0.75, 1.5).
    if m > 1.5 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(z), z = (m-1)/(m+1), |z| < 0.2.
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut term = z;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..14 {
        sum += term / k;
        term *= z2;
        k += 2.0;
    }
    2.0 * sum + e as f64 * LN2
}

/// e^x (saturates to 0 and +∞ outside ±700).
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 700.0 {
        return f64::INFINITY;
    }
    if x < -700.0 {
        return 0.0;
    }
    // x = k ln2 + r, |r| <= ln2/2.
    let kf = x / LN2;
    let k = if kf >= 0.0 {
        (kf + 0.5) as i64
    } else {
        (kf - 0.5) as i64
    };
    let r = x - k as f64 * LN2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..18 {
        term *= r / i as f64;
        sum += term;
    }
    // Scale by 2^k in two steps so that intermediate values stay normal.
    let half = k / 2;
    let p1 = f64::from_bits(((half + 1023) as u64) << 52);
    let p2 = f64::from_bits(((k - half + 1023) as u64) << 52);
    sum * p1 * p2
}

/// 10^x.
pub fn pow10(x: f64) -> f64 {
    exp(x * core::f64::consts::LN_10)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-10 * b.abs().max(1.0)
    }

    #[test]
    fn matches_std() {
        for &x in &[
            1e-300, 1e-9, 0.001, 0.1, 0.5, 0.75, 1.0, 1.4999, 1.5001, 2.0, 3.0, 10.0, 1234.5, 1e9,
            1e300,
        ] {
            assert!(close(sqrt(x), x.sqrt()), "sqrt {x}");
            assert!(close(ln(x), x.ln()), "ln {x}: {} vs {}", ln(x), x.ln());
        }
        for &x in &[
            -50.0, -3.3, -1.0, -0.1, 0.0, 0.2, 1.0, 2.5, 10.0, 100.0, 600.0,
        ] {
            assert!(close(exp(x), x.exp()), "exp {x}: {} vs {}", exp(x), x.exp());
        }
        assert!(close(pow10(2.0), 100.0));
        assert!(close(pow10(-0.25), 10f64.powf(-0.25)));
        assert_eq!(sqrt(0.0), 0.0);
        assert_eq!(sqrt(-1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(exp(-800.0), 0.0);
    }
}
