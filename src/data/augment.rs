//! Image augmentation for training: every image shifted by up to a few pixels and, when asked,
//! rotated by a small angle, each drawn afresh per (seed, epoch, sample).
//!
//! The transform of a sample is a pure function of (seed, epoch, sample index), drawn from the
//! same counter-based hash as dropout's masks (see [`crate::nn::dropout`]), so that augmented
//! training is bit-identical for any thread count and across checkpoints.
//!
//! Images are rows of `height × width` pixels, row-major (as [`crate::data::Dataset::inputs`]
//! gives them). Pixels that a transform brings in from outside the image are 0.
//!
//! ```
//! use lernmi::data::augment::{Augment, Transform};
//!
//! // A 3×3 image moved one pixel right and one down.
//! let image = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let mut out = [0.0f32; 9];
//! let shift = Transform { dx: 1, dy: 1, angle: 0.0 };
//! shift.apply(&image, 3, 3, &mut out)?;
//! assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
//!
//! let augment = Augment::shifts(28, 28);
//! let t = augment.transform(1, 0, 17);
//! assert!(t.dx.abs() <= 2 && t.dy.abs() <= 2 && t.angle == 0.0);
//! # Ok::<(), lernmi::Error>(())
//! ```

use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::keyed::{draw, prefix, unit_interval, AUGMENT_STREAM};
use crate::{Error, Float, Result};

/// The largest shift [`Augment::validate`] accepts, in pixels.
pub const MAX_SHIFT: usize = 64;
/// The largest rotation [`Augment::validate`] accepts, in degrees.
pub const MAX_ROTATION_DEGREES: f64 = 45.0;

/// Random shifts and rotations of images, for training (see the module docs). Prediction and
/// evaluation never augment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels; `height × width` is the network's input width.
    pub width: usize,
    /// The most pixels an image moves, in each direction: shifts are drawn uniformly from
    /// −max_shift ..= max_shift, horizontally and vertically apart.
    pub max_shift: usize,
    /// The largest rotation in degrees: angles are drawn uniformly from ±max_rotation about the
    /// image's centre (bilinear sampling); 0 rotates nothing and shifts copy pixels exactly.
    pub max_rotation: f64,
}

/// One image's transform: move the content `dx` pixels right and `dy` down, after rotating it
/// by `angle` radians (clockwise on screen, where rows grow downwards) about its centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Pixels to the right (negative: to the left).
    pub dx: i64,
    /// Pixels down (negative: up).
    pub dy: i64,
    /// Rotation in radians; 0 for none.
    pub angle: f64,
}

impl Augment {
    /// Shifts of up to 2 pixels each way and no rotation, for `height × width` images.
    pub fn shifts(height: usize, width: usize) -> Self {
        Augment {
            height,
            width,
            max_shift: 2,
            max_rotation: 0.0,
        }
    }

    /// The number of pixels in an image, `height × width`.
    ///
    /// # Errors
    /// As [`Augment::validate`].
    pub fn pixels(&self) -> Result<usize> {
        self.validate()?;
        Ok(self.height * self.width)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a height or width of 0, a `height × width` that
    /// overflows, a shift above [`MAX_SHIFT`], or a rotation that is negative, not finite or
    /// above [`MAX_ROTATION_DEGREES`].
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, value: f64, reason| {
            Err(Error::InvalidHyperparameter {
                name,
                value,
                reason,
            })
        };
        if self.height == 0 || self.width == 0 {
            let value = self.height.min(self.width) as f64;
            return invalid("augment image size", value, "height and width must be ≥ 1");
        }
        if self.height.checked_mul(self.width).is_none() {
            let value = self.height as f64 * self.width as f64;
            return invalid("augment image size", value, "height × width overflows");
        }
        if self.max_shift > MAX_SHIFT {
            let value = self.max_shift as f64;
            return invalid("augment max_shift", value, "must be at most 64 pixels");
        }
        if !(self.max_rotation >= 0.0 && self.max_rotation <= MAX_ROTATION_DEGREES) {
            let reason = "must be between 0 and 45 degrees";
            return invalid("augment max_rotation", self.max_rotation, reason);
        }
        Ok(())
    }

    /// The transform of sample `sample` in epoch `epoch` of a run seeded `seed`.
    pub fn transform(&self, seed: u64, epoch: u64, sample: u64) -> Transform {
        let key = prefix(seed, epoch, sample, AUGMENT_STREAM);
        // Uniform in −s ..= s: the top 32 bits times 2s + 1, divided by 2³².
        let span = 2 * self.max_shift.min(MAX_SHIFT) as u64 + 1;
        let shift =
            |index| (((draw(key, index) >> 32) * span) >> 32) as i64 - self.max_shift as i64;
        let angle = if self.max_rotation > 0.0 {
            let u = unit_interval(draw(key, 2));
            (2.0 * u - 1.0) * self.max_rotation.to_radians()
        } else {
            0.0
        };
        Transform {
            dx: shift(0),
            dy: shift(1),
            angle,
        }
    }

