// Real-browser test of the IPSR gateway's web pages, driven by
// scripts/browser-test.sh (see README.md here).
//
//   node browser.mjs icon --out FILE
//       writes a small PNG (the test package's icon)
//   node browser.mjs shot --out FILE
//       writes a phone-screenshot-sized PNG (360x640)
//   node browser.mjs run --url http://127.0.0.1:PORT --author K51... \
//       --package org.example.app --version 1.0.0 --title TITLE --query WORDS \
//       --file PUBLISHED_FILE --file-name NAME --cid CID --category CATEGORY \
//       --changelog TEXT --screenshots N --artefacts DIR
//       loads /, searches, follows a category link, opens the package page,
//       checks its text (icons, screenshots, the Markdown description and
//       the HTML injected into it, permissions in words, what's new) and
//       the download link, fetches the download and compares it with the
//       published file, decodes the QR code (the latest APK's URL) and
//       fetches what it names, opens the author's page, follows the
//       F-Droid link to /fdroid, checks that every page fits the phone's
//       width, then loads the package page with JavaScript on at desktop
//       size (the copy button shows, the CSP lets its script run and
//       nothing else), and saves screenshots (home.png, results.png,
//       category.png, package.png, author.png, fdroid.png,
//       package-desktop.png) into DIR; exits 1 on any failure.
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

import jsQR from 'jsqr'
import { chromium } from 'playwright-core'
import { PNG } from 'pngjs'

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
  return png(64, 64, (x, y) => {
    const corner = Math.hypot(Math.max(0, Math.abs(x - 31.5) - 20), Math.max(0, Math.abs(y - 31.5) - 20)) > 11
    const bar = y >= 28 && y < 36 && x >= 16 && x < 48
    return corner ? [255, 255, 255] : bar ? [255, 255, 255] : [11, 87, 208]
  })
}

/** A 360x640 RGB PNG: a phone screen with a title bar and lines of text. */
function pngShot () {
  return png(360, 640, (x, y) => {
    if (y < 56) return [11, 87, 208]
    const line = (y - 80) % 40 < 12 && y > 80 && x > 24 && x < 336 - ((y * 7) % 90)
    return line ? [120, 120, 120] : [250, 250, 250]
  })
}

