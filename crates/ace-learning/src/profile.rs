//! The persisted context: what the learner knows, as a fixed-size,
//! versioned, checksummed byte image (little-endian). The facade writes it
//! to `HAKMEM_ACE_PROFILE` at exit and loads it at start, so a run begins
//! from what the previous one learned.
//!
//! Layout ([`PROFILE_LEN`] bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `HKACEPRF` |
//! | 8 | 4 | format version ([`VERSION`]) |
//! | 12 | 4 | number of size classes |
//! | 16 | 8 | fingerprint of the class-size table (FNV-1a 64) |
//! | 24 | 4 | bandit arms per class |
//! | 28 | 4 | span strategies × 65536 + decay strategies × 256 + workload regimes |
//! | 32 | 4 | payload length |
//! | 36 | 89 per class | arm (1), base refill (4), base cap (4), refill (4), cap (4), then per arm pulls (4) and mean reward (8, IEEE bits) |
//! | … | 1 | current workload regime |
//! | … | (2 + 12 per strategy) per regime | decay phase (1), confirmed (1), per strategy value (4) and rating (8) |
//! | … | 4 | decay value in the table |
//! | … | (2 + 12 per strategy) per regime | threshold knob: phase (1), confirmed (1), per strategy value (4) and rating (8) |
//! | … | 4 | threshold value in the table |
//! | end − 8 | 8 | FNV-1a 64 of every byte before it |
//!
//! A file that is short, has another magic, version, class table, arm or
//! strategy set, a bad checksum or an out-of-range value is rejected as a
//! whole ([`ProfileError`]); nothing of it is applied.

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

use crate::elo::Elo;
use crate::elo::Phase;
use crate::learner::{Learner, ARMS, DECAY_STRATEGIES, REGIMES, SPAN_STRATEGIES};
use crate::{Knob, PolicyTable};

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"HKACEPRF";
/// Format version.
pub const VERSION: u32 = 2;
const HEADER: usize = 36;
const CLASS_REC: usize = 1 + 4 * 4 + ARMS * 12;
const DECAY_REC: usize = 1 + REGIMES * (2 + DECAY_STRATEGIES.len() * 12) + 4;
const SPAN_REC: usize = REGIMES * (2 + SPAN_STRATEGIES.len() * 12) + 4;
const SHAPE: u32 = (SPAN_STRATEGIES.len() * 65536 + DECAY_STRATEGIES.len() * 256 + REGIMES) as u32;
const PAYLOAD: usize = NUM_CLASSES * CLASS_REC + DECAY_REC + SPAN_REC;
/// Size of a profile image.
pub const PROFILE_LEN: usize = HEADER + PAYLOAD + 8;

// The layout table above and docs/ace.md ("a 7 509-byte image") state
// these sizes: a change of the format must change them, and `VERSION`.
static_assertions::const_assert_eq!(CLASS_REC, 89);
static_assertions::const_assert_eq!(PROFILE_LEN, 7509);
// Each count of the packed `SHAPE` fits its byte, and an arm or a
// strategy index is stored in one byte.
static_assertions::const_assert!(REGIMES < 256 && DECAY_STRATEGIES.len() < 256);
static_assertions::const_assert!(SPAN_STRATEGIES.len() < 256 && ARMS < 256);
/// Pull counts are capped at this on load, so a loaded run still adapts.
pub const LOADED_PULLS: u32 = 8;

/// Why a profile was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileError {
    /// Not [`PROFILE_LEN`] bytes.
    Length(usize),
    /// Not a hakmem ACE profile.
    Magic,
    /// Another format version.
    Version(u32),
    /// Written by a build with another class table, arm or strategy set.
    Foreign,
    /// The checksum does not match (corrupt file).
    Checksum,
    /// A field is out of range.
    Value(&'static str),
}

impl core::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProfileError::Length(n) => write!(f, "{n} bytes, expected {PROFILE_LEN}"),
            ProfileError::Magic => f.write_str("not a hakmem ACE profile (bad magic)"),
            ProfileError::Version(v) => write!(f, "format version {v}, expected {VERSION}"),
            ProfileError::Foreign => {
                f.write_str("written by a build with different size classes or policies")
            }
            ProfileError::Checksum => f.write_str("checksum mismatch (corrupt file)"),
            ProfileError::Value(w) => write!(f, "invalid value: {w}"),
        }
    }
}

/// FNV-1a 64.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn class_fingerprint() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in CLASS_SIZE.iter() {
        for b in s.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        a.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }
}

