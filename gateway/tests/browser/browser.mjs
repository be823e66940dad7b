// Real-browser test of the IPSR gateway's web pages, driven by
// scripts/browser-test.sh (see README.md here).
//
//   node browser.mjs icon --out FILE
//       writes a small PNG (the test package's icon)
//   node browser.mjs run --url http://127.0.0.1:PORT --author K51... \
//       --package org.example.app --version 1.0.0 --title TITLE --query WORDS \
//       --file PUBLISHED_FILE --cid CID --artefacts DIR
//       loads /, searches, opens the package page, checks its text and the
//       download link, fetches the download and compares it with the
//       published file, follows the F-Droid link to /fdroid, and saves
//       screenshots (home.png, results.png, fdroid.png,
//       package.png) into DIR; exits 1 on any failure.
//   node browser.mjs attack --url http://127.0.0.1:PORT --api http://127.0.0.1:PORT
//       a page of another site (the gateway's home page loaded as
//       http://attacker.test:PORT, JavaScript on) posts to the node API
//       without a preflight (POST /v1/gc, text/plain), and
//       the browser is sent to the API under the page's own name (DNS
//       rebinding: attacker.test resolves to 127.0.0.1); the node must
//       answer 403 cross_origin and 403 forbidden_host, and its own
//       origin must still get 200; exits 1 on any failure.
//
// Headless Chromium from the system (Debian's `chromium` package) with
// JavaScript off, on a phone-sized screen (390x844), in a fresh profile
// that talks to nothing but the gateway.

import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { crc32, deflateSync } from 'node:zlib'

import { chromium } from 'playwright-core'

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-crash-reporter',
  '--disable-dev-shm-usage'
]

const log = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }))

class Check extends Error {}

function check (ok, what) {
  if (!ok) throw new Check(what)
}

// --- icon ------------------------------------------------------------------

/** A 64x64 RGB PNG: a blue rounded tile with a white bar, as a package icon. */
function pngIcon () {
  const size = 64
  const rows = []
  for (let y = 0; y < size; y++) {
    const row = [0] // filter: none
    for (let x = 0; x < size; x++) {
      const corner = Math.hypot(Math.max(0, Math.abs(x - 31.5) - 20), Math.max(0, Math.abs(y - 31.5) - 20)) > 11
      const bar = y >= 28 && y < 36 && x >= 16 && x < 48
      const [r, g, b] = corner ? [255, 255, 255] : bar ? [255, 255, 255] : [11, 87, 208]
      row.push(r, g, b)
    }
    rows.push(Buffer.from(row))
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(size, 0)
  header.writeUInt32BE(size, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0))
  ])
}

// --- run -------------------------------------------------------------------

