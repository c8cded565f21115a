//! The CSV, NPY and NPZ readers and the standardizer: exact values, and errors that name the
//! file, the line and the column.

#[path = "common/formats.rs"]
mod formats;

use std::path::{Path, PathBuf};

use formats::{f32_le, npy, npy_with_dict, zip};
use lernmi::data::csv::{parse_classes, read_classes, read_values, CsvOptions};
use lernmi::data::npy::{read_features, read_labels, read_limited, NpyArray, Npz};
use lernmi::data::standardize::{Standardizer, METADATA_KEY};
use lernmi::Error;
use ndarray::{array, Array2};

/// A file in a fresh temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("lernmi-data-formats-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

fn classes(text: &str, options: &CsvOptions) -> lernmi::Result<lernmi::data::csv::CsvClasses<f32>> {
    parse_classes::<f32>(text.as_bytes(), Path::new("t.csv"), options)
}

/// The (line, column, name, problem) of a [`Error::BadCell`] for file `t.csv`.
fn bad_cell(e: Error) -> (u64, usize, String, String) {
    match e {
        Error::BadCell {
            path,
            line,
            column,
            name,
            problem,
        } => {
            assert_eq!(path, Path::new("t.csv"));
            (line, column, name, problem)
        }
        other => panic!("expected BadCell, got {other:?}"),
    }
}

/// The problem text of an [`Error::BadFile`] for `path`.
fn bad_file(e: Error, path: &Path) -> String {
    match e {
        Error::BadFile { path: p, problem } => {
            assert_eq!(p, path);
            problem
        }
        other => panic!("expected BadFile, got {other:?}"),
    }
}

#[test]
fn csv_reads_exact_values_and_integer_labels() {
    let file = TempFile::new(
        "iris.csv",
        "\u{feff}a, label ,b\n0.1,2,1e-7\n\n\"-3.5\", 0 ,16777217\n".as_bytes(),
    );
    let table = read_classes::<f32>(&file.0, &CsvOptions::new("label")).unwrap();
    assert_eq!(table.feature_names, ["a", "b"]);
    assert_eq!(table.labels, [2, 0]);
    assert_eq!(table.classes, 3);
    assert_eq!(table.class_names, None);
    let expected = [0.1f32, 1e-7, -3.5, 16_777_217f32];
    let got: Vec<u32> = table.features.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, expected.map(f32::to_bits));
    let wide = read_classes::<f64>(&file.0, &CsvOptions::new("label")).unwrap();
    assert_eq!(wide.features, array![[0.1, 1e-7], [-3.5, 16_777_217.0]]);
}

#[test]
fn csv_maps_text_labels_in_byte_order() {
    let text = "x,y\n1,cat\n2,9\n3,10\n4,cat\n5,Dog\n";
    let table = classes(text, &CsvOptions::new("y")).unwrap();
    assert_eq!(
        table.class_names.as_deref(),
        Some(&["10", "9", "Dog", "cat"].map(String::from)[..])
    );
    assert_eq!(table.labels, [3, 1, 0, 3, 2]);
    assert_eq!(table.classes, 4);
}

