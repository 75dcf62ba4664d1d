//! The AOF manifest: the ONE file (`<appenddirname>/tidemark.manifest`) that says which
//! base and incr files make up every shard's log. It is the only authority: a file it does
//! not name is not part of the data set, and a file it names must exist.
//!
//! Text format (byte map in docs/formats.md, "AOF manifest"), one item per line, `\n`:
//!
//! ```text
//! tidemark-aof-manifest 1
//! seq 7
//! shards 2
//! shard 0 lsn 120 base shard-000.7.base.aof incr shard-000.7.incr.aof
//! shard 1 lsn 0 base - incr shard-001.6.incr.aof shard-001.7.incr.aof
//! crc 1a2b3c4d
//! ```
//!
//! `seq` is the highest file sequence number the manifest has ever used; `lsn` is the
//! shard's LSN known durable when the manifest was committed (recovery must reach at least
//! it); `base -` means no base (generation 1). The CRC (crc32fast, lowercase hex) covers
//! every byte before the `crc` line.
//!
//! Commit protocol ([`commit`]), the only way the manifest changes:
//! 1. fsync the AOF directory, so the entries of every file the new manifest names are
//!    durable before the manifest that names them;
//! 2. write the encoded manifest to `tidemark.manifest.tmp` (create/truncate);
//! 3. fsync the temp file;
//! 4. rename it over `tidemark.manifest` (atomic replace);
//! 5. fsync the AOF directory: the commit is durable only after this step returns.
//!
//! A crash before step 4 leaves the old manifest (and a stray temp file, removed at the
//! next start); after step 4 either manifest may be found, each complete and consistent.
//!
//! What can fail here: IO errors (returned as text naming the step), and decoding, which
//! returns a `String` saying exactly what is wrong; nothing panics on bad input.

use std::path::{Path, PathBuf};

use crate::io::{Disk, File, OpenMode};

/// The manifest's file name inside the AOF directory.
pub const MANIFEST_FILE_NAME: &str = "tidemark.manifest";
/// The temp file a commit writes before renaming it.
pub const MANIFEST_TEMP_FILE_NAME: &str = "tidemark.manifest.tmp";
/// The manifest format version this build reads and writes.
pub const MANIFEST_VERSION: u32 = 1;
/// A manifest larger than this is refused as corrupt.
pub const MANIFEST_LEN_MAX_BYTES: usize = 16 * 1024 * 1024;
/// At most this many incr files per shard (an aborted rewrite adds one).
pub const MANIFEST_INCRS_PER_SHARD_MAX: usize = 4096;
/// At most this many shards.
pub const MANIFEST_SHARDS_MAX: usize = 4096;

/// The files of one shard, in replay order: the base (if any), then the incrs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ShardParts {
    /// The base file name (`None` in generation 1).
    pub base: Option<String>,
    /// Incr file names, oldest first; never empty. Appends go to the last one.
    pub incrs: Vec<String>,
    /// LSN known durable when the manifest was committed.
    pub lsn: u64,
}

/// The decoded manifest.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Highest file sequence number used.
    pub seq: u64,
    /// Per shard, indexed by shard id.
    pub shards: Vec<ShardParts>,
}

/// Which kind of file a data file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// A base: the shard's keyspace at one LSN, as reconstruction commands.
    Base,
    /// An incr: the log of writes after the base.
    Incr,
}

/// `shard-007.12.base.aof` / `shard-007.12.incr.aof`.
pub fn part_file_name(shard_id: u16, seq: u64, kind: PartKind) -> String {
    let kind = match kind {
        PartKind::Base => "base",
        PartKind::Incr => "incr",
    };
    format!("shard-{shard_id:03}.{seq}.{kind}.aof")
}

