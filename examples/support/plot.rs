//! Pictures of a training run: the loss and accuracy per epoch and the test set's confusion matrix
//! as SVG charts (drawn with plotters, whose SVG backend needs no fonts: the viewer draws the
//! text), and the test digits the network got most confidently wrong as a PNG grid (drawn pixel by
//! pixel here, labels in a small bitmap font of our own).

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::show::{first_max, square_side};

/// What `--plot` records after each epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochPoint {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss while the epoch ran (each batch's loss before its update).
    pub running_train_loss: f64,
    /// Mean loss on the whole training set, evaluated after the epoch.
    pub train_loss: f64,
    /// Accuracy on the whole training set, evaluated after the epoch, in [0, 1].
    pub train_accuracy: f64,
    /// Mean loss on the test set after the epoch.
    pub test_loss: f64,
    /// Accuracy on the test set after the epoch, in [0, 1].
    pub test_accuracy: f64,
}

/// File name of the loss and accuracy chart.
pub const CURVES_FILE: &str = "learning-curves.svg";
/// File name of the confusion matrix.
pub const CONFUSION_FILE: &str = "confusion-matrix.svg";
/// File name of the grid of confident mistakes.
pub const MISTAKES_FILE: &str = "confident-mistakes.png";

/// Writes the three pictures of a run into `dir` (created if missing) and returns their paths.
///
/// # Shapes
/// `test_images`: (n, side·side), pixels in [0, 1]; `test_targets`: (n, classes), one-hot;
/// `test_outputs`: (n, classes), the trained network's outputs for `test_images`.
///
/// # Errors
/// Any error creating the directory or writing a file, and a message for arrays that do not fit
/// together (non-square images, different row counts or class counts).
pub fn write_all(
    dir: &Path,
    title: &str,
    history: &[EpochPoint],
    test_images: ArrayView2<'_, f32>,
    test_targets: ArrayView2<'_, f32>,
    test_outputs: ArrayView2<'_, f32>,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let n = test_images.nrows();
    if test_targets.nrows() != n
        || test_outputs.nrows() != n
        || test_targets.ncols() != test_outputs.ncols()
        || test_targets.ncols() == 0
    {
        return Err(format!(
            "cannot plot: {n} test images, targets {:?}, outputs {:?}",
            test_targets.dim(),
            test_outputs.dim()
        )
        .into());
    }
    let side = square_side(test_images.ncols()).ok_or_else(|| {
        format!(
            "cannot plot images of {} pixels: not square",
            test_images.ncols()
        )
    })?;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the plot directory {}: {e}", dir.display()))?;

    let classes = test_targets.ncols();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut mistakes = Vec::new();
    for i in 0..n {
        let (label, _) = first_max(test_targets.row(i).iter().copied());
        let (guess, confidence) = first_max(test_outputs.row(i).iter().copied());
        confusion[label][guess] += 1;
        if guess != label {
            mistakes.push(Mistake {
                index: i,
                label,
                guess,
                confidence,
            });
        }
    }
    // Most confident first; ties (and NaN) in test-set order.
    mistakes.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    mistakes.truncate(MISTAKES_SHOWN);

    let paths = [CURVES_FILE, CONFUSION_FILE, MISTAKES_FILE].map(|name| dir.join(name));
    learning_curves(&paths[0], title, history)?;
    confusion_matrix(&paths[1], title, &confusion)?;
    mistakes_grid(&paths[2], &mistakes, test_images, side)?;
    Ok(paths.to_vec())
}

/// Colours of the series: training in blue, test in orange.
const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOUR: RGBColor = RGBColor(230, 110, 10);

/// One line of a chart: its legend, colour, dash, points (epoch, value) and how its last value
/// is written beside the line's end.
struct Series {
    name: &'static str,
    colour: RGBColor,
    dashed: bool,
    points: Vec<(i32, f64)>,
    value: fn(f64) -> String,
}