async function run (o) {
  const base = o.url.replace(/\/+$/, '')
  const timeout = Number(o.timeout) * 1000
  const published = readFileSync(o.file)
  const download = `/api/v1/download/${o.author}/${o.package}/${o.version}`
  mkdirSync(o.artefacts, { recursive: true })
  const profile = mkdtempSync(join(tmpdir(), 'ipsr-chromium-'))
  const problems = [] // what the browser itself reports: CSP violations, failed loads
  let context
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: o.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout,
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      locale: 'en-US'
    })
    context.setDefaultTimeout(timeout)
    // Only the gateway: anything else the page asks for is refused and reported.
    await context.route('**/*', (route) => {
      const url = route.request().url()
      if (url.startsWith(base + '/')) return route.continue()
      problems.push(`request off the gateway: ${url}`)
      return route.abort()
    })
    const page = context.pages()[0] ?? await context.newPage()
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`))
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`) })

    const fitsTheScreen = async (what) => {
      const { scroll, width } = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        width: document.documentElement.clientWidth
      }))
      check(scroll <= width, `${what} is ${scroll} px wide on a ${width} px screen`)
    }

    // 1. The home page: a search box and the recent releases.
    const home = await page.goto(base + '/')
    check(home?.status() === 200, `GET / answered ${home?.status()}`)
    check((await page.title()).endsWith('IPSR'), `home title: ${await page.title()}`)
    check(await page.locator('h1').innerText() === 'Recent releases', 'the home page lists recent releases')
    check(await page.getByRole('link', { name: o.title }).count() === 1, 'the package is among the recent releases')
    await fitsTheScreen('the home page')
    await page.screenshot({ path: join(o.artefacts, 'home.png'), fullPage: true })
    log('home', { ok: true })

    // 2. Search: type into the box and submit with Enter (a plain GET form).
    const box = page.getByRole('searchbox', { name: 'Search apps' })
    await box.fill(o.query)
    await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === o.query), box.press('Enter')])
    const heading = await page.locator('h1').innerText()
    check(heading === `Results for “${o.query}”`, `search heading: ${heading}`)
    check(await box.inputValue() === o.query, 'the query stays in the search box')
    const hit = page.getByRole('link', { name: o.title })
    check(await hit.count() === 1, `the search for "${o.query}" finds the package`)
    await page.screenshot({ path: join(o.artefacts, 'results.png'), fullPage: true })
    log('search', { ok: true, url: page.url() })

    // 3. The package page.
    await Promise.all([page.waitForURL(`${base}/p/${o.author}/${o.package}`), hit.click()])
    check(await page.locator('h1').innerText() === o.title, 'the package page shows the title')
    check((await page.title()) === `${o.title} · IPSR`, `package title: ${await page.title()}`)
    const button = page.locator('a.button')
    check(await button.getAttribute('href') === download, `download href: ${await button.getAttribute('href')}`)
    check((await button.innerText()).startsWith(`Download ${o.version}`), 'the button names the version')
    const text = await page.locator('main').innerText()
    for (const want of [
      o.cid,
      o.package,
      o.author,
      'android.permission.INTERNET',
      `ipsr-cli verify ${o.fileName} ${o.author}/${o.package}@${o.version}`,
      `ipsr-cli download ${o.author}/${o.package}@${o.version}`
    ]) {
      check(text.includes(want), `the package page shows ${JSON.stringify(want)}`)
    }
    const versions = await page.locator('table.versions tr').nth(1).locator('td').allInnerTexts()
    check(versions[0] === o.version, `versions table: ${versions}`)
    check(/^\d{4}-\d\d-\d\d$/.test(versions[1]), `a release date: ${versions[1]}`)
    check(/^\d+(\.\d)? (B|KiB|MiB)$/.test(versions[2]), `a release size: ${versions[2]}`)
    const qr = await page.locator('figure.qr svg').boundingBox()
    check(qr !== null && qr.width >= 120 && qr.height >= 120, `the QR code is shown: ${JSON.stringify(qr)}`)
    const icon = page.locator('img.icon')
    check(await icon.evaluate((img) => img.complete && img.naturalWidth === 64), 'the icon is shown')
    await fitsTheScreen('the package page')
    await page.screenshot({ path: join(o.artefacts, 'package.png'), fullPage: true })
    log('package', { ok: true })

    // 4. The download link gives the published bytes.
    const answer = await context.request.get(base + download, { timeout })
    check(answer.status() === 200, `GET ${download} answered ${answer.status()}`)
    const body = await answer.body()
    const sha = (b) => createHash('sha256').update(b).digest('hex')
    check(body.equals(published), `the download is the published file (${body.length} B, sha256 ${sha(body)})`)
    log('download', { ok: true, bytes: body.length, sha256: sha(body) })

    // 5. The F-Droid repository: the home page links the page that says
    // how to add it, with the link an F-Droid client opens and its QR code.
    await page.goto(base + '/')
    const add = await page.getByRole('link', { name: 'Add to F-Droid' }).getAttribute('href')
    check(/^fdroidrepo:\/\/.+\/fdroid\/repo\?fingerprint=[0-9a-f]{64}$/.test(add ?? ''), `add link: ${add}`)
    await Promise.all([page.waitForURL(`${base}/fdroid`), page.getByRole('link', { name: 'How to add it' }).click()])
    check(await page.locator('h1').innerText() === 'Add this gateway to F-Droid', 'the F-Droid page')
    const fingerprint = add.split('fingerprint=')[1]
    check((await page.locator('main').innerText()).includes(fingerprint), 'the F-Droid page shows the fingerprint')
    const code = await page.locator('div.qr svg').boundingBox()
    check(code !== null && code.width >= 120, `the F-Droid QR code is shown: ${JSON.stringify(code)}`)
    const feed = await page.goto(base + '/')
    check(feed?.status() === 200, 'home again')
    check(await page.locator('link[rel=alternate][type="application/atom+xml"]').count() === 1, 'the home page names its feed')
    // 6. A 404 page naming a long id still fits the phone's screen.
    const missing = `/p/${o.author}/org.example.${'x'.repeat(60)}`
    const before = problems.length
    const gone = await page.goto(base + missing)
    check(gone?.status() === 404, `GET ${missing} answered ${gone?.status()}`)
    await fitsTheScreen('the 404 page')
    // That 404 was asked for: what the browser reported of it (the answer
    // and its console line) is not a problem.
    const expected = [`HTTP 404: ${base}${missing}`, 'console: Failed to load resource: the server responded with a status of 404 (Not Found)']
    const after = problems.splice(before)
    problems.push(...after.filter((p) => !expected.includes(p)))
    await page.goto(base + '/fdroid')
    await fitsTheScreen('the F-Droid page')
    await page.screenshot({ path: join(o.artefacts, 'fdroid.png'), fullPage: true })
    log('fdroid', { ok: true })

    check(problems.length === 0, `the browser reported: ${problems.join('; ')}`)
    log('done', { ok: true })
    return 0
  } catch (e) {
    log('error', { ok: false, error: e instanceof Check ? e.message : String(e?.stack ?? e), problems })
    return 1
  } finally {
    await context?.close().catch(() => {})
    rmSync(profile, { recursive: true, force: true })
  }
}

