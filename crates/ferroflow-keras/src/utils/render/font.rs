//! The bundled font: a subset of DejaVu Sans and DejaVu Sans Bold (printable ASCII and a few
//! symbols; Bitstream Vera licence with DejaVu's public-domain changes, see
//! `assets/fonts/LICENSE-DejaVu.txt`). Characters outside the subset are drawn as `?`.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve};

static REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The regular or the bold face (`None` if the bundled file could not be parsed, which the
/// tests rule out).
pub(super) fn face(bold: bool) -> Option<&'static FontRef<'static>> {
    static REGULAR: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    static BOLD: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    let (cell, bytes) = if bold {
        (&BOLD, BOLD_TTF)
    } else {
        (&REGULAR, REGULAR_TTF)
    };
    cell.get_or_init(|| FontRef::try_from_slice(bytes).ok())
        .as_ref()
}

/// Font units to points at `size` points (the em size, as CSS's `font-size`).
pub(super) fn scale(font: &FontRef<'static>, size: f32) -> f32 {
    size / font.units_per_em().unwrap_or(2048.0)
}

/// The glyph for `c`, `?` when the subset lacks it.
pub(super) fn glyph(font: &FontRef<'static>, c: char) -> GlyphId {
    let id = font.glyph_id(c);
    if id.0 == 0 && c != '\0' {
        font.glyph_id('?')
    } else {
        id
    }
}

/// The advance width of `text` at `size` points.
pub(crate) fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let Some(font) = face(bold) else {
        return text.chars().count() as f32 * size * 0.6;
    };
    let s = scale(font, size);
    text.chars()
        .map(|c| font.h_advance_unscaled(glyph(font, c)) * s)
        .sum()
}

/// Calls `f` with each glyph's outline curves (font units, y up) and its pen position.
pub(super) fn for_each_glyph(
    text: &str,
    size: f32,
    bold: bool,
    mut f: impl FnMut(&[OutlineCurve], f32, f32),
) {
    let Some(font) = face(bold) else {
        return;
    };
    let s = scale(font, size);
    let mut pen = 0.0;
    for c in text.chars() {
        let id = glyph(font, c);
        if let Some(outline) = font.outline(id) {
            f(&outline.curves, pen, s);
        }
        pen += font.h_advance_unscaled(id) * s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_fonts_parse_and_measure() {
        assert!(face(false).is_some() && face(true).is_some());
        // DejaVu Sans: "0" is 1303 units wide of 2048 at every size; bold is wider.
        let w = text_width("00", 20.48, false);
        assert!((w - 2.0 * 13.03).abs() < 0.01, "{w}");
        assert!(text_width("abc", 10.0, true) > text_width("abc", 10.0, false));
        // A character outside the subset is measured as "?".
        assert_eq!(
            text_width("\u{4e2d}", 10.0, false),
            text_width("?", 10.0, false)
        );
    }
}