    /// Writes into row i of `out` row i of `images` transformed by
    /// [`Augment::transform`]`(seed, epoch, samples[i])`.
    ///
    /// # Shapes
    /// `images`, `out`: (rows, height × width); `samples`: rows keys.
    ///
    /// # Errors
    /// As [`Augment::validate`]; [`Error::InputWidth`] if the rows are not `height × width`
    /// wide; [`Error::Shape`] if `out` is not shaped like `images` or `samples` does not hold
    /// one key per row. Nothing is written then.
    pub fn apply<F: Float>(
        &self,
        images: ArrayView2<'_, F>,
        samples: &[u64],
        seed: u64,
        epoch: u64,
        out: ArrayViewMut2<'_, F>,
    ) -> Result<()> {
        let pixels = self.pixels()?;
        if images.ncols() != pixels {
            return Err(Error::InputWidth {
                expected: pixels,
                got: images.ncols(),
            });
        }
        if out.dim() != images.dim() || samples.len() != images.nrows() {
            let what = "augmented images and sample keys (one row and one key per image)";
            return Err(Error::Shape {
                what: what.into(),
                expected: vec![images.nrows(), pixels, images.nrows()],
                got: vec![out.nrows(), out.ncols(), samples.len()],
            });
        }
        self.apply_checked(images, samples, seed, epoch, out);
        Ok(())
    }

    /// [`Augment::apply`] for callers that have checked the settings and shapes.
    pub(crate) fn apply_checked<F: Float>(
        &self,
        images: ArrayView2<'_, F>,
        samples: &[u64],
        seed: u64,
        epoch: u64,
        mut out: ArrayViewMut2<'_, F>,
    ) {
        let mut scratch = Vec::new();
        for ((image, mut target), &sample) in
            images.rows().into_iter().zip(out.rows_mut()).zip(samples)
        {
            let t = self.transform(seed, epoch, sample);
            let source = match image.as_slice() {
                Some(row) => row,
                None => {
                    scratch.clear();
                    scratch.extend(image.iter().copied());
                    &scratch[..]
                }
            };
            match target.as_slice_mut() {
                Some(row) => t.run(source, self.height, self.width, row),
                None => {
                    let mut row = vec![F::zero(); source.len()];
                    t.run(source, self.height, self.width, &mut row);
                    target.iter_mut().zip(row).for_each(|(o, v)| *o = v);
                }
            }
        }
    }
}

impl Transform {
    /// Writes `image` (height × width pixels, row-major) transformed into `out`: pixel (y, x)
    /// of `out` is pixel (y − dy, x − dx) of the image rotated by `angle`, 0 outside it.
    /// Without rotation the pixels are copied exactly.
    ///
    /// # Errors
    /// [`Error::Shape`] unless `image` and `out` both hold `height × width` pixels.
    pub fn apply<F: Float>(
        &self,
        image: &[F],
        height: usize,
        width: usize,
        out: &mut [F],
    ) -> Result<()> {
        let pixels = height.checked_mul(width);
        if pixels.is_none_or(|n| n != image.len() || n != out.len()) {
            return Err(Error::Shape {
                what: "image and its transformed copy (height × width pixels each)".into(),
                expected: vec![height, width],
                got: vec![image.len(), out.len()],
            });
        }
        self.run(image, height, width, out);
        Ok(())
    }

    /// [`Transform::apply`] on checked lengths.
    fn run<F: Float>(&self, image: &[F], height: usize, width: usize, out: &mut [F]) {
        if self.angle == 0.0 {
            self.shift(image, height, width, out);
        } else {
            self.rotate(image, height, width, out);
        }
    }

    /// A pure shift: whole rows of pixels copied, the rest zero.
    fn shift<F: Float>(&self, image: &[F], height: usize, width: usize, out: &mut [F]) {
        out.fill(F::zero());
        let (h, w) = (height as i64, width as i64);
        // Columns x of the output whose source x − dx lies inside the image.
        // Saturating: the fields are public, and any i64 must give zeros, not an overflow.
        let (x0, x1) = (self.dx.clamp(0, w), w.saturating_add(self.dx).clamp(0, w));
        if x0 >= x1 {
            return;
        }
        for y in 0..h {
            let source_y = y.saturating_sub(self.dy);
            if !(0..h).contains(&source_y) {
                continue;
            }
            let (to, from) = ((y * w) as usize, (source_y * w) as usize);
            let (x0, x1) = (x0 as usize, x1 as usize);
            let source_x0 = (x0 as i64 - self.dx) as usize;
            out[to + x0..to + x1]
                .copy_from_slice(&image[from + source_x0..from + source_x0 + (x1 - x0)]);
        }
    }