/// Two line charts side by side: loss per epoch (the training set's, evaluated after each
/// epoch and as the running mean during it, and the test set's) and accuracy per epoch
/// (training and test sets, evaluated after each epoch). The last value of each line is written
/// at its end.
///
/// # Errors
/// Writing the file.
pub fn learning_curves(
    path: &Path,
    title: &str,
    history: &[EpochPoint],
) -> Result<(), Box<dyn Error>> {
    let canvas = SVGBackend::new(path, (1000, 440)).into_drawing_area();
    canvas.fill(&WHITE)?;
    let root = canvas.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(500);
    let at = |value: fn(&EpochPoint) -> f64| -> Vec<(i32, f64)> {
        history.iter().map(|p| (p.epoch as i32, value(p))).collect()
    };
    let loss = |v: f64| format!("{v:.4}");
    let per_cent = |v: f64| format!("{v:.2} %");
    let train = "train, evaluated after each epoch";

    let losses = [
        Series {
            name: train,
            colour: TRAIN_COLOUR,
            dashed: false,
            points: at(|p| p.train_loss),
            value: loss,
        },
        Series {
            name: "train, running mean during the epoch",
            colour: TRAIN_COLOUR,
            dashed: true,
            points: at(|p| p.running_train_loss),
            value: loss,
        },
        Series {
            name: "test, after each epoch",
            colour: TEST_COLOUR,
            dashed: false,
            points: at(|p| p.test_loss),
            value: loss,
        },
    ];
    let top = finite_values(&losses).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.25 } else { 1.0 };
    let caption = "loss (mean per sample)";
    panel(
        &canvas,
        &left,
        caption,
        0.0..top,
        &losses,
        SeriesLabelPosition::UpperRight,
        3,
    )?;

    let accuracies = [
        Series {
            name: train,
            colour: TRAIN_COLOUR,
            dashed: false,
            points: at(|p| 100.0 * p.train_accuracy),
            value: per_cent,
        },
        Series {
            name: "test, after each epoch",
            colour: TEST_COLOUR,
            dashed: false,
            points: at(|p| 100.0 * p.test_accuracy),
            value: per_cent,
        },
    ];
    let lowest = finite_values(&accuracies).fold(100.0, f64::min);
    let bottom = (((lowest - 1.0) / 2.0).floor() * 2.0).clamp(0.0, 98.0);
    panel(
        &canvas,
        &right,
        "accuracy (%)",
        bottom..100.0,
        &accuracies,
        SeriesLabelPosition::LowerRight,
        1,
    )?;
    canvas.present()?;
    Ok(())
}

/// The finite values of all the series.
fn finite_values(series: &[Series]) -> impl Iterator<Item = f64> + '_ {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
}

/// One line chart against the epoch, drawn in `area`; the values at the lines' ends are written
/// on `canvas` (the whole picture), moved apart where they would overlap.
fn panel(
    canvas: &DrawingArea<SVGBackend<'_>, Shift>,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    y_range: std::ops::Range<f64>,
    series: &[Series],
    legend: SeriesLabelPosition,
    y_decimals: usize,
) -> Result<(), Box<dyn Error>> {
    // The last epoch drawn (a resumed run's first may not be 1).
    let epochs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1);
    // Integer epochs from 0 (unlabelled) to some room on the right of the last one.
    let x_range = 0..epochs + 1 + epochs / 6;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .max_light_lines(1)
        .x_labels(epochs.min(12) as usize + 2)
        .x_label_formatter(&|&x| {
            if (1..=epochs).contains(&x) {
                x.to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
        .draw()?;
    let mut ends = Vec::new();
    for line in series {
        let style = line.colour.stroke_width(2);
        let points = line.points.iter().copied();
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))?
                .label(line.name)
                .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 20, y)], 5, 3, style));
        } else {
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, line.colour.filled())),
        )?;
        if let Some(&last) = line.points.last() {
            ends.push((
                chart.backend_coord(&last),
                (line.value)(last.1),
                line.colour,
            ));
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    // Top to bottom, at least a line apart.
    ends.sort_by_key(|end| end.0 .1);
    let mut previous = i32::MIN;
    for ((x, y), text, colour) in ends {
        let y = y.max(previous.saturating_add(16));
        previous = y;
        let style = TextStyle::from(("sans-serif", 14).into_font())
            .color(&colour)
            .pos(Pos::new(HPos::Left, VPos::Center));
        canvas.draw(&Text::new(text, (x + 8, y), style))?;
    }
    Ok(())
}

/// Side of one cell of the confusion matrix, in pixels.
const CELL: i32 = 50;