/// Parses a name made by [`part_file_name`]: `(shard_id, seq, kind)`, or `None`.
pub fn parse_part_file_name(name: &str) -> Option<(u16, u64, PartKind)> {
    let rest = name.strip_prefix("shard-")?.strip_suffix(".aof")?;
    let mut it = rest.split('.');
    let shard = it.next()?;
    let seq = it.next()?;
    let kind = match it.next()? {
        "base" => PartKind::Base,
        "incr" => PartKind::Incr,
        _ => return None,
    };
    if it.next().is_some() || shard.len() < 3 || !all_digits(shard) || !all_digits(seq) {
        return None;
    }
    Some((shard.parse().ok()?, seq.parse().ok()?, kind))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Manifest {
    /// The text form, CRC line included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = format!(
            "tidemark-aof-manifest {MANIFEST_VERSION}\nseq {}\nshards {}\n",
            self.seq,
            self.shards.len()
        );
        for (id, part) in self.shards.iter().enumerate() {
            let base = part.base.as_deref().unwrap_or("-");
            body.push_str(&format!("shard {id} lsn {} base {base} incr", part.lsn));
            for incr in &part.incrs {
                body.push(' ');
                body.push_str(incr);
            }
            body.push('\n');
        }
        let crc = crc32fast::hash(body.as_bytes());
        body.push_str(&format!("crc {crc:08x}\n"));
        body.into_bytes()
    }

    /// Parses and checks a manifest; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() > MANIFEST_LEN_MAX_BYTES {
            return Err(format!(
                "{} bytes, over the {MANIFEST_LEN_MAX_BYTES} limit",
                bytes.len()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let body_end = text
            .rfind("crc ")
            .filter(|at| *at == 0 || text.as_bytes()[at - 1] == b'\n')
            .ok_or("no crc line (truncated?)")?;
        let crc_line = text[body_end..].trim_end_matches('\n');
        let stored = u32::from_str_radix(crc_line.trim_start_matches("crc "), 16)
            .map_err(|_| format!("bad crc line {crc_line:?}"))?;
        let body = &text[..body_end];
        let actual = crc32fast::hash(body.as_bytes());
        if stored != actual {
            return Err(format!(
                "CRC mismatch (stored {stored:08x}, computed {actual:08x})"
            ));
        }
        let mut lines = body.lines();
        let version = lines
            .next()
            .and_then(|l| l.strip_prefix("tidemark-aof-manifest "));
        match version {
            Some(v) if v == MANIFEST_VERSION.to_string() => {}
            Some(v) => return Err(format!("unsupported manifest version {v:?}")),
            None => return Err("bad first line (expected `tidemark-aof-manifest 1`)".into()),
        }
        let seq = number_line(lines.next(), "seq")?;
        let count = number_line(lines.next(), "shards")? as usize;
        if count == 0 || count > MANIFEST_SHARDS_MAX {
            return Err(format!("shard count {count} out of range"));
        }
        let mut shards = Vec::with_capacity(count);
        for id in 0..count {
            let line = lines
                .next()
                .ok_or_else(|| format!("missing line for shard {id}"))?;
            shards.push(parse_shard_line(line, id, seq)?);
        }
        if let Some(extra) = lines.next() {
            return Err(format!("unexpected line {extra:?}"));
        }
        Ok(Manifest { seq, shards })
    }

    /// Every file name the manifest references.
    pub fn referenced(&self) -> impl Iterator<Item = &str> {
        self.shards
            .iter()
            .flat_map(|p| p.base.iter().chain(p.incrs.iter()).map(String::as_str))
    }
}

fn number_line(line: Option<&str>, key: &str) -> Result<u64, String> {
    line.and_then(|l| l.strip_prefix(key))
        .and_then(|l| l.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("expected a `{key} <number>` line"))
}

fn parse_shard_line(line: &str, id: usize, seq: u64) -> Result<ShardParts, String> {
    let bad = || format!("bad line for shard {id}: {line:?}");
    let words: Vec<&str> = line.split(' ').collect();
    if words.len() < 8
        || words[0] != "shard"
        || words[1] != id.to_string()
        || words[2] != "lsn"
        || words[4] != "base"
        || words[6] != "incr"
    {
        return Err(bad());
    }
    let lsn = words[3].parse().map_err(|_| bad())?;
    let check = |name: &str, kind: PartKind| match parse_part_file_name(name) {
        Some((shard, file_seq, k)) if usize::from(shard) == id && k == kind && file_seq <= seq => {
            Ok(name.to_string())
        }
        _ => Err(format!("shard {id}: bad file name {name:?}")),
    };
    let base = match words[5] {
        "-" => None,
        name => Some(check(name, PartKind::Base)?),
    };
    if words.len() - 7 > MANIFEST_INCRS_PER_SHARD_MAX {
        return Err(format!("shard {id}: too many incr files"));
    }
    let incrs = words[7..]
        .iter()
        .map(|name| check(name, PartKind::Incr))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShardParts { base, incrs, lsn })
}

