// IPSR <-> Helia interop check (Bitswap 1.2.0 + UnixFS), loopback only.
//
// Subcommands (all output on stdout is one JSON object per line; logs go to stderr):
//
//   node interop.mjs gen --seed S --size N --out FILE
//       Writes N deterministic pseudo-random bytes (sha256(seed ‖ counter) stream).
//
//   node interop.mjs run --ipsr MULTIADDR [--fetch CID,FILE,PROFILE]... [--serve FILE,PROFILE]...
//                        [--timeout SECONDS] [--serve-timeout SECONDS]
//       Starts a Helia node (TCP on 127.0.0.1, noise, yamux, identify, ping,
//       Bitswap; no routing, no discovery, no bootstrap), dials the IPSR node,
//       then:
//         --fetch: `cat`s CID over Bitswap, checks sha256 against FILE, imports
//                  FILE with the PROFILE's settings (v1|v0) and checks the root
//                  CID equals CID.  Prints {"event":"fetch",...}.
//         --serve: imports FILE with the PROFILE's settings (v1|v0; v1 if left
//                  out), prints {"event":"serving",...} for each, then
//                  {"event":"ready",...}, and stays up and connected (serving
//                  the blocks over Bitswap) until it gets SIGTERM/SIGINT or
//                  --serve-timeout elapses.
//       --resend-blocks 1: every Bitswap message that carries blocks is sent
//                  twice, the way older Helia and kubo servers did when a new
//                  wantlist came in while they were still sending (the
//                  receiver must take the copy as a harmless duplicate).
//       Prints {"event":"disconnected",...} if the IPSR node's connection drops.
//       Exits 1 if any check failed, 2 on a timeout or error.

import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'

// The current Helia/libp2p releases target Node.js >= 22 and use
// Promise.withResolvers (Node 22+); this machine has Node 20, so define it
// before loading them (it is the only Node 22 API they need here).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { withBitswap } = await import('@helia/bitswap')
const { withLibp2pLight } = await import('@helia/libp2p')
const { unixfs } = await import('@helia/unixfs')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { tcp } = await import('@libp2p/tcp')
const { multiaddr } = await import('@multiformats/multiaddr')
const { MemoryBlockstore } = await import('blockstore-core')
const { MemoryDatastore } = await import('datastore-core')
const { createHeliaLight } = await import('helia')
const { CID } = await import('multiformats/cid')
const { PROFILES, importOptions } = await import('./profiles.mjs')

const log = (...args) => console.error('[helia]', ...args)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

function parseArgs (argv) {
  const args = { fetch: [], serve: [] }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]
    const val = argv[i + 1]
    if (!key.startsWith('--') || val == null) throw new Error(`bad argument ${key}`)
    i++
    const name = key.slice(2)
    if (name === 'fetch' || name === 'serve') args[name].push(val)
    else args[name] = val
  }
  return args
}

async function gen (args) {
  const seed = args.seed ?? '0'
  const size = Number(args.size)
  if (!Number.isSafeInteger(size) || size < 0 || args.out == null) throw new Error('gen needs --size N --out FILE')
  const buf = Buffer.alloc(size)
  let off = 0
  for (let counter = 0; off < size; counter++) {
    const h = createHash('sha256').update(`ipsr-interop:${seed}:${counter}`).digest()
    off += h.copy(buf, off, 0, Math.min(h.length, size - off))
  }
  await writeFile(args.out, buf)
  out({ event: 'gen', file: args.out, size, sha256: sha256(buf) })
}

async function createNode () {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({
    blockstore: new MemoryBlockstore(),
    datastore: new MemoryDatastore(),
    routers: []
  }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    connectionGater: {
      // loopback only: refuse to dial anything that is not 127.0.0.0/8
      denyDialMultiaddr: (ma) => {
        const first = ma.getComponents()[0]
        return !(first?.name === 'ip4' && first.value.startsWith('127.'))
      }
    },
    services: {
      identify: identify(),
      ping: ping()
    }
  }))
  await helia.start()
  return helia
}

// Sends every message that carries blocks a second time (--resend-blocks).
// Bitswap's Network class is not exported; bitswap.js imports it from this
// same file, so patching its prototype here patches the running node.
async function resendBlocks () {
  const url = new URL('./node_modules/@helia/bitswap/dist/src/network.js', import.meta.url)
  const { Network } = await import(url)
  const send = Network.prototype.sendMessage
  Network.prototype.sendMessage = async function (peerId, message, options) {
    await send.call(this, peerId, message, options)
    if (message.blocks.size > 0) {
      await send.call(this, peerId, message, options)
    }
  }
}