/// Writes the learner's state and the current `table` into `out`.
pub fn encode(l: &Learner, table: &PolicyTable, out: &mut [u8; PROFILE_LEN]) {
    let mut w = Writer { buf: out, pos: 0 };
    w.put(&MAGIC);
    w.u32(VERSION);
    w.u32(NUM_CLASSES as u32);
    w.u64(class_fingerprint());
    w.u32(ARMS as u32);
    w.u32(SHAPE);
    w.u32(PAYLOAD as u32);
    for c in 0..NUM_CLASSES {
        let (base, base_cap) = l.class_base(c);
        // The arm in force: a class still waiting for its first full
        // window on the prior's arm runs the base policy, arm 0, and is
        // saved so (its bandit statistics are kept as they are).
        w.u8(if l.classes[c].armed {
            l.class_arm(c)
        } else {
            0
        } as u8);
        w.u32(base);
        w.u32(base_cap);
        w.u32(table.refill_count(c));
        w.u32(table.cache_cap(c));
        let b = l.class_bandit(c);
        for a in 0..ARMS {
            w.u32(b.pulls(a));
            w.f64(b.mean(a));
        }
    }
    w.u8(l.regime() as u8);
    for r in 0..REGIMES {
        put_elo(&mut w, l.decay_in(r));
    }
    w.u32(table.knob(Knob::DecayMs));
    for r in 0..REGIMES {
        put_elo(&mut w, l.span_in(r));
    }
    w.u32(table.knob(Knob::SpanThreshold));
    let sum = fnv1a(&w.buf[..w.pos]);
    w.u64(sum);
    debug_assert_eq!(w.pos, PROFILE_LEN);
}

fn put_elo<const K: usize>(w: &mut Writer<'_>, e: &Elo<K>) {
    w.u8(e.phase() as u8);
    w.u8(e.confirmed() as u8);
    for i in 0..K {
        w.u32(e.value(i));
        w.f64(e.rating(i));
    }
}

/// Reads what [`put_elo`] wrote into `e` (checking the strategy values).
fn get_elo<const K: usize>(
    r: &mut Reader<'_>,
    e: &mut Elo<K>,
    values: &[u32; K],
) -> Result<(), ProfileError> {
    let phase = Phase::from_u8(r.u8()).ok_or(ProfileError::Value("phase"))?;
    let confirmed = r.u8() as usize;
    if confirmed >= K {
        return Err(ProfileError::Value("confirmed strategy"));
    }
    let mut ratings = [0.0; K];
    for (i, rating) in ratings.iter_mut().enumerate() {
        if r.u32() != values[i] {
            return Err(ProfileError::Foreign);
        }
        *rating = r.f64();
        if !rating.is_finite() {
            return Err(ProfileError::Value("rating"));
        }
    }
    e.restore(ratings, confirmed, phase);
    Ok(())
}