/// Reads the manifest in `dir`: `Ok(None)` if there is none, `Err` (text) if it cannot be
/// read or is corrupt.
pub async fn load<D: Disk>(disk: &D, dir: &Path) -> Result<Option<Manifest>, String> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let file = match disk.open(&path, OpenMode::Read).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let bytes = read_all(&file, MANIFEST_LEN_MAX_BYTES)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Manifest::decode(&bytes).map(Some)
}

/// Reads a whole file of at most `max` bytes.
pub(crate) async fn read_all<F: File>(file: &F, max: usize) -> std::io::Result<Vec<u8>> {
    let len = file.len().await?;
    if len > max as u64 {
        return Err(std::io::Error::other(format!(
            "{len} bytes, over the {max} limit"
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    while (buf.len() as u64) < len {
        let at = buf.len() as u64;
        let (result, back) = file.read_at(buf, at).await;
        buf = back;
        if result? == 0 {
            break;
        }
    }
    Ok(buf)
}

/// Steps 1-5 of the commit protocol (module docs). `Err` names the failed step; after an
/// error the on-disk manifest is the old or the new one (unknown which until restart).
pub async fn commit<D: Disk>(disk: &D, dir: &Path, manifest: &Manifest) -> Result<(), String> {
    let tmp: PathBuf = dir.join(MANIFEST_TEMP_FILE_NAME);
    let path = dir.join(MANIFEST_FILE_NAME);
    let fail = |step: &str, e: std::io::Error| format!("manifest commit, {step}: {e}");
    disk.sync_dir(dir)
        .await
        .map_err(|e| fail("fsync dir (1)", e))?;
    let file = disk
        .open(&tmp, OpenMode::CreateTruncate)
        .await
        .map_err(|e| fail("create temp", e))?;
    let bytes = manifest.encode();
    let (result, _) = crate::io::write_all_at(&file, bytes, 0).await;
    result.map_err(|e| fail("write temp", e))?;
    file.sync_all().await.map_err(|e| fail("fsync temp", e))?;
    disk.rename(&tmp, &path)
        .await
        .map_err(|e| fail("rename", e))?;
    disk.sync_dir(dir)
        .await
        .map_err(|e| fail("fsync dir (5)", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            seq: 7,
            shards: vec![
                ShardParts {
                    base: Some(part_file_name(0, 7, PartKind::Base)),
                    incrs: vec![part_file_name(0, 7, PartKind::Incr)],
                    lsn: 120,
                },
                ShardParts {
                    base: None,
                    incrs: vec![
                        part_file_name(1, 6, PartKind::Incr),
                        part_file_name(1, 7, PartKind::Incr),
                    ],
                    lsn: 0,
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_matches_the_documented_text() {
        let m = sample();
        let bytes = m.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("tidemark-aof-manifest 1\nseq 7\nshards 2\nshard 0 lsn 120 base shard-000.7.base.aof incr shard-000.7.incr.aof\n"));
        assert_eq!(Manifest::decode(&bytes), Ok(m));
    }

    #[test]
    fn every_single_byte_change_and_truncation_is_refused() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i} accepted");
        }
        for len in 0..bytes.len() - 1 {
            assert!(
                Manifest::decode(&bytes[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }

    #[test]
    fn file_names_parse_and_reject_traversal() {
        assert_eq!(
            parse_part_file_name("shard-003.12.incr.aof"),
            Some((3, 12, PartKind::Incr))
        );
        assert_eq!(
            parse_part_file_name("shard-003.12.base.aof"),
            Some((3, 12, PartKind::Base))
        );
        for bad in [
            "shard-003.aof",
            "shard-003.x.incr.aof",
            "../shard-003.1.incr.aof",
            "shard-03.1.incr.aof",
        ] {
            assert_eq!(parse_part_file_name(bad), None, "{bad}");
        }
    }
}