/// The confusion matrix as a heat map with the count in every cell: row = true digit, column =
/// the network's guess; the diagonal (right) is shaded green by the share of its row, the rest
/// (mistakes) red by the count against the largest mistake count. A last column gives each row's
/// share guessed right.
///
/// # Errors
/// Writing the file.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    counts: &[Vec<usize>],
) -> Result<(), Box<dyn Error>> {
    let classes = counts.len() as i32;
    let (left, top) = (90, 110);
    let width = (left + classes * CELL + 110) as u32;
    let height = (top + classes * CELL + 40) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;

    let total: usize = counts.iter().flatten().sum();
    let right: usize = (0..counts.len()).map(|k| counts[k][k]).sum();
    let largest_mistake = counts
        .iter()
        .enumerate()
        .flat_map(|(t, row)| {
            row.iter()
                .enumerate()
                .filter(move |&(g, _)| g != t)
                .map(|(_, &c)| c)
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let font = |size: f64, h: HPos| {
        TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, VPos::Center))
    };
    let centre = font(15.0, HPos::Center);
    root.draw(&Text::new(
        title.to_string(),
        (width as i32 / 2, 18),
        font(17.0, HPos::Center),
    ))?;
    root.draw(&Text::new(
        format!(
            "confusion matrix of the test set: {right} of {total} right ({:.2} %)",
            100.0 * right as f64 / total.max(1) as f64
        ),
        (width as i32 / 2, 44),
        font(15.0, HPos::Center),
    ))?;
    let grid_right = left + classes * CELL;
    root.draw(&Text::new(
        "guessed digit",
        (left + classes * CELL / 2, top - 42),
        centre.clone(),
    ))?;
    root.draw(&Text::new(
        "true digit",
        (left - 52, top + classes * CELL / 2),
        centre.clone().transform(FontTransform::Rotate270),
    ))?;
    root.draw(&Text::new(
        "right",
        (grid_right + 50, top - 18),
        centre.clone(),
    ))?;
    for k in 0..classes {
        let middle = k * CELL + CELL / 2;
        root.draw(&Text::new(
            k.to_string(),
            (left + middle, top - 18),
            centre.clone(),
        ))?;
        root.draw(&Text::new(
            k.to_string(),
            (left - 20, top + middle),
            centre.clone(),
        ))?;
    }
    for (t, row) in counts.iter().enumerate() {
        let row_total: usize = row.iter().sum();
        for (g, &count) in row.iter().enumerate() {
            let (x, y) = (left + g as i32 * CELL, top + t as i32 * CELL);
            let (fill, strength) = if g == t {
                let share = count as f64 / row_total.max(1) as f64;
                (RGBColor(26, 140, 70), share)
            } else {
                let share = (count as f64 / largest_mistake as f64).sqrt();
                (RGBColor(205, 40, 40), share)
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL, y + CELL)],
                fill.mix(strength).filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL, y + CELL)],
                BLACK.mix(0.15),
            ))?;
            let ink = if strength > 0.55 {
                WHITE.to_rgba()
            } else if count == 0 {
                BLACK.mix(0.3)
            } else {
                BLACK.to_rgba()
            };
            let style = centre.clone().color(&ink);
            root.draw(&Text::new(
                count.to_string(),
                (x + CELL / 2, y + CELL / 2),
                style,
            ))?;
        }
        let share = 100.0 * row[t] as f64 / row_total.max(1) as f64;
        root.draw(&Text::new(
            format!("{share:.1} %"),
            (grid_right + 50, top + t as i32 * CELL + CELL / 2),
            centre.clone(),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Test digits the network got wrong, with its guess and the output it gave that guess.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mistake {
    /// Row in the test set.
    index: usize,
    /// The true digit.
    label: usize,
    /// The network's guess.
    guess: usize,
    /// The network's output for its guess (a probability, for softmax outputs).
    confidence: f32,
}

/// Mistakes drawn in the grid, at most.
const MISTAKES_SHOWN: usize = 24;
/// Mistakes per row of the grid.
const GRID_COLUMNS: usize = 6;
/// Screen pixels per image pixel.
const ZOOM: usize = 3;
/// Screen pixels per font pixel.
const TEXT_SCALE: usize = 2;
/// Space around everything, in pixels.
const PAD: usize = 16;

const INK: [u8; 3] = [20, 20, 20];
const TRUE_INK: [u8; 3] = [0, 120, 50];
const GUESS_INK: [u8; 3] = [200, 30, 30];
const GREY: [u8; 3] = [130, 130, 130];

/// The grid of mistakes as a PNG: each digit zoomed, dark on white, with "true → guess" in green
/// and red and the confidence underneath.
fn mistakes_grid(
    path: &Path,
    mistakes: &[Mistake],
    images: ArrayView2<'_, f32>,
    side: usize,
) -> Result<(), Box<dyn Error>> {
    let image_px = side * ZOOM;
    let line = (GLYPH_HEIGHT + 3) * TEXT_SCALE;
    let cell_width = image_px.max(6 * GLYPH_ADVANCE * TEXT_SCALE) + PAD;
    let cell_height = image_px + 2 * line + PAD;
    let header = 2 * line + PAD / 2;
    let rows = mistakes.len().div_ceil(GRID_COLUMNS).max(1);
    let width = 2 * PAD + GRID_COLUMNS * cell_width - PAD;
    let height = PAD + header + rows * cell_height;
    let mut canvas = Canvas::new(width, height);

    canvas.text(PAD, PAD, "MOST CONFIDENT MISTAKES ON THE TEST SET", INK);
    let legend_y = PAD + line;
    let mut x = canvas.text(PAD, legend_y, "TRUE", TRUE_INK);
    x = canvas.text(x, legend_y, " → ", GREY);
    x = canvas.text(x, legend_y, "GUESS", GUESS_INK);
    canvas.text(x, legend_y, ", CONFIDENCE", INK);
    if mistakes.is_empty() {
        canvas.text(PAD, PAD + header, "NONE: EVERY TEST DIGIT IS RIGHT", INK);
    }
    for (n, mistake) in mistakes.iter().enumerate() {
        let x0 = PAD + (n % GRID_COLUMNS) * cell_width;
        let y0 = PAD + header + (n / GRID_COLUMNS) * cell_height;
        canvas.rectangle(
            x0.saturating_sub(1),
            y0.saturating_sub(1),
            image_px + 2,
            image_px + 2,
            GREY,
        );
        for (p, &value) in images.row(mistake.index).iter().enumerate() {
            let shade = 255 - (value.clamp(0.0, 1.0) * 255.0).round() as u8;
            canvas.fill(
                x0 + (p % side) * ZOOM,
                y0 + (p / side) * ZOOM,
                ZOOM,
                ZOOM,
                [shade; 3],
            );
        }
        let text_y = y0 + image_px + 4;
        let mut x = canvas.text(x0, text_y, &mistake.label.to_string(), TRUE_INK);
        x = canvas.text(x, text_y, " → ", GREY);
        canvas.text(x, text_y, &mistake.guess.to_string(), GUESS_INK);
        canvas.text(
            x0,
            text_y + line,
            &format!("{:.1}%", 100.0 * mistake.confidence),
            INK,
        );
    }
    canvas.write_png(path)
}

/// An RGB image in memory.
struct Canvas {
    width: usize,
    height: usize,
    /// Row-major RGB bytes.
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    /// Fills a rectangle, clipped to the canvas.
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let at = (row * self.width + col) * 3;
                self.pixels[at..at + 3].copy_from_slice(&colour);
            }
        }
    }

    /// The outline of a rectangle, one pixel wide.
    fn rectangle(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        self.fill(x, y, w, 1, colour);
        self.fill(x, y + h.saturating_sub(1), w, 1, colour);
        self.fill(x, y, 1, h, colour);
        self.fill(x + w.saturating_sub(1), y, 1, h, colour);
    }

    /// Writes `text` in the bitmap font with its top-left corner at (x, y); returns the x after
    /// it. Lower case is drawn as upper case; a character the font lacks is drawn as a box.
    fn text(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) -> usize {
        let mut x = x;
        for c in text.chars() {
            let rows = glyph(c.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                        self.fill(
                            x + col * TEXT_SCALE,
                            y + r * TEXT_SCALE,
                            TEXT_SCALE,
                            TEXT_SCALE,
                            colour,
                        );
                    }
                }
            }
            x += GLYPH_ADVANCE * TEXT_SCALE;
        }
        x
    }

    /// Saves the canvas as an 8-bit RGB PNG.
    fn write_png(&self, path: &Path) -> Result<(), Box<dyn Error>> {
        let file =
            File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut encoder =
            png::Encoder::new(BufWriter::new(file), self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(())
    }
}

