//! Random draws keyed by counters: 64 bits that are a pure function of (seed, epoch, sample,
//! stream, index), with no generator state carried from one draw to the next. Dropout's masks
//! ([`crate::nn::dropout`]) and augmentation's transforms ([`crate::data::augment`]) come from
//! here, so that what a sample gets does not depend on which thread or shard draws it, or on
//! where a run was stopped and resumed.

/// The stream augmentation draws its transforms from; dropout uses the layer index as the
/// stream, which never reaches this.
pub(crate) const AUGMENT_STREAM: u64 = u64::MAX;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijection of `u64` whose every output bit depends on every input
/// bit.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Folds one more word into a hash.
fn absorb(hash: u64, word: u64) -> u64 {
    mix(hash ^ mix(word.wrapping_add(GOLDEN)))
}

/// The hash of (seed, epoch, sample, stream), to which [`draw`] adds the index.
pub(crate) fn prefix(seed: u64, epoch: u64, sample: u64, stream: u64) -> u64 {
    [epoch, sample, stream]
        .into_iter()
        .fold(absorb(GOLDEN, seed), absorb)
}

/// 64 random bits for `index` under a [`prefix`].
pub(crate) fn draw(prefix: u64, index: u64) -> u64 {
    absorb(prefix, index)
}

/// The top 53 bits of a draw as a uniform number in [0, 1).
pub(crate) fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_part_changes_the_draw() {
        let base = draw(prefix(1, 2, 3, 4), 5);
        for other in [
            draw(prefix(0, 2, 3, 4), 5),
            draw(prefix(1, 0, 3, 4), 5),
            draw(prefix(1, 2, 0, 4), 5),
            draw(prefix(1, 2, 3, 0), 5),
            draw(prefix(1, 2, 3, 4), 0),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn unit_interval_stays_below_one() {
        assert_eq!(unit_interval(0), 0.0);
        assert!(unit_interval(u64::MAX) < 1.0);
    }
}