#[test]
fn csv_reads_chosen_features_and_float_targets() {
    let file = TempFile::new("reg.csv", b"a;b;t;c\n1;2;0.5;3\n4;5;-1e300;6\n");
    let options = CsvOptions::new("t").features(["c", "a"]).delimiter(b';');
    let table = read_values::<f64>(&file.0, &options).unwrap();
    assert_eq!(table.feature_names, ["c", "a"]);
    assert_eq!(table.features, array![[3.0, 1.0], [6.0, 4.0]]);
    assert_eq!(table.targets.to_vec(), [0.5, -1e300]);
    // The same target is out of range for f32, and the error says so.
    let err = read_values::<f32>(&file.0, &options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadCell {
                line: 3,
                column: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("out of range for f32"), "{err}");
}

#[test]
fn csv_bad_cells_name_file_line_and_column() {
    let options = CsvOptions::new("label");
    let cases = [
        ("a,b,label\n1,2,0\n3,,1\n", 3, 2, "b", "the cell is empty"),
        (
            "a,b,label\n1,2,0\n\n3,x1,1\n",
            4,
            2,
            "b",
            "\"x1\" is not a number",
        ),
        ("a,b,label\n1,NaN,0\n", 2, 2, "b", "\"NaN\" is not finite"),
        ("a,b,label\n-inf,1,0\n", 2, 1, "a", "\"-inf\" is not finite"),
        (
            "a,b,label\n1,1e39,0\n",
            2,
            2,
            "b",
            "\"1e39\" is out of range for f32",
        ),
        (
            "a,b,label\n1,2,0\n1,2,\n",
            3,
            3,
            "label",
            "the cell is empty",
        ),
        (
            "a,b,label\n1,\"2\nx\",0\n",
            2,
            2,
            "b",
            "\"2\\nx\" is not a number",
        ),
        (
            "\r\n\r\na,b,label\r\n\r\n1,2,0\r\n\n3,4,k\r\n\r\n5,_,1",
            9,
            2,
            "b",
            "\"_\" is not a number",
        ),
    ];
    for (text, line, column, name, problem) in cases {
        let err = classes(text, &options).unwrap_err();
        let message = err.to_string();
        let got = bad_cell(err);
        assert_eq!(
            got,
            (line, column, name.to_string(), problem.to_string()),
            "{text:?}"
        );
        assert!(
            message.starts_with(&format!("t.csv: line {line}, column {column} ({name:?}): ")),
            "{message}"
        );
    }
    let err = read_values::<f64>(Path::new("/nonexistent/t.csv"), &options).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn csv_bad_tables_name_file_and_line() {
    let options = CsvOptions::new("label");
    let cases = [
        ("", "the file is empty: no header row"),
        ("\n\n", "the file is empty: no header row"),
        ("a,label\n", "line 1 is the header and no data rows follow"),
        (
            "\n\na,label\n\n",
            "line 3 is the header and no data rows follow",
        ),
        (
            "a,b,label\n1,2,0\n1,2\n",
            "line 3: 2 fields where the header has 3",
        ),
        (
            "a,b,label\n1,2,0,4\n",
            "line 2: 4 fields where the header has 3",
        ),
        (
            "a,b,a,label\n1,2,3,0\n",
            "line 1: duplicate column name \"a\" (columns 1 and 3)",
        ),
        (
            "a,b\n1,2\n",
            "line 1: no label column \"label\" (columns: [\"a\", \"b\"])",
        ),
    ];
    for (text, problem) in cases {
        let err = classes(text, &options).unwrap_err();
        assert_eq!(bad_file(err, Path::new("t.csv")), problem, "{text:?}");
    }
    let err = classes("a,label\n1,0\n", &options.clone().features(["z"])).unwrap_err();
    assert!(bad_file(err, Path::new("t.csv")).contains("no feature column \"z\""));
    let err = classes("a,label\n1,0\n", &options.clone().features(["a", "a"])).unwrap_err();
    assert!(bad_file(err, Path::new("t.csv")).contains("chosen twice"));
}

#[test]
fn csv_size_limit_is_checked_before_reading() {
    let text = b"a,label\n1,0\n2,1\n";
    let file = TempFile::new("limit.csv", text);
    let exact = CsvOptions::new("label").max_bytes(text.len() as u64);
    assert_eq!(read_classes::<f32>(&file.0, &exact).unwrap().labels, [0, 1]);
    let under = exact.max_bytes(text.len() as u64 - 1);
    let err = read_classes::<f32>(&file.0, &under).unwrap_err();
    let problem = bad_file(err, &file.0);
    assert!(
        problem.contains("holds 16 bytes, over the limit of 15"),
        "{problem}"
    );
}

#[test]
fn npy_reads_every_version_order_and_type_exactly() {
    let values = [1.5f32, -2.25, 0.1, 1e-7, -0.0, f32::MIN_POSITIVE];
    for version in [1, 2, 3] {
        let bytes = npy(version, "<f4", false, "(2, 3)", &f32_le(&values));
        let got = NpyArray::parse(&bytes, Path::new("a.npy"))
            .unwrap()
            .features::<f32>()
            .unwrap();
        let bits: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, values.map(f32::to_bits), "version {version}");
    }
    // Big-endian f8 in Fortran order: the file holds the columns one after the other.
    let columns = [1.0f64, 4.0, 2.0, 5.0, 3.0, 0.1];
    let data: Vec<u8> = columns.iter().flat_map(|x| x.to_be_bytes()).collect();
    let bytes = npy(1, ">f8", true, "(2, 3)", &data);
    let array = NpyArray::parse(&bytes, Path::new("a.npy")).unwrap();
    assert!(array.fortran_order());
    assert_eq!(array.descr(), ">f8");
    assert_eq!(
        array.features::<f64>().unwrap(),
        array![[1.0, 2.0, 3.0], [4.0, 5.0, 0.1]]
    );
    assert_eq!(
        array.features::<f32>().unwrap()[[1, 2]].to_bits(),
        0.1f32.to_bits()
    );
    // Every integer type, both byte orders, as labels and as features.
    let ints: [(&str, Vec<u8>); 10] = [
        ("|u1", vec![7, 0, 255]),
        ("|i1", vec![7, 0, 127]),
        (
            "<u2",
            [7u16, 0, 65535]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (
            ">i2",
            [7i16, 0, 32767]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
        ),
        (
            "<i4",
            [7i32, 0, 1 << 30]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (
            ">u4",
            [7u32, 0, u32::MAX]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
        ),
        (
            "<i8",
            [7i64, 0, i64::MAX]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (
            ">u8",
            [7u64, 0, u64::MAX]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
        ),
        (
            "<f8",
            [7.0f64, 0.0, 1e15]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (
            ">f4",
            [7.0f32, 0.0, 1e7]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
        ),
    ];
    let lasts = [
        255,
        127,
        65535,
        32767,
        1 << 30,
        u32::MAX as usize,
        i64::MAX as usize,
        usize::MAX,
        1_000_000_000_000_000,
        10_000_000,
    ];
    for ((descr, data), last) in ints.iter().zip(lasts) {
        let bytes = npy(1, descr, false, "(3,)", data);
        let array = NpyArray::parse(&bytes, Path::new("y.npy")).unwrap();
        assert_eq!(array.labels().unwrap(), [7, 0, last], "{descr}");
        let features = array.features::<f64>().unwrap();
        assert_eq!(features.dim(), (3, 1));
        assert_eq!(features[[2, 0]], last as f64, "{descr}");
    }
    // (n, 1) labels, and Python 2's long integers in the shape.
    let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 1L), }";
    let bytes = npy_with_dict(1, dict, &[3, 4]);
    assert_eq!(
        NpyArray::parse(&bytes, Path::new("y.npy"))
            .unwrap()
            .labels()
            .unwrap(),
        [3, 4]
    );
}

#[test]
fn npy_reads_files() {
    let x = TempFile::new(
        "x.npy",
        &npy(1, "<f4", false, "(1, 2)", &f32_le(&[1.0, 2.0])),
    );
    assert_eq!(read_features::<f32>(&x.0).unwrap(), array![[1.0, 2.0]]);
    let y = TempFile::new("y.npy", &npy(1, "<i8", false, "(1,)", &5i64.to_le_bytes()));
    assert_eq!(read_labels(&y.0).unwrap(), [5]);
    let err = read_limited(&y.0, 64).unwrap_err();
    let problem = bad_file(err, &y.0);
    assert!(problem.contains("over the limit of 64"), "{problem}");
    let err = Npz::open_with_limit(&y.0, 64).unwrap_err();
    assert!(bad_file(err, &y.0).contains("over the limit of 64"));
    let err = read_features::<f32>(Path::new("/nonexistent/x.npy")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn npy_errors_name_the_problem() {
    let path = Path::new("bad.npy");
    let good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    let data = f32_le(&[1.0, 2.0]);
    let mut bad_magic = npy_with_dict(1, good_dict, &data);
    bad_magic[1] = b'n';
    let mut bad_version = npy_with_dict(1, good_dict, &data);
    bad_version[6] = 4;
    let mut long_header = npy_with_dict(1, good_dict, &data);
    long_header[8] = 0xff;
    long_header[9] = 0xff;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x93NUMP".to_vec(), "not an .npy file"),
        (bad_magic, "not an .npy file"),
        (bad_version, "unsupported .npy version 4.0"),
        (long_header, "header of 65535 bytes runs past the end"),
        (
            npy_with_dict(1, "{'descr': '<f4', 'shape': (2,), }", &data),
            "malformed header: it needs the keys",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                &data,
            ),
            "malformed header: unexpected key \"x\"",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
                &data,
            ),
            "key \"descr\" appears twice",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}",
                &data,
            ),
            "expected True or False",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
                &data,
            ),
            "malformed header",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                &data,
            ),
            "expected a dimension",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                &data,
            ),
            "dimension 99999999999999999999 is too large",
        ),
        (
            npy(1, "<f4", false, "(4294967296, 4294967296)", &data),
            "shape [4294967296, 4294967296] overflows",
        ),
        (
            npy(1, "<f4", false, "(1000000, 1000)", &data),
            "shape [1000000, 1000] of <f4 needs 4000000000 bytes of data, the file holds 8",
        ),
        (
            npy(1, "<f4", false, "(1,)", &data),
            "needs 4 bytes of data, the file holds 8",
        ),
        (
            npy(1, "<c8", false, "(1,)", &data),
            "unsupported element type \"<c8\"",
        ),
        (
            npy(1, "<f2", false, "(4,)", &data),
            "unsupported element type \"<f2\"",
        ),
        (
            npy(1, "|f4", false, "(2,)", &data),
            "unsupported element type \"|f4\"",
        ),
        (
            npy(1, "|O", false, "(1,)", &data),
            "object array, pickled Python objects: refused",
        ),
        (
            npy_with_dict(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
                &data,
            ),
            "structured element types",
        ),
    ];
    for (bytes, problem) in cases {
        let err = NpyArray::parse(&bytes, path).unwrap_err();
        let text = bad_file(err, path);
        assert!(text.contains(problem), "{text:?} lacks {problem:?}");
    }
    let array = |descr: &str, shape: &str, data: &[u8]| npy(1, descr, false, shape, data);
    let values = [
        (
            array("<f4", "(2, 1, 1)", &data),
            "features need 1 or 2 dimensions",
        ),
        (
            array("<f4", "(2,)", &f32_le(&[1.0, f32::NAN])),
            "non-finite value NaN at row 1, column 0",
        ),
        (
            array(
                "<f8",
                "(1, 2)",
                &[1.0f64, 1e300].map(f64::to_le_bytes).concat(),
            ),
            "value at row 0, column 1 is too large for f32",
        ),
    ];
    for (bytes, problem) in values {
        let err = NpyArray::parse(&bytes, path)
            .unwrap()
            .features::<f32>()
            .unwrap_err();
        assert!(bad_file(err, path).contains(problem), "{problem}");
    }
    let labels = [
        (
            array("|i1", "(2,)", &[1, 0xff]),
            "label Int(-1) at index 1 is not a class",
        ),
        (
            array("<f4", "(1,)", &f32_le(&[1.5])),
            "label Float(1.5) at index 0",
        ),
        (
            array("|u1", "(1, 2)", &[1, 2]),
            "labels need shape (n,) or (n, 1)",
        ),
    ];
    for (bytes, problem) in labels {
        let err = NpyArray::parse(&bytes, path).unwrap().labels().unwrap_err();
        assert!(bad_file(err, path).contains(problem), "{problem}");
    }
}

