//! Digits in the terminal: each image as ASCII shades, with the label, the network's guess and
//! its confidence underneath, a few digits to a row.

use ndarray::ArrayView2;

/// Shades from background to full ink, one character per tenth of the pixel range.
const SHADES: &[u8] = b" .:-=+*#%@";

/// Digits printed side by side on one row of output (each is as wide as its image).
const DIGITS_PER_ROW: usize = 3;

/// Blank columns between two digits on a row.
const GAP: usize = 3;

/// The side of a square image of `pixels` pixels, if it is one (784 → 28).
pub fn square_side(pixels: usize) -> Option<usize> {
    let side = (pixels as f64).sqrt().round() as usize;
    (side > 0 && side * side == pixels).then_some(side)
}

/// Index and value of the first largest entry of `values` (0 and −∞ for an empty slice;
/// NaN never wins).
pub fn first_max(values: impl IntoIterator<Item = f32>) -> (usize, f32) {
    values
        .into_iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}

/// An image `width` pixels wide as lines of ASCII art, one character per column and two pixel
/// rows per line (a terminal cell is about twice as tall as it is wide).
///
/// Pixels run from 0 (background) to 1 (ink); values outside are clamped.
pub fn ascii_art(pixels: &[f32], width: usize) -> Vec<String> {
    if width == 0 {
        return Vec::new();
    }
    let rows: Vec<&[f32]> = pixels.chunks(width).collect();
    rows.chunks(2)
        .map(|pair| {
            (0..width)
                .map(|c| {
                    let values: Vec<f32> =
                        pair.iter().filter_map(|row| row.get(c).copied()).collect();
                    let mean = values.iter().sum::<f32>() / values.len().max(1) as f32;
                    let level = (mean.clamp(0.0, 1.0) * (SHADES.len() - 1) as f32).round() as usize;
                    char::from(SHADES[level.min(SHADES.len() - 1)])
                })
                .collect()
        })
        .collect()
}

/// Prints the first `count` images of a test set as ASCII art, each captioned with its index,
/// its label, the network's guess and the guess's output (its confidence, for softmax outputs).
///
/// # Shapes
/// `images`: (n, side·side), pixels in [0, 1]; `targets`: (n, classes), one-hot;
/// `outputs`: (n, classes), the network's outputs for `images`.
///
/// # Errors
/// A message if the images are not square or the three arrays have different row counts.
pub fn print_digits(
    images: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
    outputs: ArrayView2<'_, f32>,
    count: usize,
) -> Result<(), String> {
    let side = square_side(images.ncols())
        .ok_or_else(|| format!("images of {} pixels are not square", images.ncols()))?;
    if targets.nrows() != images.nrows() || outputs.nrows() != images.nrows() {
        return Err(format!(
            "{} images but {} targets and {} outputs",
            images.nrows(),
            targets.nrows(),
            outputs.nrows()
        ));
    }
    let count = count.min(images.nrows());
    let mut right = 0;
    let panels: Vec<Vec<String>> = (0..count)
        .map(|i| {
            let pixels: Vec<f32> = images.row(i).iter().copied().collect();
            let (label, _) = first_max(targets.row(i).iter().copied());
            let (guess, confidence) = first_max(outputs.row(i).iter().copied());
            right += usize::from(guess == label);
            let mut lines = ascii_art(&pixels, side);
            lines.push(format!("test #{i}: a {label}"));
            lines.push(format!(
                "guess {guess} ({:.1} %) {}",
                100.0 * confidence,
                if guess == label { "✓" } else { "✗ wrong" }
            ));
            lines
        })
        .collect();
    for row in panels.chunks(DIGITS_PER_ROW) {
        let height = row.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            let text: Vec<String> = row
                .iter()
                .map(|panel| {
                    let cell = panel.get(line).map_or("", String::as_str);
                    let pad = (side + GAP).saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            println!("{}", text.concat().trim_end());
        }
        println!();
    }
    println!("{right} of these {count} test digits guessed right");
    Ok(())
}