// --- attack ----------------------------------------------------------------

async function attack (o) {
  const api = new URL(o.api)
  const timeout = Number(o.timeout) * 1000
  // Another site whose name resolves to 127.0.0.1: its page is loaded
  // from loopback, so Chromium's own guard against public pages reaching
  // local addresses stays out of the way and the node's rules are tested.
  const evil = `http://attacker.test:${new URL(o.url).port}`
  const profile = mkdtempSync(join(tmpdir(), 'ipsr-chromium-'))
  let context
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: o.chromium,
      headless: true,
      // attacker.test is 127.0.0.1: what a rebinding DNS server answers.
      args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP attacker.test 127.0.0.1'],
      // The attacker writes its own page; the gateway's CSP is not its.
      bypassCSP: true,
      timeout
    })
    context.setDefaultTimeout(timeout)
    const page = context.pages()[0] ?? await context.newPage()

    // 1. Cross-site: a no-preflight POST from the attacker's page.
    await page.goto(`${evil}/`)
    const gc = `${api.origin}/v1/gc`
    const failed = []
    page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`))
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.url() === gc).catch((e) => { throw new Check(`no answer to the POST (${failed.join('; ')}): ${e.message}`) }),
      page.evaluate((url) => fetch(url, {
        method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: 'x'
      }).catch(() => {}), gc)
    ])
    const sent = await posted.request().allHeaders()
    // The answer is opaque to the page (and to this driver): its status
    // is what the node decided.
    check(posted.status() === 403, `a cross-site POST /v1/gc answered ${posted.status()}`)
    log('cross-site', { ok: true, status: posted.status(), origin: sent.origin, site: sent['sec-fetch-site'] })

    // 2. Rebinding: the API under the attacker's name.
    const rebound = await page.goto(`http://attacker.test:${api.port}/v1/status`)
    const code = JSON.parse(await rebound.text()).code
    check(rebound.status() === 403 && code === 'forbidden_host',
      `GET /v1/status as attacker.test answered ${rebound.status()} ${code}`)
    log('rebinding', { ok: true, status: rebound.status(), code })

    // 3. The node's own origin is served.
    const own = await page.goto(`${api.origin}/v1/status`)
    check(own.status() === 200, `GET /v1/status from its own origin answered ${own.status()}`)
    log('own-origin', { ok: true, status: own.status() })
    return 0
  } catch (e) {
    log('error', { ok: false, error: e instanceof Check ? e.message : String(e?.stack ?? e) })
    return 1
  } finally {
    await context?.close().catch(() => {})
    rmSync(profile, { recursive: true, force: true })
  }
}

// --- main ------------------------------------------------------------------

const [command, ...rest] = process.argv.slice(2)
const { values } = parseArgs({
  args: rest,
  options: {
    out: { type: 'string' },
    url: { type: 'string' },
    api: { type: 'string' },
    author: { type: 'string' },
    package: { type: 'string' },
    version: { type: 'string' },
    title: { type: 'string' },
    query: { type: 'string' },
    file: { type: 'string' },
    'file-name': { type: 'string' },
    cid: { type: 'string' },
    artefacts: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30' }
  }
})
if (command === 'icon' && values.out) {
  writeFileSync(values.out, pngIcon())
} else if (command === 'attack' && values.api && values.url) {
  process.exitCode = await attack(values)
} else if (command === 'run') {
  const missing = ['url', 'author', 'package', 'version', 'title', 'query', 'file', 'file-name', 'cid', 'artefacts']
    .filter((k) => values[k] === undefined)
  if (missing.length) {
    console.error(`browser.mjs run: missing --${missing.join(', --')}`)
    process.exit(2)
  }
  process.exitCode = await run({ ...values, fileName: values['file-name'] })
} else {
  console.error('usage: node browser.mjs icon --out FILE | run --url URL ... (see the top of this file)')
  process.exit(2)
}
