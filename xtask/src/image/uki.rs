//! The unified kernel image: Debian's systemd-boot EFI stub with the kernel, the initramfs,
//! the command line and os-release added as PE sections (`objcopy`), each placed after the
//! stub's last section at the stub's section alignment, as systemd's `ukify` does. Then the
//! PE header's time stamp (objcopy writes the current time; binutils 2.40 ignores
//! `SOURCE_DATE_EPOCH`) is set to the build's epoch and the header checksum recomputed.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::LittleEndian as LE;

/// Where the added sections start, and the alignment: (first free address, alignment). The
/// address is what objcopy's `--change-section-vma` takes: the image base plus the RVA.
pub fn layout(stub: &[u8]) -> Result<(u64, u64)> {
    let pe = PeFile64::parse(stub).context("the EFI stub is not a PE32+ file")?;
    let base = pe.nt_headers().optional_header().image_base();
    let align = u64::from(pe.nt_headers().optional_header().section_alignment());
    let end = pe
        .section_table()
        .iter()
        .map(|s| u64::from(s.virtual_address.get(LE)) + u64::from(s.virtual_size.get(LE)))
        .max()
        .unwrap_or(0);
    if align == 0 {
        bail!("the EFI stub has no section alignment");
    }
    Ok((base + end.div_ceil(align) * align, align))
}

/// Builds `out` from `stub` and the `(section, file)` pairs, in order.
pub fn build(stub: &Path, sections: &[(&str, &Path)], epoch: u32, out: &Path) -> Result<()> {
    let data = std::fs::read(stub).with_context(|| format!("reading {}", stub.display()))?;
    let (mut at, align) = layout(&data)?;
    let mut cmd = Command::new("objcopy");
    for (name, file) in sections {
        let size = std::fs::metadata(file)
            .with_context(|| format!("{}", file.display()))?
            .len();
        cmd.arg("--add-section")
            .arg(format!(".{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!(".{name}={at:#x}"));
        at = (at + size).div_ceil(align) * align;
    }
    let st = cmd.arg(stub).arg(out).status().context("running objcopy")?;
    if !st.success() {
        bail!("objcopy failed ({st})");
    }
    let mut pe = std::fs::read(out)?;
    stamp(&mut pe, epoch)?;
    std::fs::write(out, pe)?;
    Ok(())
}

/// Sets the COFF time stamp to `epoch` and recomputes the optional header's checksum (the
/// Microsoft algorithm: 16-bit sums with carries folded, over the file with the checksum
/// field zeroed, plus the file length).
pub fn stamp(pe: &mut [u8], epoch: u32) -> Result<()> {
    if pe.len() < 0x40 || &pe[..2] != b"MZ" {
        bail!("not a PE file");
    }
    let at = u32::from_le_bytes(pe[0x3c..0x40].try_into()?) as usize;
    if pe.len() < at + 24 + 68 || &pe[at..at + 4] != b"PE\0\0" {
        bail!("not a PE file");
    }
    pe[at + 8..at + 12].copy_from_slice(&epoch.to_le_bytes());
    let ck = at + 24 + 64;
    pe[ck..ck + 4].fill(0);
    let sum = checksum(pe);
    pe[ck..ck + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

fn checksum(pe: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for chunk in pe.chunks(2) {
        let word = u64::from(chunk[0]) | chunk.get(1).map_or(0, |&b| u64::from(b) << 8);
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(pe.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_sets_time_and_a_consistent_checksum() {
        let mut pe = vec![0u8; 512];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x88..0x8c].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        pe[300] = 0xff;
        pe[301] = 0xff;
        pe[302] = 0x01;
        stamp(&mut pe, 1_700_000_000).unwrap();
        assert_eq!(
            u32::from_le_bytes(pe[0x88..0x8c].try_into().unwrap()),
            1_700_000_000
        );
        let ck = 0x80 + 24 + 64;
        let stored = u32::from_le_bytes(pe[ck..ck + 4].try_into().unwrap());
        let mut zeroed = pe.clone();
        zeroed[ck..ck + 4].fill(0);
        assert_eq!(stored, checksum(&zeroed));
        // by hand: the words are 0x5a4d, 0x0080, 0x4550, the epoch's two halves, 0xffff, 0x0001
        let words: u64 = 0x5a4d
            + 0x80
            + 0x4550
            + (1_700_000_000u64 & 0xffff)
            + (1_700_000_000u64 >> 16)
            + 0xffff
            + 0x1;
        let mut s = words;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(stored, s as u32 + 512);
        assert!(stamp(&mut [0u8; 100], 1).is_err());
    }
}