    /// Rotation and shift with bilinear sampling: output pixel q takes the image's value at
    /// R(−angle)·(q − d − c) + c, c the centre, interpolated between its four neighbours.
    fn rotate<F: Float>(&self, image: &[F], height: usize, width: usize, out: &mut [F]) {
        let (sin, cos) = self.angle.sin_cos();
        let (cy, cx) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
        let pixel = |y: i64, x: i64| {
            let inside = (0..height as i64).contains(&y) && (0..width as i64).contains(&x);
            if inside {
                image[y as usize * width + x as usize].to_f64_lossless()
            } else {
                0.0
            }
        };
        for y in 0..height {
            for x in 0..width {
                let (u, v) = (
                    x as f64 - self.dx as f64 - cx,
                    y as f64 - self.dy as f64 - cy,
                );
                let sx = cos * u + sin * v + cx;
                let sy = -sin * u + cos * v + cy;
                let (fx, fy) = (sx.floor(), sy.floor());
                let (ax, ay) = (sx - fx, sy - fy);
                let (ix, iy) = (fx as i64, fy as i64);
                let top = pixel(iy, ix) * (1.0 - ax) + pixel(iy, ix + 1) * ax;
                let bottom = pixel(iy + 1, ix) * (1.0 - ax) + pixel(iy + 1, ix + 1) * ax;
                out[y * width + x] = F::of(top * (1.0 - ay) + bottom * ay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(h: usize, w: usize) -> Vec<f64> {
        (0..h * w).map(|i| i as f64 + 1.0).collect()
    }

    /// Every shift of a 3×4 image, against the definition pixel by pixel.
    #[test]
    fn shifts_move_pixels_exactly() {
        let (h, w) = (3, 4);
        let src = image(h, w);
        for dy in -4..=4 {
            for dx in -5..=5 {
                let mut out = vec![-1.0; h * w];
                Transform { dx, dy, angle: 0.0 }
                    .apply(&src, h, w, &mut out)
                    .unwrap();
                for y in 0..h as i64 {
                    for x in 0..w as i64 {
                        let (sy, sx) = (y - dy, x - dx);
                        let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                        let want = if inside {
                            src[(sy * w as i64 + sx) as usize]
                        } else {
                            0.0
                        };
                        assert_eq!(out[(y * w as i64 + x) as usize], want, "dx {dx} dy {dy}");
                    }
                }
            }
        }
    }

    /// Shifts as far as an i64 goes leave nothing of the image, without overflowing.
    #[test]
    fn extreme_shifts_give_zeros() {
        let src = image(3, 4);
        for (dx, dy) in [(i64::MAX, 0), (i64::MIN, 0), (0, i64::MAX), (0, i64::MIN)] {
            let mut out = vec![-1.0; 12];
            Transform { dx, dy, angle: 0.0 }
                .apply(&src, 3, 4, &mut out)
                .unwrap();
            assert_eq!(out, vec![0.0; 12], "dx {dx} dy {dy}");
        }
    }

    /// A quarter turn of a 3×3 image moves its pixels exactly (up to the rounding of sin and
    /// cos), a check that the rotation turns the right way round the centre.
    #[test]
    fn a_quarter_turn_turns_about_the_centre() {
        let src = image(3, 3);
        let mut out = vec![0.0; 9];
        let t = Transform {
            dx: 0,
            dy: 0,
            angle: std::f64::consts::FRAC_PI_2,
        };
        t.run(&src, 3, 3, &mut out);
        // Clockwise on screen: the top row [1 2 3] becomes the right column.
        let want = [7.0, 4.0, 1.0, 8.0, 5.0, 2.0, 9.0, 6.0, 3.0];
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{out:?}");
        }
    }

    #[test]
    fn drawn_transforms_stay_in_range_and_use_every_shift() {
        let augment = Augment {
            max_rotation: 10.0,
            ..Augment::shifts(28, 28)
        };
        let mut seen = [[false; 5]; 2];
        for sample in 0..2000 {
            let t = augment.transform(9, 3, sample);
            assert!(t.dx.abs() <= 2 && t.dy.abs() <= 2, "{t:?}");
            assert!(t.angle.abs() <= 10f64.to_radians(), "{t:?}");
            seen[0][(t.dx + 2) as usize] = true;
            seen[1][(t.dy + 2) as usize] = true;
        }
        assert!(seen.iter().flatten().all(|&s| s), "{seen:?}");
        assert_eq!(augment.transform(9, 3, 5), augment.transform(9, 3, 5));
    }

    #[test]
    fn bad_settings_and_shapes_are_errors() {
        for bad in [
            Augment::shifts(0, 28),
            Augment {
                max_shift: 65,
                ..Augment::shifts(28, 28)
            },
            Augment {
                max_rotation: f64::NAN,
                ..Augment::shifts(28, 28)
            },
            Augment {
                max_rotation: -1.0,
                ..Augment::shifts(28, 28)
            },
            Augment::shifts(usize::MAX, 2),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidHyperparameter { .. })),
                "{bad:?}"
            );
        }
        let t = Transform {
            dx: 0,
            dy: 0,
            angle: 0.0,
        };
        let mut out = [0.0f32; 4];
        assert!(matches!(
            t.apply(&[0.0f32; 5], 2, 2, &mut out),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            t.apply(&[0.0f32; 4], usize::MAX, 2, &mut out),
            Err(Error::Shape { .. })
        ));
    }
}
