//! UnixFS import and read-back through the public API: published CID
//! vectors (`tests/vectors/unixfs.json`) and round trips at the chunk and
//! width boundaries of both profiles.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use cid::Cid;
use ipsr_content::Block;
use ipsr_content::unixfs::{self, FileReader, Imported, Importer, Profile};
use ipsr_testkit::pattern;

fn import(profile: Profile, data: &[u8]) -> (Imported, HashMap<Cid, Block>) {
    let mut blocks = HashMap::new();
    let imported = unixfs::import(data, profile, |b: Block| {
        blocks.insert(*b.cid(), b);
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap();
    (imported, blocks)
}

fn read_back(root: Cid, blocks: &HashMap<Cid, Block>) -> Vec<u8> {
    let mut reader = FileReader::new(root);
    let mut out = Vec::new();
    while let Some((next, _hints)) = reader.needed() {
        out.extend_from_slice(reader.feed(&blocks[&next]).unwrap());
    }
    assert!(reader.is_done());
    assert_eq!(reader.total_size(), Some(out.len() as u64));
    out
}

/// Depth of the DAG along its first links (0 = the root is a leaf).
fn depth(root: Cid, blocks: &HashMap<Cid, Block>) -> usize {
    let mut cid = root;
    let mut depth = 0;
    while let Some(first) = unixfs::links(&blocks[&cid]).unwrap().first() {
        cid = *first;
        depth += 1;
    }
    depth
}

/// The input of the multi-block vectors: sha256 of
/// `ipsr-interop:{seed}:{counter}` for counter = 0, 1, ... cut to `size`.
fn sha256_stream(seed: &str, size: usize) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(size + 32);
    let mut counter = 0u64;
    while out.len() < size {
        out.extend_from_slice(&sha2::Sha256::digest(format!(
            "ipsr-interop:{seed}:{counter}"
        )));
        counter += 1;
    }
    out.truncate(size);
    out
}

#[test]
fn published_vectors_match() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/unixfs.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = json["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 10);
    for v in vectors {
        let input = match v["input_utf8"].as_str() {
            Some(text) => text.as_bytes().to_vec(),
            None => sha256_stream(
                v["input_sha256_stream"]["seed"].as_str().unwrap(),
                v["input_sha256_stream"]["size"].as_u64().unwrap() as usize,
            ),
        };
        let input = input.as_slice();
        let profile: Profile = v["profile"].as_str().unwrap().parse().unwrap();
        assert!(v["source"].as_str().is_some_and(|s| !s.is_empty()));
        let (imported, blocks) = import(profile, input);
        assert_eq!(
            imported.root.to_string(),
            v["cid"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        assert_eq!(read_back(imported.root, &blocks), input);
    }
}

#[test]
fn boundary_sizes_round_trip_in_both_profiles() {
    for profile in Profile::ALL {
        let chunk = profile.chunk_size();
        for (len, want_blocks, want_depth) in
            [(0, 1, 0), (1, 1, 0), (chunk, 1, 0), (chunk + 1, 3, 1)]
        {
            let data = pattern(len as u64, len);
            let (imported, blocks) = import(profile, &data);
            assert_eq!(imported.size, len as u64);
            assert_eq!(imported.blocks, want_blocks, "{profile} {len}");
            assert_eq!(blocks.len() as u64, want_blocks);
            assert_eq!(depth(imported.root, &blocks), want_depth, "{profile} {len}");
            assert_eq!(read_back(imported.root, &blocks), data, "{profile} {len}");
            let root_is_raw = imported.root.codec() == 0x55;
            assert_eq!(root_is_raw, profile == Profile::V1_2025 && len <= chunk);
            let version = if root_is_raw {
                cid::Version::V1
            } else {
                profile.cid_version()
            };
            assert_eq!(imported.root.version(), version);
        }
    }
}

#[test]
fn v0_width_174_then_a_second_level() {
    let chunk = Profile::V0_2015.chunk_size();
    // 174 chunks fit under one node; one more byte needs a second level.
    let len = 174 * chunk + 1;
    let data = pattern(len as u64, len);
    let (full, blocks) = import(Profile::V0_2015, &data[..174 * chunk]);
    assert_eq!(depth(full.root, &blocks), 1);
    assert_eq!(unixfs::links(&blocks[&full.root]).unwrap().len(), 174);

    let (imported, blocks) = import(Profile::V0_2015, &data);
    assert_eq!(depth(imported.root, &blocks), 2);
    // Root -> [node of 174 leaves, node of the last 1-byte leaf].
    assert_eq!(unixfs::links(&blocks[&imported.root]).unwrap().len(), 2);
    assert_eq!(imported.blocks, 175 + 2 + 1);
    assert_eq!(read_back(imported.root, &blocks), data);
}

#[test]
fn pushing_in_odd_pieces_gives_the_same_root() {
    let len = 3 * Profile::V0_2015.chunk_size() + 12345;
    let data = pattern(len as u64, len);
    for profile in Profile::ALL {
        let (whole, _) = import(profile, &data);
        let mut importer = Importer::new(profile);
        let mut n = 0;
        for piece in data.chunks(77_777) {
            n += importer.push(piece).len() as u64;
        }
        let (imported, last) = importer.finish();
        assert_eq!(imported.root, whole.root);
        assert_eq!(imported.blocks, n + last.len() as u64);
    }
}

#[test]
fn reader_refuses_a_directory_root() {
    // An empty UnixFS directory node: PBNode { Data: UnixFS { Type: Directory } }.
    let dir = Block::hash(cid::Version::V1, 0x70, &[0x0a, 0x02, 0x08, 0x01][..]).unwrap();
    let mut reader = FileReader::new(*dir.cid());
    assert!(matches!(
        reader.feed(&dir),
        Err(unixfs::ReadError::NotAFile(_))
    ));
    assert!(reader.needed().is_none());
    assert!(!reader.is_done());
}

/// The 2-level path of unixfs-v1-2025 needs more than 1024 MiB of input;
/// the tiny-width unit tests in `content::unixfs` cover the same code path
/// cheaply. Run with `--ignored` to check the real width.
#[test]
#[ignore = "imports 1 GiB + 1 MiB"]
fn v1_second_level_after_1024_chunks() {
    let chunk = Profile::V1_2025.chunk_size();
    let len = 1025 * chunk;
    let data = pattern(len as u64, len);
    let (imported, blocks) = import(Profile::V1_2025, &data);
    assert_eq!(depth(imported.root, &blocks), 2);
    assert_eq!(read_back(imported.root, &blocks), data);
}