/** An RGB PNG of `width` x `height` whose pixel (x, y) is `colour(x, y)`. */
function png (width, height, colour) {
  const rows = []
  for (let y = 0; y < height; y++) {
    const row = [0] // filter: none
    for (let x = 0; x < width; x++) row.push(...colour(x, y))
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
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
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

    // Every image a locator matches has loaded (from the gateway: the
    // route above refuses anything else).
    // (Images are lazy: they load after the page's load event, so this
    // waits for them, within the step's timeout.)
    const loaded = async (locator, what, count) => {
      const n = await locator.count()
      check(n === count, `${what}: ${n} shown, ${count} expected`)
      const until = Date.now() + timeout
      const done = () => locator.evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth > 0))
      while (!(await done()) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100))
      check(await done(), `${what}: every image loaded`)
    }

    // 1. The home page: a search box and the recent releases, each with
    // its icon and its categories as links.
    const home = await page.goto(base + '/')
    check(home?.status() === 200, `GET / answered ${home?.status()}`)
    check((await page.title()).endsWith('IPSR'), `home title: ${await page.title()}`)
    check(await page.locator('h1').innerText() === 'Recent releases', 'the home page lists recent releases')
    check(await page.getByRole('link', { name: o.title }).count() === 1, 'the package is among the recent releases')
    await loaded(page.locator('ul.list img.thumb'), 'icons in the recent list', 1)
    await fitsTheScreen('the home page')
    await page.screenshot({ path: join(o.artefacts, 'home.png'), fullPage: true })
    log('home', { ok: true })

    // 2. A category link lists the category's packages under its name.
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('category') === o.category),
      page.locator('ul.list').getByRole('link', { name: o.category }).first().click()
    ])
    check(await page.locator('h1').innerText() === `Apps in ${o.category}`, `category heading: ${await page.locator('h1').innerText()}`)
    check(await page.getByRole('link', { name: o.title }).count() === 1, 'the package is in its category')
    await fitsTheScreen('the category page')
    await page.screenshot({ path: join(o.artefacts, 'category.png'), fullPage: true })
    const other = await page.goto(`${base}/?category=no-such-category`)
    check(other?.status() === 200, 'an empty category answers 200')
    check(await page.getByRole('link', { name: o.title }).count() === 0, 'another category does not list the package')
    await page.goto(base + '/')
    log('category', { ok: true })

    // 3. Search: type into the box and submit with Enter (a plain GET form).
    const box = page.getByRole('searchbox', { name: 'Search apps' })
    await box.fill(o.query)
    await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === o.query), box.press('Enter')])
    const heading = await page.locator('h1').innerText()
    check(heading === `Results for “${o.query}”`, `search heading: ${heading}`)
    check(await box.inputValue() === o.query, 'the query stays in the search box')
    const hit = page.getByRole('link', { name: o.title })
    check(await hit.count() === 1, `the search for "${o.query}" finds the package`)
    await loaded(page.locator('ul.list img.thumb'), 'icons in the results', 1)
    await fitsTheScreen('the results page')
    await page.screenshot({ path: join(o.artefacts, 'results.png'), fullPage: true })
    log('search', { ok: true, url: page.url() })

    const sha = (b) => createHash('sha256').update(b).digest('hex')

    // 4. The package page.
    const pageUrl = `${base}/p/${o.author}/${o.package}`
    await Promise.all([page.waitForURL(pageUrl), hit.click()])
    check(await page.locator('h1').innerText() === o.title, 'the package page shows the title')
    check((await page.title()) === `${o.title} · IPSR`, `package title: ${await page.title()}`)
    const button = page.locator('a.button')
    check(await button.getAttribute('href') === download, `download href: ${await button.getAttribute('href')}`)
    check((await button.innerText()).startsWith(`Download ${o.version}`), 'the button names the version')
    const text = await page.locator('main').innerText()
    const shortAuthor = `${o.author.slice(0, 12)}…${o.author.slice(-6)}`
    for (const want of [
      o.cid,
      o.package,
      shortAuthor,
      // Permissions in words, from the APK's manifest, and their names.
      'Have full network access',
      'Take pictures and videos',
      'android.permission.CAMERA',
      'Android 7.0 (API 24)',
      'arm64-v8a',
      `What's new in ${o.version}`,
      o.changelog,
      // The injected HTML is shown as text.
      '<img src=x onerror=alert(1)>',
      `ipsr-cli --gateway ${base} verify ${o.fileName} ${o.author}/${o.package}@${o.version}`,
      `ipsr-cli --gateway ${base} download ${o.author}/${o.package}@${o.version}`,
      // The file's SHA-256, signed by publish, and how to check it (the
      // test APK is unsigned: no certificate, so no apksigner step).
      `sha256sum ${o.fileName}`,
      sha(published)
    ]) {
      check(text.includes(want), `the package page shows ${JSON.stringify(want)}`)
    }
    // The author's byline is its short form, not the 62-character id.
    const byline = await page.locator('main p.muted').first().innerText()
    check(byline.includes(shortAuthor) && !byline.includes(o.author), `byline: ${byline}`)
    // The Markdown description: a heading, emphasis, a list and a link
    // with rel="nofollow ugc"; the injected HTML never became elements,
    // and the javascript: link is not a link.
    const description = page.locator('div.description')
    check(await description.locator('h4').innerText() === 'Features', 'a Markdown heading (## is h4)')
    check(await description.locator('li').count() === 2, 'a Markdown list')
    check(await description.locator('strong').innerText() === 'never', 'Markdown emphasis')
    const link = description.locator('a')
    check(await link.count() === 1, `one link in the description, ${await link.count()} found`)
    check(await link.getAttribute('href') === 'https://notes.example/help', `link href: ${await link.getAttribute('href')}`)
    check((await link.getAttribute('rel') ?? '').split(' ').includes('ugc'), 'the link is rel=ugc')
    check(await description.locator('script, img, iframe').count() === 0, 'no element from the injected HTML')
    check(await page.locator('a[href^="javascript:"]').count() === 0, 'no javascript: link')
    check(!text.includes('apksigner'), 'no apksigner step for an unsigned APK')
    await loaded(page.locator('div.shots img'), 'screenshots', Number(o.screenshots))
    const versions = await page.locator('table.versions tr').nth(1).locator('td').allInnerTexts()
    check(versions[0] === o.version, `versions table: ${versions}`)
    check(/^\d{4}-\d\d-\d\d$/.test(versions[1]), `a release date: ${versions[1]}`)
    check(/^\d+(\.\d)? (B|KiB|MiB)$/.test(versions[2]), `a release size: ${versions[2]}`)
    check(versions[3].includes(o.changelog), `the version's changes: ${versions[3]}`)
    const icon = page.locator('img.icon')
    check(await icon.evaluate((img) => img.complete && img.naturalWidth === 64), 'the icon is shown')
    // The QR code names the latest APK, not this version: decode it.
    const qr = page.locator('figure.qr svg')
    const box2 = await qr.boundingBox()
    check(box2 !== null && box2.width >= 120 && box2.height >= 120, `the QR code is shown: ${JSON.stringify(box2)}`)
    const shot = PNG.sync.read(await qr.screenshot())
    const decoded = jsQR(new Uint8ClampedArray(shot.data), shot.width, shot.height)
    const latest = `${base}/latest/${o.author}/${o.package}.apk`
    check(decoded?.data === latest, `the QR code says ${decoded?.data}, not ${latest}`)
    // The category is a link to its listing.
    check(await page.locator('table').getByRole('link', { name: o.category }).getAttribute('href') === `/?category=${o.category}`, 'the category links its listing')
    await fitsTheScreen('the package page')
    await page.screenshot({ path: join(o.artefacts, 'package.png'), fullPage: true })
    log('package', { ok: true, qr: decoded?.data })

    // 5. The download link, and the QR code's URL, give the published bytes.
    for (const url of [base + download, latest]) {
      const answer = await context.request.get(url, { timeout })
      check(answer.status() === 200, `GET ${url} answered ${answer.status()}`)
      const body = await answer.body()
      check(body.equals(published), `${url} is the published file (${body.length} B, sha256 ${sha(body)})`)
    }
    log('download', { ok: true, bytes: published.length, sha256: sha(published) })

    // 6. The author's page, reached from the byline.
    await Promise.all([page.waitForURL(`${base}/p/${o.author}`), page.locator('main p.muted a').first().click()])
    check(await page.getByRole('link', { name: o.title }).count() === 1, 'the author page lists the package')
    await loaded(page.locator('ul.list img.thumb'), 'icons on the author page', 1)
    await fitsTheScreen('the author page')
    await page.screenshot({ path: join(o.artefacts, 'author.png'), fullPage: true })
    log('author', { ok: true })

    // 7. The F-Droid repository: the home page links the page that says
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
    // 8. A 404 page naming a long id still fits the phone's screen.
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

    // 9. With JavaScript on, at desktop size: the page's one script runs
    // under the CSP (a refused script is a console error) and shows the
    // button that copies the author's id; the page still fits.
    const js = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_ARGS, timeout })
    try {
      const jsPage = await js.newPage({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: true })
      await jsPage.route('**/*', (route) => route.request().url().startsWith(base + '/') ? route.continue() : route.abort())
      jsPage.on('console', (m) => { if (m.type() === 'error') problems.push(`console (JavaScript on): ${m.text()}`) })
      jsPage.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
      await jsPage.goto(pageUrl)
      const copy = jsPage.getByRole('button', { name: 'Copy author id' })
      await copy.waitFor({ state: 'visible' })
      check(await copy.getAttribute('data-copy') === o.author, 'the copy button holds the whole author id')
      // The screenshots are lazy images: wait for them before the picture.
      await jsPage.waitForFunction(() => [...document.querySelectorAll('div.shots img')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout })
      const wide = await jsPage.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)
      check(wide, 'the package page fits a desktop screen')
      await jsPage.screenshot({ path: join(o.artefacts, 'package-desktop.png'), fullPage: true })
    } finally {
      await js.close().catch(() => {})
    }
    log('javascript', { ok: true })

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
    category: { type: 'string' },
    changelog: { type: 'string' },
    screenshots: { type: 'string' },
    artefacts: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30' }
  }
})
if (command === 'icon' && values.out) {
  writeFileSync(values.out, pngIcon())
} else if (command === 'shot' && values.out) {
  writeFileSync(values.out, pngShot())
} else if (command === 'attack' && values.api && values.url) {
  process.exitCode = await attack(values)
} else if (command === 'run') {
  const missing = ['url', 'author', 'package', 'version', 'title', 'query', 'file', 'file-name', 'cid', 'category', 'changelog', 'screenshots', 'artefacts']
    .filter((k) => values[k] === undefined)
  if (missing.length) {
    console.error(`browser.mjs run: missing --${missing.join(', --')}`)
    process.exit(2)
  }
  process.exitCode = await run({ ...values, fileName: values['file-name'] })
} else {
  console.error('usage: node browser.mjs icon --out FILE | shot --out FILE | run --url URL ... (see the top of this file)')
  process.exit(2)
}