/// `np.savez_compressed(f, x=float32 [[1.5, -2.25, 3], [0.1, 1e-7, -0]], y=int64 [2, 0, 1])`,
/// as NumPy writes it (ZIP64 extra fields in its local headers).
const NUMPY_NPZ: &str = "504b03042d0000000800000021004f68a79effffffffffffffff05001400782e6e70790100100098000000000000005f000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a463a0ac69a3a0ab50a64032e068603f60c0c020718181c1cce9e39633b75ff35630606860600504b03042d0000000800000021008a1ace13ffffffffffffffff05001400792e6e70790100100098000000000000004a000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9369a1aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91ac63a9a3a0ab50a14002e260654c008a501504b01022d032d0000000800000021004f68a79e5f00000098000000050000000000000000000000800100000000782e6e7079504b01022d032d0000000800000021008a1ace134a00000098000000050000000000000000000000800196000000792e6e7079504b0506000000000200020066000000170100000000";

#[test]
fn npz_reads_numpy_archives() {
    let bytes: Vec<u8> = (0..NUMPY_NPZ.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&NUMPY_NPZ[i..i + 2], 16).unwrap())
        .collect();
    let npz = Npz::from_bytes(bytes, "numpy.npz", 1 << 20).unwrap();
    assert_eq!(npz.names(), ["x", "y"]);
    let x = npz.features::<f32>("x").unwrap();
    let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        [
            0x3fc0_0000,
            0xc010_0000,
            0x4040_0000,
            0x3dcc_cccd,
            0x33d6_bf95,
            0x8000_0000
        ]
    );
    assert_eq!(npz.labels("y.npy").unwrap(), [2, 0, 1]);
}

