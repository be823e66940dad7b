// Import settings matching IPSR's profiles (docs/content.md, IPIP-499),
// shared by interop.mjs and vectors.mjs.
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

export const PROFILES = {
  v1: { name: 'unixfs-v1-2025', cidVersion: 1, rawLeaves: true, chunkSize: 1024 * 1024, width: 1024 },
  v0: { name: 'unixfs-v0-2015', cidVersion: 0, rawLeaves: false, chunkSize: 256 * 1024, width: 174 }
}

/** The ipfs-unixfs-importer options of a profile (`v1` or `v0`). */
export function importOptions (profile) {
  const p = PROFILES[profile]
  if (p == null) throw new Error(`unknown profile ${profile} (v1|v0)`)
  return {
    cidVersion: p.cidVersion,
    rawLeaves: p.rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: p.chunkSize }),
    layout: balanced({ maxChildrenPerNode: p.width })
  }
}