async function run (args) {
  const timeoutMs = Number(args.timeout ?? 120) * 1000
  if (args.ipsr == null) throw new Error('run needs --ipsr MULTIADDR')
  if (args['resend-blocks'] === '1') await resendBlocks()
  const helia = await createNode()
  const libp2p = helia.libp2p
  const fs = unixfs(helia)
  let failed = false
  out({
    event: 'started',
    peerId: libp2p.peerId.toString(),
    addrs: libp2p.getMultiaddrs().map(String)
  })

  const t0 = Date.now()
  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    await Promise.race([helia.stop(), new Promise(resolve => setTimeout(resolve, 3000))])
    process.exit(code)
  }
  process.on('SIGTERM', () => { stop(failed ? 1 : 0) })
  process.on('SIGINT', () => { stop(failed ? 1 : 0) })

  libp2p.addEventListener('peer:disconnect', (evt) => {
    log('peer disconnected', evt.detail.toString())
    out({ event: 'disconnected', peer: evt.detail.toString(), ms: Date.now() - t0 })
  })

  const conn = await libp2p.dial(multiaddr(args.ipsr), { signal: AbortSignal.timeout(timeoutMs) })
  log('connected to', conn.remotePeer.toString(), 'via', conn.remoteAddr.toString(), 'encryption', conn.encryption, 'muxer', conn.multiplexer)
  // identify runs right after the connection opens; wait until it tells us the
  // remote speaks Bitswap 1.2.0 so the want goes out immediately
  const deadline = Date.now() + 10_000
  let protocols = []
  while (Date.now() < deadline) {
    protocols = (await libp2p.peerStore.get(conn.remotePeer).catch(() => null))?.protocols ?? []
    if (protocols.includes('/ipfs/bitswap/1.2.0')) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  out({ event: 'dialed', peer: conn.remotePeer.toString(), ms: Date.now() - t0, protocols })

  for (const spec of args.fetch) {
    const [cidStr, file, profile] = spec.split(',')
    const expected = await readFile(file)
    const cid = CID.parse(cidStr)
    const t1 = Date.now()
    const chunks = []
    let size = 0
    const signal = AbortSignal.timeout(timeoutMs)
    setMaxListeners(Infinity, signal)
    try {
      for await (const chunk of fs.cat(cid, { signal })) {
        chunks.push(chunk)
        size += chunk.length
      }
    } catch (err) {
      out({ event: 'fetch', cid: cidStr, profile, ok: false, error: `${err.name}: ${err.message}`, ms: Date.now() - t1 })
      failed = true
      continue
    }
    const ms = Date.now() - t1
    const got = sha256(Buffer.concat(chunks))
    const want = sha256(expected)
    // Helia's own import of the same bytes with the profile's settings, into a
    // separate offline blockstore so nothing here short-cuts the fetch above
    const offline = unixfs({ blockstore: new MemoryBlockstore() })
    const heliaCid = await offline.addBytes(expected, importOptions(profile))
    const shaOk = got === want && size === expected.length
    const cidOk = heliaCid.toString() === cid.toString()
    if (!shaOk || !cidOk) failed = true
    out({ event: 'fetch', cid: cidStr, profile, size, sha256: got, expectedSha256: want, shaOk, heliaCid: heliaCid.toString(), cidOk, ok: shaOk && cidOk, ms })
  }

  if (args.serve.length > 0) {
    for (const spec of args.serve) {
      const [file, profile = 'v1'] = spec.split(',')
      const bytes = await readFile(file)
      const cid = await fs.addBytes(bytes, importOptions(profile))
      out({ event: 'serving', cid: cid.toString(), profile, size: bytes.length, sha256: sha256(bytes), peerId: libp2p.peerId.toString() })
    }
    out({ event: 'ready', peerId: libp2p.peerId.toString() })
    const serveMs = Number(args['serve-timeout'] ?? 120) * 1000
    setTimeout(() => { log('serve timeout'); out({ event: 'serve-timeout' }); stop(2) }, serveMs)
    return
  }
  await stop(failed ? 1 : 0)
}

const [cmd, ...rest] = process.argv.slice(2)
try {
  const args = parseArgs(rest)
  if (cmd === 'gen') await gen(args)
  else if (cmd === 'run') await run(args)
  else throw new Error('usage: interop.mjs gen|run ...')
} catch (err) {
  log('error:', err)
  out({ event: 'error', error: `${err.name}: ${err.message}` })
  process.exit(2)
}
