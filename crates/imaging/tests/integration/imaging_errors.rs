//! Decode errors of `imaging` that need no Python reference: each broken input
//! is a typed error naming the file, and the decoder keeps working after one.

use std::path::Path;

use imagenetx_imaging::{Error, PreprocessConfig, Preprocessor};

/// Accepts the expected error kinds.
type ErrorCheck = fn(&Error) -> bool;

/// A 64x48 4:2:0 JPEG made with libjpeg-turbo's encoder.
fn jpeg() -> Vec<u8> {
    let pixels: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 37 % 253) as u8).collect();
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: 64,
        pitch: 64 * 3,
        height: 48,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
        .expect("encode")
        .to_vec()
}

#[test]
fn broken_inputs_are_typed_errors_and_the_decoder_recovers() {
    let mut pre = Preprocessor::new(PreprocessConfig::torchvision()).expect("valid");
    let good = jpeg();
    let name = Path::new("n01440764/ILSVRC2012_val_00000293.JPEG");
    let before = pre.decode_bytes(&good, name).expect("decodes");
    assert_eq!((before.width(), before.height()), (64, 48));

    let cases: [(&[u8], ErrorCheck); 4] = [
        (&good[..good.len() / 2], |e| {
            matches!(e, Error::Truncated { .. })
        }),
        (b"\xff\xd8\xff\xe0\x00\x10garbage garbage", |e| {
            matches!(e, Error::Corrupt { .. } | Error::Truncated { .. })
        }),
        (b"GIF89a? not really", |e| {
            // Garbage dimensions (8255x28526) trip the pixel limit.
            matches!(
                e,
                Error::Corrupt { .. }
                    | Error::Truncated { .. }
                    | Error::Unsupported { .. }
                    | Error::TooManyPixels { .. }
            )
        }),
        (b"plain text", |e| {
            matches!(e, Error::UnsupportedFormat { .. })
        }),
    ];
    for (bytes, expected) in cases {
        let err = pre.decode_bytes(bytes, name).expect_err("broken input");
        assert!(expected(&err), "unexpected error kind: {err:?}");
        assert!(
            err.to_string().contains("ILSVRC2012_val_00000293.JPEG"),
            "{err}"
        );
        // A fatal libjpeg error must not poison the next image.
        assert_eq!(
            pre.decode_bytes(&good, name).expect("decodes again"),
            before
        );
    }
    let err = pre.decode_bytes(b"", name).expect_err("empty");
    assert!(matches!(err, Error::Empty { .. }), "{err:?}");
}
