// Prints the root CIDs Helia's UnixFS importer (ipfs-unixfs-importer) gives
// for deterministic inputs in both IPIP-499 profiles, as JSON lines; the
// Rust test content/tests/unixfs.rs checks IPSR gives the same CIDs
// (content/tests/vectors/unixfs.json). Input: the sha256 stream of
// `ipsr-interop:{seed}:{counter}` (counter from 0), truncated to `size`.
//
//   node vectors.mjs
import { createHash } from 'node:crypto'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { PROFILES, importOptions } from './profiles.mjs'

function input (seed, size) {
  const buf = Buffer.alloc(size)
  let off = 0
  for (let counter = 0; off < size; counter++) {
    const h = createHash('sha256').update(`ipsr-interop:${seed}:${counter}`).digest()
    off += h.copy(buf, off, 0, Math.min(h.length, size - off))
  }
  return buf
}

const CASES = [
  ['v1', 'v1', 3 * 1024 * 1024 + 5],
  ['v1', 'v1', 1024 * 1024],
  ['v0', 'v0', 3 * 1024 * 1024 + 5],
  ['v0', 'v0', 174 * 256 * 1024],
  ['v0', 'v0', 174 * 256 * 1024 + 1]
]

for (const [profile, seed, size] of CASES) {
  const options = importOptions(profile)
  let root
  for await (const entry of importer([{ content: input(seed, size) }], new MemoryBlockstore(), options)) {
    root = entry.cid
  }
  process.stdout.write(JSON.stringify({ profile: PROFILES[profile].name, seed, size, cid: root.toString() }) + '\n')
}
