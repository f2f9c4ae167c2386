//! One stderr line per policy change (`HAKMEM_ACE_LOG=1`). The worker is
//! an ordinary thread, never inside an allocation call: `eprintln!` is
//! fine here.

use hakmem_ace_learning::{Change, REGIME_NAMES};
use hakmem_ptr_bridge::CLASS_SIZE;

pub(super) fn log_change(c: &Change) {
    match *c {
        Change::Class {
            class,
            refill,
            cap,
            arm,
            reward,
        } => eprintln!(
            "hakmem ace: class {class} ({} B): refill {} -> {}, cap {} -> {} (arm {arm}, last reward {reward:.3})",
            CLASS_SIZE[class], refill.0, refill.1, cap.0, cap.1
        ),
        Change::Knob {
            knob,
            value,
            phase,
            rating,
            regime,
        } => eprintln!(
            "hakmem ace: {} {} -> {} ({} regime, {}, rating {rating:.0})",
            knob.name(),
            value.0,
            value.1,
            REGIME_NAMES[regime],
            phase.name()
        ),
        Change::Phase {
            knob,
            transition,
            confirmed_value,
            regime,
        } => eprintln!(
            "hakmem ace: {} ({} regime) {} -> {} (confirmed {confirmed_value})",
            knob.name(),
            REGIME_NAMES[regime],
            transition.from.name(),
            transition.to.name()
        ),
        Change::Shift {
            l1,
            rate_log2,
            regime,
            phase,
        } => eprintln!(
            "hakmem ace: workload shift (mix distance {l1:.2}, rate change 2^{rate_log2:.1}): {} regime, {}",
            REGIME_NAMES[regime],
            phase.name()
        ),
        Change::Idle { quiet_ms } => {
            eprintln!("hakmem ace: idle for {quiet_ms} ms: trimming")
        }
        Change::Prefill { classes, blocks: 0 } => {
            eprintln!("hakmem ace: prefill budget cleared ({classes} classes)")
        }
        Change::Prefill { classes, blocks } => eprintln!(
            "hakmem ace: prefill budget for the next refills: {classes} classes, {blocks} blocks in all"
        ),
    }
}