/// Checks `bytes` and, if it is a valid profile, loads it into `l`: each
/// class resumes its saved arm with its bandit statistics (pull counts
/// capped at [`LOADED_PULLS`]), and the decay knob, in every workload
/// regime, its ratings, confirmed strategy and phase (FROZEN stays FROZEN;
/// otherwise LEARN). On error
/// `l` is unchanged. Apply the result with [`Learner::apply_all`].
pub fn decode_into(bytes: &[u8], l: &mut Learner) -> Result<(), ProfileError> {
    if bytes.len() != PROFILE_LEN {
        return Err(ProfileError::Length(bytes.len()));
    }
    if bytes[..8] != MAGIC {
        return Err(ProfileError::Magic);
    }
    let mut r = Reader { buf: bytes, pos: 8 };
    let v = r.u32();
    if v != VERSION {
        return Err(ProfileError::Version(v));
    }
    let stored = u64::from_le_bytes(bytes[PROFILE_LEN - 8..].try_into().unwrap_or([0; 8]));
    if fnv1a(&bytes[..PROFILE_LEN - 8]) != stored {
        return Err(ProfileError::Checksum);
    }
    if r.u32() != NUM_CLASSES as u32
        || r.u64() != class_fingerprint()
        || r.u32() != ARMS as u32
        || r.u32() != SHAPE
        || r.u32() != PAYLOAD as u32
    {
        return Err(ProfileError::Foreign);
    }
    let mut n = l.clone();
    for c in 0..NUM_CLASSES {
        let arm = r.u8() as usize;
        if arm >= ARMS {
            return Err(ProfileError::Value("arm"));
        }
        let (_base, _base_cap, _refill, _cap) = (r.u32(), r.u32(), r.u32(), r.u32());
        n.classes[c].arm = arm as u8;
        // The saved arm is the one that was in force (see `encode`).
        n.classes[c].armed = true;
        for a in 0..ARMS {
            let pulls = r.u32();
            let mean = r.f64();
            if !mean.is_finite() || !(-0.001..=1.001).contains(&mean) {
                return Err(ProfileError::Value("mean reward"));
            }
            n.classes[c].ucb.set_arm(a, pulls.min(LOADED_PULLS), mean);
        }
    }
    let regime = r.u8() as usize;
    if regime >= REGIMES {
        return Err(ProfileError::Value("regime"));
    }
    n.regime = regime;
    for reg in 0..REGIMES {
        get_elo(&mut r, &mut n.decay[reg], &DECAY_STRATEGIES)?;
    }
    let _decay_value = r.u32();
    for reg in 0..REGIMES {
        get_elo(&mut r, &mut n.span[reg], &SPAN_STRATEGIES)?;
    }
    let _span_value = r.u32();
    *l = n;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learner::LearnerConfig;

    fn learned() -> (PolicyTable, Learner) {
        let t = PolicyTable::new();
        let mut l = Learner::new(LearnerConfig::DEFAULT, &t, 500, 0);
        l.classes[5].arm = 2; // four times the base refill count
        l.classes[5].armed = true; // in force, as after a full window
        l.classes[5].ucb.set_arm(2, 30, 0.9);
        l.classes[5].ucb.set_arm(0, 30, 0.5);
        let mut r = [1500.0; DECAY_STRATEGIES.len()];
        r[2] = 1620.0;
        l.decay[0].restore(r, 2, Phase::Frozen);
        l.decay[2].restore([1500.0; DECAY_STRATEGIES.len()], 5, Phase::Frozen);
        l.span[1].restore([1490.0, 1580.0, 1430.0], 1, Phase::Frozen);
        (t, l)
    }

    #[test]
    fn round_trip() {
        let (t, l) = learned();
        let mut img = [0u8; PROFILE_LEN];
        encode(&l, &t, &mut img);
        let mut fresh = Learner::new(LearnerConfig::DEFAULT, &t, 500, 0);
        decode_into(&img, &mut fresh).unwrap();
        assert_eq!(fresh.class_arm(5), 2);
        assert_eq!(fresh.class_bandit(5).pulls(2), LOADED_PULLS);
        assert_eq!(fresh.class_bandit(5).mean(2), 0.9);
        assert_eq!(fresh.decay().phase(), Phase::Frozen);
        assert_eq!(fresh.decay().confirmed(), 2);
        assert_eq!(fresh.decay().rating(2), 1620.0);
        assert_eq!(fresh.decay_in(2).confirmed(), 5);
        assert_eq!(fresh.decay_in(1).phase(), Phase::Learn);
        assert_eq!(fresh.span_in(1).phase(), Phase::Frozen);
        assert_eq!(
            fresh.span_in(1).value(fresh.span_in(1).confirmed()),
            32 << 10
        );
        assert_eq!(fresh.span_in(1).rating(1), 1580.0);
        assert_eq!(fresh.span_in(2).phase(), Phase::Learn);
        let w = t.writer().unwrap();
        assert!(fresh.apply_all(&w) >= 2);
        assert_eq!(t.refill_count(5), 4 * crate::default_refill(5));
        assert_eq!(t.knob(Knob::DecayMs), DECAY_STRATEGIES[2]);
    }

    #[test]
    fn rejects_corrupt_and_foreign_images() {
        let (t, l) = learned();
        let mut img = [0u8; PROFILE_LEN];
        encode(&l, &t, &mut img);
        let mut fresh = Learner::new(LearnerConfig::DEFAULT, &t, 500, 0);
        let before = fresh.class_arm(5);

        let mut bad = img;
        bad[100] ^= 1;
        assert_eq!(decode_into(&bad, &mut fresh), Err(ProfileError::Checksum));
        let mut bad = img;
        bad[0] = b'X';
        assert_eq!(decode_into(&bad, &mut fresh), Err(ProfileError::Magic));
        let mut bad = img;
        bad[8] = 9;
        assert_eq!(decode_into(&bad, &mut fresh), Err(ProfileError::Version(9)));
        assert_eq!(
            decode_into(&img[..100], &mut fresh),
            Err(ProfileError::Length(100))
        );
        // A different class table, with a valid checksum.
        let mut bad = img;
        bad[16] ^= 0xff;
        let sum = fnv1a(&bad[..PROFILE_LEN - 8]).to_le_bytes();
        bad[PROFILE_LEN - 8..].copy_from_slice(&sum);
        assert_eq!(decode_into(&bad, &mut fresh), Err(ProfileError::Foreign));
        // An out-of-range arm, with a valid checksum.
        let mut bad = img;
        bad[HEADER] = ARMS as u8;
        let sum = fnv1a(&bad[..PROFILE_LEN - 8]).to_le_bytes();
        bad[PROFILE_LEN - 8..].copy_from_slice(&sum);
        assert_eq!(
            decode_into(&bad, &mut fresh),
            Err(ProfileError::Value("arm"))
        );
        assert_eq!(fresh.class_arm(5), before, "nothing applied on error");
    }
}