#[test]
fn npz_reads_stored_and_deflated_members() {
    let x = npy(1, "<f4", false, "(2, 2)", &f32_le(&[1.0, 2.0, 3.0, 4.0]));
    let y = npy(2, "|u1", false, "(2,)", &[1, 0]);
    for deflate in [false, true] {
        let file = TempFile::new("d.npz", &zip(&[("x.npy", &x), ("y.npy", &y)], deflate));
        let npz = Npz::open(&file.0).unwrap();
        assert_eq!(
            npz.features::<f64>("x").unwrap(),
            array![[1.0, 2.0], [3.0, 4.0]]
        );
        assert_eq!(npz.labels("y").unwrap(), [1, 0]);
        let err = npz.labels("z").unwrap_err();
        assert!(bad_file(err, &file.0).contains("no member \"z\" (members: [\"x\", \"y\"])"));
        let err = npz.labels("x").unwrap_err();
        assert!(bad_file(err, &file.0).starts_with("member \"x.npy\": labels need shape"));
        // Members larger than the limit are refused before they are inflated.
        let small = Npz::open_with_limit(&file.0, x.len() as u64 - 1);
        if let Ok(npz) = small {
            let err = npz.features::<f32>("x").unwrap_err();
            assert!(bad_file(err, &file.0).contains("over the limit"));
        }
    }
}

