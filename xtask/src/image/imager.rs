//! Raspberry Pi Imager's entry for the image (`os_list.json`): Imager lists it when started
//! with `--repo` naming the file (or a URL serving it), and checks what it downloads and
//! writes against the sizes and sha256 here. Pure: the JSON from the figures.

use serde_json::json;

/// What Imager needs to know of one image.
pub struct Entry {
    /// The name shown.
    pub name: String,
    /// One line under it.
    pub description: String,
    /// The compressed image, relative to `os_list.json` (serve both from one place, or
    /// rewrite the URL).
    pub file: String,
    /// Bytes of the image as written.
    pub extract_size: u64,
    /// Its sha256.
    pub extract_sha256: String,
    /// Bytes of the compressed image.
    pub download_size: u64,
    /// Its sha256.
    pub download_sha256: String,
    /// `SOURCE_DATE_EPOCH`: the release date.
    pub epoch: u64,
}

/// The Imager boards the image boots (its device tags).
const DEVICES: &[&str] = &["pi3-64bit", "pi4-64bit"];

/// `os_list.json` with this one entry (no `init_format`: Imager offers no customisation,
/// which the window would not read; it is set up by its own wizard).
pub fn os_list(e: &Entry) -> String {
    let v = json!({
        "os_list": [{
            "name": e.name,
            "description": e.description,
            "url": e.file,
            "extract_size": e.extract_size,
            "extract_sha256": e.extract_sha256,
            "image_download_size": e.download_size,
            "image_download_sha256": e.download_sha256,
            "release_date": date(e.epoch),
            "devices": DEVICES,
        }]
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's days-to-civil).
pub fn date(epoch: u64) -> String {
    let z = (epoch / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_796_601_600), "2026-12-07");
    }

    #[test]
    fn the_entry() {
        let s = os_list(&Entry {
            name: "ewindow (abc)".into(),
            description: "d".into(),
            file: "ewindow-rpi-arm64.img.zst".into(),
            extract_size: 10,
            extract_sha256: "aa".into(),
            download_size: 5,
            download_sha256: "bb".into(),
            epoch: 1_796_601_600,
        });
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let e = &v["os_list"][0];
        assert_eq!(e["url"], "ewindow-rpi-arm64.img.zst");
        assert_eq!(e["extract_size"], 10);
        assert_eq!(e["image_download_sha256"], "bb");
        assert_eq!(e["release_date"], "2026-12-07");
        assert_eq!(e["devices"][0], "pi3-64bit");
    }
}