/// Font pixels per glyph, across.
const GLYPH_WIDTH: usize = 5;
/// Font pixels per glyph, down.
const GLYPH_HEIGHT: usize = 7;
/// Font pixels from one glyph to the next.
const GLYPH_ADVANCE: usize = GLYPH_WIDTH + 1;

/// A 5 × 7 glyph: seven rows, top first, each a 5-bit row of pixels with the leftmost in bit 4.
fn glyph(c: char) -> [u8; GLYPH_HEIGHT] {
    match c {
        '0' => [
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
        '1' => [
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        '2' => [
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
        '3' => [
            0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
        ],
        '4' => [
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
        '5' => [
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
        '6' => [
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
        '7' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
        '8' => [
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
        '9' => [
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
        'A' => [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'B' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
        ],
        'C' => [
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
        'D' => [
            0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100,
        ],
        'E' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
        ],
        'F' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'G' => [
            0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
        ],
        'H' => [
            0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'I' => [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        'J' => [
            0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
        ],
        'K' => [
            0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
        ],
        'L' => [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        'M' => [
            0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
        ],
        'N' => [
            0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
        ],
        'O' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'P' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'Q' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
        ],
        'R' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        'S' => [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        'T' => [
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'U' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'V' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
        ],
        'W' => [
            0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
        ],
        'X' => [
            0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
        ],
        'Y' => [
            0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'Z' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
        ],
        ' ' => [0; GLYPH_HEIGHT],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ',' => [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        ':' => [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        '%' => [
            0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011,
        ],
        '/' => [
            0b00001, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b10000,
        ],
        '(' => [
            0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010,
        ],
        ')' => [
            0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000,
        ],
        '-' => [0, 0, 0, 0b11111, 0, 0, 0],
        '→' => [0, 0b00100, 0b00010, 0b11111, 0b00010, 0b00100, 0],
        _ => [
            0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111,
        ],
    }
}