#[test]
fn npz_errors_name_the_problem() {
    let x = npy(1, "<f4", false, "(1,)", &f32_le(&[1.0]));
    let path = Path::new("bad.npz");
    let good = zip(&[("x.npy", &x)], true);
    let mut corrupt = good.clone();
    let data_at = 30 + "x.npy".len() + 1;
    corrupt[data_at] ^= 0x55;
    let mut bad_crc = zip(&[("x.npy", &x)], false);
    let last_data = 30 + "x.npy".len() + x.len() - 1;
    bad_crc[last_data] ^= 1;
    let open_errors: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "not a zip archive"),
        (x.clone(), "not a zip archive"),
        (good[..good.len() - 1].to_vec(), "not a zip archive"),
    ];
    for (bytes, problem) in open_errors {
        let err = Npz::from_bytes(bytes, path, 1 << 20).unwrap_err();
        assert!(bad_file(err, path).contains(problem), "{problem}");
    }
    for (bytes, problem) in [
        (corrupt, "member \"x.npy\": "),
        (bad_crc, "member \"x.npy\": CRC"),
    ] {
        let npz = Npz::from_bytes(bytes, path, 1 << 20).unwrap();
        let err = npz.features::<f32>("x").unwrap_err();
        let text = bad_file(err, path);
        assert!(text.starts_with(problem), "{text}");
    }
}

#[test]
fn standardizer_fits_transforms_and_round_trips() {
    let train = array![[1.0f32, 5.0, -2.0], [3.0, 5.0, 2.0], [5.0, 5.0, 0.0]];
    let s = Standardizer::fit(train.view()).unwrap();
    assert_eq!(s.mean, [3.0, 5.0, 0.0]);
    let sd = (8.0f64 / 3.0).sqrt();
    assert_eq!(s.std, [sd, 0.0, sd]);
    let mut x = array![[3.0f32, 7.0, 4.0]];
    s.transform(x.view_mut()).unwrap();
    // The constant feature is centred, not scaled.
    assert_eq!(x, array![[0.0, 2.0, (4.0 / sd) as f32]]);
    assert_eq!(METADATA_KEY, "lernmi.standardize");
    let odd = Standardizer {
        mean: vec![0.1, -1e-300],
        std: vec![1.0 / 3.0, 0.0],
    };
    let back = Standardizer::from_metadata(&odd.to_metadata()).unwrap();
    assert_eq!(back, odd);
    let err = s
        .transform(Array2::<f64>::zeros((1, 2)).view_mut())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputWidth {
                expected: 3,
                got: 2
            }
        ),
        "{err}"
    );
    let short = Standardizer {
        mean: vec![0.0; 3],
        std: vec![1.0; 2],
    };
    let err = short.transform(x.view_mut()).unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{err}");
    let err = Standardizer::fit(Array2::<f32>::zeros((0, 2)).view()).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    let err = Standardizer::fit(array![[1.0, f64::INFINITY]].view()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 1, .. }), "{err}");
    for json in [
        "{\"mean\":[1],\"std\":[]}",
        "{\"mean\":[1],\"std\":[-1]}",
        "[1,2]",
    ] {
        let err = Standardizer::from_metadata(json).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
    }
}
