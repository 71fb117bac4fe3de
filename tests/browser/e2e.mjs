// Real-browser end-to-end tests of the storefront against the dev server (offline mode,
// in-process Stripe emulator). Run by `cargo test -p dev --test browser`, or by hand:
//
//   PORT=3000 cargo run -p dev &
//   SHOP_URL=http://localhost:3000 EMULATOR_URL=http://127.0.0.1:12111 ADMIN_TOKEN=... \
//     ARTIFACTS=artifacts/browser node tests/browser/e2e.mjs
//
// (EMULATOR_URL: the dev server's Stripe emulator, for the owner scenarios' outbox and request
// log; ADMIN_TOKEN: the one the dev server was started with.)
//
// Uses playwright-core from tests/oracle/node_modules (`npm ci` there) and a system Chromium
// (`CHROMIUM`, default /usr/bin/chromium; Debian: `apt-get install chromium`). No browser is
// downloaded. Every request to anything but localhost/127.0.0.1 is blocked and fails the run,
// except, in the embedded-Checkout scenarios (UI_MODE=embedded_page: the dev server runs with
// CHECKOUT_UI_MODE=embedded_page), Stripe's own URLs: https://js.stripe.com/** is answered with
// the emulator's Stripe.js stand-in (/_emulator/stripe.js) and https://checkout.stripe.com/**
// with the emulator's pages, so the storefront loads Stripe.js and frames Checkout from their
// real origins under the CSP vercel.json gives it.

import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(new URL('../oracle/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const SHOP_URL = (process.env.SHOP_URL || 'http://localhost:3000').replace(/\/+$/, '');
const SHOP_ORIGIN = new URL(SHOP_URL).origin;
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || 'artifacts/browser');
const NEUTRAL = 'This code doesn\u2019t lower the total of this cart.';
const ADMIN_TOKEN = process.env.ADMIN_TOKEN || '';
// The dev server's Stripe emulator (its email outbox and request log), for the owner scenarios.
const EMULATOR_URL = (process.env.EMULATOR_URL || '').replace(/\/+$/, '');
// hosted_page (the default: the hosted-Checkout scenarios) or embedded_page (embedded Checkout).
const UI_MODE = process.env.UI_MODE || 'hosted_page';
const STRIPE_JS_ORIGIN = 'https://js.stripe.com';
const CHECKOUT_ORIGIN = 'https://checkout.stripe.com';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

mkdirSync(ARTIFACTS, { recursive: true });

const consoleLog = [];
let problems = []; // per scenario: CSP violations / JS errors on the shop's pages, off-host requests
let expectedConsoleError = null; // per scenario: a console error the scenario provokes on purpose

function isLocal(u) {
  try {
    const h = new URL(u).hostname;
    return h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
  } catch {
    return u.startsWith('data:') || u.startsWith('about:') || u.startsWith('blob:');
  }
}

function onShop(page, locUrl) {
  const urls = [locUrl, page.url()].filter(Boolean);
  return urls.some((u) => {
    try { return new URL(u).origin === SHOP_ORIGIN; } catch { return false; }
  });
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function newContext(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.viewport || DESKTOP,
    deviceScaleFactor: opts.deviceScaleFactor || 1,
    isMobile: !!opts.isMobile,
    hasTouch: !!opts.isMobile,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  // Nothing may leave the machine.
  await context.route((url) => !isLocal(url.href), (route) => {
    problems.push(`blocked off-host request: ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  // Registered later, so tried first: Stripe's origins answered by the emulator.
  if (opts.stripe) await standInForStripe(context);
  context.on('page', (page) => watch(page));
  return context;
}

/** What the Stripe stand-in served, per context (the scenarios check the page asked for it). */
const stripeRequests = new WeakMap();

/** https://js.stripe.com/** ⇒ the emulator's Stripe.js stand-in; https://checkout.stripe.com/**
 * ⇒ the emulator's page at the same path (GET and the payment form's POST, no redirect
 * followed). The URLs the page uses stay Stripe's, so its CSP decides whether they load. */
async function standInForStripe(context) {
  assert(EMULATOR_URL, 'EMULATOR_URL (the dev server\'s Stripe emulator) must be set for embedded Checkout');
  const seen = [];
  stripeRequests.set(context, seen);
  await context.route(`${STRIPE_JS_ORIGIN}/**`, async (route) => {
    seen.push(`${route.request().method()} ${route.request().url()}`);
    const res = await fetch(`${EMULATOR_URL}/_emulator/stripe.js`);
    await route.fulfill({
      status: res.status,
      headers: { 'content-type': res.headers.get('content-type') || 'text/javascript' },
      body: Buffer.from(await res.arrayBuffer()),
    });
  });
  await context.route(`${CHECKOUT_ORIGIN}/**`, async (route) => {
    const req = route.request();
    seen.push(`${req.method()} ${req.url()}`);
    const url = new URL(req.url());
    const res = await fetch(`${EMULATOR_URL}${url.pathname}${url.search}`, {
      method: req.method(),
      headers: req.headers()['content-type'] ? { 'content-type': req.headers()['content-type'] } : {},
      body: req.method() === 'GET' || req.method() === 'HEAD' ? undefined : req.postDataBuffer(),
      redirect: 'manual',
    });
    const headers = { 'content-type': res.headers.get('content-type') || 'text/html' };
    if (res.headers.get('location')) headers.location = res.headers.get('location');
    await route.fulfill({ status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) });
  });
}

function watch(page) {
  page.on('console', (msg) => {
    const loc = msg.location() || {};
    const text = msg.text();
    consoleLog.push(`[${msg.type()}] ${page.url()} ${loc.url || ''}:${loc.lineNumber ?? ''} ${text}`);
    if (!onShop(page, loc.url)) return; // the emulator's hosted page is not ours
    if (/Content Security Policy|Refused to|violates the following/i.test(text)) {
      problems.push(`CSP violation on ${page.url()}: ${text}`);
    } else if (msg.type() === 'error' && !(expectedConsoleError && expectedConsoleError.test(text))) {
      problems.push(`console error on ${page.url()}: ${text}`);
    }
  });
  page.on('pageerror', (err) => {
    consoleLog.push(`[pageerror] ${page.url()} ${err.stack || err}`);
    if (onShop(page)) problems.push(`JS error on ${page.url()}: ${err.message || err}`);
  });
}

async function shot(page, name, opts = {}) {
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: opts.fullPage ?? true });
}

const card = (page, id) => page.locator(`[data-product-id="${id}"]`);

async function openShop(page) {
  await page.goto(`${SHOP_URL}/`);
  await page.locator('[data-product-id="tshirt"] button.inc').waitFor({ state: 'visible' });
  await page.locator('[data-product-id="mug"]').waitFor();
  // Web fonts are system fonts; wait for layout to settle before screenshots.
  await page.evaluate(() => document.fonts && document.fonts.ready);
}

async function add(page, id, n) {
  for (let i = 0; i < n; i++) await card(page, id).locator('button.inc').click();
}

async function qty(page, id) {
  return card(page, id).locator('input.qty').inputValue();
}

async function text(page, sel) {
  return (await page.locator(sel).textContent() || '').trim();
}

async function applyCode(page, code) {
  await page.fill('#code', code);
  await page.click('#apply-code');
  await page.waitForFunction(() => {
    const s = document.getElementById('code-status');
    const t = s ? s.textContent.trim() : '';
    return t !== '' && !t.startsWith('Updating');
  });
  return text(page, '#code-status');
}

async function checkoutToHosted(page) {
  await page.click('#checkout');
  await page.waitForURL(/\/c\/pay\/cs_/);
  await page.locator('#pay').waitFor();
}

/** Money text ("$57.60", "−$6.40", "Free") in cents. */
function cents(t) {
  if (/^free$/i.test(t)) return 0;
  const n = Math.round(parseFloat(t.replace(/[^0-9.]/g, '')) * 100);
  return /^[\u2212-]/.test(t) ? -n : n;
}

/** The success page's summary: lines, breakdown rows and total, in cents. */
async function successSummary(page) {
  return page.evaluate(() => {
    const visible = (id) => { const e = document.getElementById(id); return e && !e.hidden && !e.closest('[hidden]'); };
    const t = (id) => (document.getElementById(id).textContent || '').trim();
    return {
      number: visible('order-number-line') ? t('order-number') : '',
      lines: Array.from(document.querySelectorAll('#order-items li .line-amount')).map((e) => e.textContent.trim()),
      subtotal: visible('order-breakdown') ? t('order-subtotal') : null,
      discount: visible('order-discount-row') ? t('order-discount') : null,
      shipping: visible('order-shipping-row') ? [t('order-shipping-label'), t('order-shipping')] : null,
      tax: visible('order-tax-row') ? [t('order-tax-label'), t('order-tax')] : null,
      total: t('order-amount'),
      text: t('status-text'),
    };
  });
}

/** Lines add up to the subtotal, and subtotal − discount + shipping (+ tax) to the total. */
function assertAddsUp(s, label) {
  const lines = s.lines.map(cents).reduce((a, b) => a + b, 0);
  assert(lines === cents(s.subtotal), `${label}: lines ${lines} != subtotal ${s.subtotal}`);
  let sum = cents(s.subtotal) + (s.discount ? cents(s.discount) : 0) + (s.shipping ? cents(s.shipping[1]) : 0);
  if (s.tax && !/included/.test(s.tax[0])) sum += cents(s.tax[1]);
  assert(sum === cents(s.total), `${label}: parts add up to ${sum}, total says ${s.total} (${JSON.stringify(s)})`);
}

async function noHorizontalOverflow(page, label) {
  const { sw, iw } = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth,
    iw: window.innerWidth,
  }));
  assert(sw <= iw, `${label}: page is ${sw}px wide in a ${iw}px viewport (horizontal scroll)`);
}

// ------------------------------------------------------------------ scenarios

async function buy(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openShop(page);
  await noHorizontalOverflow(page, 'shop (desktop)');
  // The dev server runs on the emulator's test keys: the storefront says so.
  await page.locator('#test-mode-ribbon').waitFor({ state: 'visible' });
  assert((await text(page, '#test-mode-ribbon')) === 'Test mode', 'Test mode ribbon text');
  await shot(page, '01-shop.png');

  await add(page, 'tshirt', 2);
  await add(page, 'mug', 1);
  assert((await qty(page, 'tshirt')) === '2', 'tshirt quantity should be 2');
  assert((await qty(page, 'mug')) === '1', 'mug quantity should be 1');
  assert((await text(page, '#subtotal')) === '$64.00', `subtotal before code: ${await text(page, '#subtotal')}`);

  assert((await text(page, '#shipping')) === 'From $5.00', `cart shipping: ${await text(page, '#shipping')}`);
  assert((await text(page, '#total-label')) === 'Total before shipping', `total label: ${await text(page, '#total-label')}`);
  assert(/No tax is added/.test(await text(page, '#totals-note')), `totals note: ${await text(page, '#totals-note')}`);
  const status = await applyCode(page, 'SAVE10');
  assert(status === 'SAVE10 applied: \u2212$6.40.', `SAVE10 status: ${JSON.stringify(status)}`);
  await page.locator('#discount-row').waitFor({ state: 'visible' });
  assert((await text(page, '#subtotal')) === '$64.00', `subtotal: ${await text(page, '#subtotal')}`);
  assert((await text(page, '#discount')) === '\u2212$6.40', `discount: ${await text(page, '#discount')}`);
  assert((await text(page, '#total')) === '$57.60', `total: ${await text(page, '#total')}`);
  await shot(page, '02-cart.png');

  await checkoutToHosted(page);
  const rows = await page.locator('tr.item').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('.name').textContent.trim(), tr.querySelector('.qty').textContent.trim()]));
  assert(rows.length === 2, `hosted page items: ${JSON.stringify(rows)}`);
  assert(rows.some(([n, q]) => /t-?shirt/i.test(n) && q === '2'), `hosted page: no 2 × T-shirt in ${JSON.stringify(rows)}`);
  assert(rows.some(([n, q]) => /mug/i.test(n) && q === '1'), `hosted page: no 1 × mug in ${JSON.stringify(rows)}`);
  await shot(page, '03-hosted.png');

  await page.click('#pay');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html' && /^cs_/.test(u.searchParams.get('session_id') || ''));
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 15_000 });
  const summary = await successSummary(page);
  assert(/^RR-[0-9A-Z]{4}-[0-9A-Z]{2}$/.test(summary.number), `order number: ${JSON.stringify(summary.number)}`);
  assert(JSON.stringify(summary.lines) === JSON.stringify(['$50.00', '$14.00']), `line amounts: ${summary.lines}`);
  assert(summary.discount === '\u2212$6.40', `discount: ${summary.discount}`);
  assert(summary.shipping && summary.shipping[0] === 'Standard shipping' && summary.shipping[1] === '$5.00',
    `shipping: ${JSON.stringify(summary.shipping)}`);
  assert(summary.total === '$62.60', `success page total: ${summary.total}`);
  assertAddsUp(summary, 'success page');
  assert(!/confirmation|we.ll email/i.test(summary.text), `success text promises an email: ${summary.text}`);
  const page_text = await page.evaluate(() => document.body.innerText);
  assert(!/Jenny|Main St|@example/i.test(page_text), 'no name, address or email on the success page');
  assert(!(await page.isVisible('#check-again')), '"Check again" on a settled order');
  await noHorizontalOverflow(page, 'success (desktop)');
  await shot(page, '04-success.png');
  await context.close();

  // The same storefront with a cart on a phone.
  const phone = await newContext(browser, { viewport: PHONE, isMobile: true, deviceScaleFactor: 2 });
  const p = await phone.newPage();
  await openShop(p);
  await add(p, 'tshirt', 2);
  await add(p, 'mug', 1);
  assert((await applyCode(p, 'SAVE10')) === 'SAVE10 applied: \u2212$6.40.', 'phone: SAVE10 status');
  await p.locator('#discount-row').waitFor({ state: 'visible' });
  await noHorizontalOverflow(p, 'shop (phone)');
  // A sticky bar keeps the cart's count and total in view while scrolling the products.
  await p.evaluate(() => window.scrollTo(0, 0));
  const bar = p.locator('#cart-bar');
  await bar.waitFor({ state: 'visible' });
  const barBox = await bar.boundingBox();
  assert(barBox && barBox.y + barBox.height <= PHONE.height + 1 && barBox.y > PHONE.height / 2,
    `phone cart bar not at the bottom of the screen: ${JSON.stringify(barBox)}`);
  const barText = (await bar.textContent()).replace(/\s+/g, ' ').trim();
  assert(/3 items/.test(barText) && /\$57\.60/.test(barText), `phone cart bar: ${barText}`);
  await shot(p, '05-phone.png', { fullPage: false });
  await p.locator('#cart-panel').scrollIntoViewIfNeeded();
  await shot(p, '06-phone-cart.png', { fullPage: false });
  await phone.close();
  return 'paid 2 × T-shirt + 1 × mug with SAVE10 ($57.60), order fulfilled';
}

async function cancel(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openShop(page);
  await add(page, 'hoodie', 1);
  await add(page, 'stickers', 3);
  await page.fill('#code', 'SAVE10');
  await checkoutToHosted(page);
  await shot(page, '10-cancel-hosted.png');
  await page.click('#cancel');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/cancel.html');
  await page.locator('#back-to-cart').waitFor();
  await shot(page, '11-cancelled.png');
  await page.click('#back-to-cart');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && (u.pathname === '/' || u.pathname === '/index.html'));
  await page.locator('[data-product-id="hoodie"] input.qty').waitFor();
  await page.waitForFunction(() => {
    const q = (id) => document.querySelector(`[data-product-id="${id}"] input.qty`)?.value;
    return q('hoodie') === '1' && q('stickers') === '3';
  }).catch(() => {});
  const kept = { hoodie: await qty(page, 'hoodie'), stickers: await qty(page, 'stickers'), tshirt: await qty(page, 'tshirt') };
  assert(kept.hoodie === '1' && kept.stickers === '3' && kept.tshirt === '0', `cart after cancel: ${JSON.stringify(kept)}`);
  assert((await page.inputValue('#code')) === 'SAVE10', 'code kept after cancel');
  // The remembered code is re-validated automatically: $55 + $18 = $73, 10 % off.
  await page.waitForFunction(() => /applied/.test(document.getElementById('code-status').textContent));
  assert((await text(page, '#code-status')) === 'SAVE10 applied: \u2212$7.30.', `code status after cancel: ${await text(page, '#code-status')}`);
  assert((await text(page, '#total')) === '$65.70', `total after cancel: ${await text(page, '#total')}`);
  assert(await page.isEnabled('#checkout'), 'checkout enabled after cancel');
  await shot(page, '12-cancel-back.png');
  await context.close();
  return 'cancel.html, back to the shop with the cart (1 hoodie, 3 stickers, SAVE10) kept';
}

async function delayed(browser) {
  // Succeeds after the emulator's async delay.
  let context = await newContext(browser);
  let page = await context.newPage();
  await openShop(page);
  await add(page, 'stickers', 2);
  await checkoutToHosted(page);
  await page.click('#pay-delayed-success');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html');
  const processing = page.locator('#order-status[data-state="awaiting_payment"], #order-status[data-state="pending"]');
  await processing.waitFor({ timeout: 5_000 }).catch(async () => {
    throw new Error(`success page never showed "processing" (data-state=${await page.getAttribute('#order-status', 'data-state')})`);
  });
  const first = await page.getAttribute('#order-status', 'data-state');
  await shot(page, '20-delayed-processing.png');
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 20_000 });
  await shot(page, '21-delayed-fulfilled.png');
  await context.close();

  // Fails after the emulator's async delay.
  context = await newContext(browser);
  page = await context.newPage();
  await openShop(page);
  await add(page, 'mug', 1);
  await checkoutToHosted(page);
  await page.click('#pay-delayed-failure');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html');
  await page.locator('#order-status[data-state="payment_failed"]').waitFor({ timeout: 20_000 });
  await shot(page, '22-delayed-failed.png');
  // The cart survives a failed payment (same tab).
  await page.click('#back-link');
  await page.locator('[data-product-id="mug"] input.qty').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-product-id="mug"] input.qty').value === '1');
  await context.close();
  return `delayed success: ${first} → fulfilled; delayed failure: payment_failed, cart kept`;
}

async function unknownCode(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openShop(page);
  await add(page, 'tshirt', 1);
  const good = await applyCode(page, 'save10');
  assert(good === 'SAVE10 applied: \u2212$2.50.', `SAVE10 message ${JSON.stringify(good)}`);
  await page.locator('#discount-row').waitFor({ state: 'visible' });
  const bad = await applyCode(page, 'NOPE123');
  assert(bad === NEUTRAL, `NOPE123 message ${JSON.stringify(bad)}`);
  const expiredLike = await applyCode(page, 'SAVE10-OLD');
  assert(expiredLike === NEUTRAL, `SAVE10-OLD message ${JSON.stringify(expiredLike)}`);
  assert(!(await page.locator('#code-status').evaluate((e) => e.classList.contains('is-error'))), 'NOPE123 shown as an error');
  assert(!(await page.isVisible('#discount-row')), 'discount row visible for NOPE123');
  assert((await text(page, '#subtotal')) === '$25.00', `subtotal: ${await text(page, '#subtotal')}`);
  assert((await text(page, '#total')) === '$25.00', `total: ${await text(page, '#total')}`);
  await shot(page, '30-unknown-code.png');
  await context.close();
  return 'SAVE10 applied; NOPE123 and SAVE10-OLD: one neutral line, no discount row, total $25.00';
}

async function digitalAndErrors(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openShop(page);
  await add(page, 'wallpapers', 1);
  assert((await text(page, '#shipping')) === 'Nothing to ship', `digital cart shipping: ${await text(page, '#shipping')}`);
  assert((await text(page, '#total-label')) === 'Total', `digital total label: ${await text(page, '#total-label')}`);
  await checkoutToHosted(page);
  await page.click('#pay');
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 15_000 });
  const s = await successSummary(page);
  assert(s.shipping === null, `a digital order shows no shipping: ${JSON.stringify(s.shipping)}`);
  assertAddsUp(s, 'digital order');

  // A link that matches no order: a sentence, and no "Check again" (it cannot help).
  expectedConsoleError = /status of 404/;
  await page.goto(`${SHOP_URL}/success.html?session_id=cs_test_nosuchsession`);
  await page.locator('#order-status[data-state="error"]').waitFor();
  const msg = await text(page, '#status-text');
  assert(/doesn.t match an order/.test(msg) && !/session_id|checkout session/i.test(msg), `404 message: ${msg}`);
  assert(!(await page.isVisible('#check-again')), '"Check again" shown where it cannot help');
  await shot(page, '50-unknown-order.png');
  await context.close();
  return 'digital-only order without shipping; unknown order link: a sentence, no "Check again"';
}

async function admin(browser) {
  assert(ADMIN_TOKEN.length >= 32, 'ADMIN_TOKEN (32+ characters) must be set for the admin scenario');
  const context = await newContext(browser);
  const page = await context.newPage();
  expectedConsoleError = /status of 401/;
  await page.goto(`${SHOP_URL}/admin.html`);
  await page.fill('#token', 'x'.repeat(40));
  await page.click('#show');
  await page.locator('#message.is-error').waitFor();
  assert(/not accepted/.test(await text(page, '#message')), `wrong token: ${await text(page, '#message')}`);
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#show');
  await page.locator('#orders-body tr').first().waitFor();
  const rows = await page.locator('#orders-body tr').evaluateAll((trs) => trs.map((tr) =>
    Array.from(tr.children).map((td) => td.textContent.trim())));
  assert(rows.length >= 3, `admin rows: ${rows.length}`);
  assert(rows.every((r) => /^RR-/.test(r[0]) || r[2] !== 'Fulfilled'), `fulfilled rows without a number: ${JSON.stringify(rows)}`);
  assert(rows.some((r) => r[9] === 'US'), `no order shipping to US: ${JSON.stringify(rows)}`);
  // The health line above the orders (GET /api/health): green, or each problem with its fix.
  await page.locator('#health:not([hidden]) #health-line:not(:empty)').waitFor();
  const healthLine = await text(page, '#health-line');
  assert(/^All checks pass$|needs? attention/.test(healthLine), `health line: ${healthLine}`);
  if (healthLine !== 'All checks pass') {
    assert(/Fix: /.test(await text(page, '#health-problems')), `a problem without its fix: ${await text(page, '#health-problems')}`);
  }
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('rr-shop.admin-token'),
    local: localStorage.length,
    cookie: document.cookie,
    field: document.getElementById('token').value,
  }));
  assert(stored.session === ADMIN_TOKEN && stored.local === 0 && stored.cookie === '' && stored.field === '',
    `token kept outside sessionStorage: ${JSON.stringify({ ...stored, session: !!stored.session })}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csvPath = path.join(ARTIFACTS, 'orders.csv');
  await download.saveAs(csvPath);
  const csv = (await import('node:fs')).readFileSync(csvPath, 'utf8').trim().split(/\r?\n/);
  assert(csv[0].startsWith('order_number,created_at,fulfillment'), `CSV header: ${csv[0]}`);
  assert(csv.length === rows.length + 1, `CSV rows ${csv.length - 1} != table rows ${rows.length}`);
  assert(!csv.join('\n').includes(ADMIN_TOKEN), 'the token in the CSV');
  await noHorizontalOverflow(page, 'admin (desktop)').catch(() => {}); // a wide table scrolls in its own box
  await shot(page, '60-admin.png');
  // A new tab of the same browser does not have it (sessionStorage is per tab).
  const other = await context.newPage();
  await other.goto(`${SHOP_URL}/admin.html`);
  assert(await other.evaluate(() => sessionStorage.getItem('rr-shop.admin-token')) === null, 'token shared across tabs');
  await context.close();
  return `admin list: ${rows.length} orders, CSV downloaded, token only in this tab's sessionStorage`;
}

// ------------------------------------------------------------------ the owner acts, the shopper hears

/** Buys `items` ([id, n] pairs) through the shop and the hosted page; the order's number and
 *  Checkout Session id, from the success page. */
async function buyOrder(browser, items) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openShop(page);
  for (const [id, n] of items) await add(page, id, n);
  await checkoutToHosted(page);
  await page.click('#pay');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html');
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 15_000 });
  const number = await text(page, '#order-number');
  const sessionId = new URL(page.url()).searchParams.get('session_id');
  assert(/^RR-/.test(number) && /^cs_/.test(sessionId || ''), `bought: ${number} ${sessionId}`);
  await context.close();
  return { number, sessionId };
}

/** The admin page signed in, its list loaded. */
async function openAdmin(browser, opts = {}) {
  assert(ADMIN_TOKEN.length >= 32, 'ADMIN_TOKEN (32+ characters) must be set for the owner scenarios');
  const context = await newContext(browser, opts);
  const page = await context.newPage();
  await page.goto(`${SHOP_URL}/admin.html`);
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#show');
  await page.locator('#orders-body tr').first().waitFor();
  return { context, page };
}

/** Opens the order view from the order number in the list. */
async function openOrderView(page, number) {
  await page.click(`#orders-body button.order-open[data-order="${number}"]`);
  await page.locator('#ov-body:not([hidden])').waitFor();
  assert((await text(page, '#ov-number')) === number, `order view of ${await text(page, '#ov-number')}, not ${number}`);
}

/** The order view's definition lists as {term: value}. */
async function viewFacts(page, id) {
  return page.locator(`#${id}`).evaluate((dl) => {
    const out = {};
    dl.querySelectorAll('dt').forEach((dt) => { out[dt.textContent.trim()] = dt.nextElementSibling.textContent.trim(); });
    return out;
  });
}

/** Waits for the order view's message after an action: its kind and text. */
async function actionMessage(page) {
  await page.locator('#ov-message.is-success, #ov-message.is-error').waitFor();
  return page.locator('#ov-message').evaluate((m) => ({
    ok: m.classList.contains('is-success'), text: m.textContent.trim(),
  }));
}

/** GET /api/orders?order=NUMBER from node, as the owner. */
async function ownerOrder(number) {
  const res = await fetch(`${SHOP_URL}/api/orders?order=${encodeURIComponent(number)}`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, Accept: 'application/json' },
  });
  assert(res.ok, `GET /api/orders?order=${number}: ${res.status}`);
  return res.json();
}

async function emulator(pathname) {
  assert(EMULATOR_URL, 'EMULATOR_URL (the dev server\'s Stripe emulator) must be set for the owner scenarios');
  const res = await fetch(`${EMULATOR_URL}${pathname}`);
  assert(res.ok, `GET ${pathname} on the emulator: ${res.status}`);
  return res.json();
}

/** The outbox's message whose subject matches `re`, waited for (up to 10 s). */
async function outboxMessage(re) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await emulator('/_emulator/outbox.json')).filter((m) => re.test(m.subject || ''));
    if (found.length || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The emulator's POST /v1/refunds for this order. */
async function refundCalls(number) {
  return (await emulator('/_emulator/requests')).filter((r) => r.method === 'POST' && r.path === '/v1/refunds' &&
    (r.params || []).some(([k, v]) => k === 'metadata[order_number]' && v === number));
}

async function ownerShips(browser) {
  const { number } = await buyOrder(browser, [['tshirt', 1], ['mug', 1]]);
  const { context, page } = await openAdmin(browser);
  await openOrderView(page, number);
  const email = await text(page, '#ov-email');
  const address = await text(page, '#ov-address');
  assert(/@/.test(email), `order view email: ${email}`);
  assert(address.length > 5 && !/Nothing ships/.test(address), `order view address: ${address}`);
  assert(await page.isEnabled('#ov-ship'), 'Ship disabled on an unshipped order');
  assert(await page.isDisabled('#ov-deliver'), 'Mark delivered enabled before shipping');
  assert((await viewFacts(page, 'ov-delivery')).Shipping === 'Not shipped yet', 'shipping state before');

  const url = `https://tracking.example/ups/track?n=1Z999AA10123456784&lang=en`;
  await page.fill('#ov-carrier', 'UPS');
  await page.fill('#ov-tracking-number', '1Z999AA10123456784');
  await page.fill('#ov-tracking-url', url);
  await page.click('#ov-ship');
  const shipped = await actionMessage(page);
  assert(shipped.ok, `ship: ${shipped.text}`);
  const delivery = await viewFacts(page, 'ov-delivery');
  assert(delivery.Shipping === 'Shipped' && delivery.Carrier === 'UPS' && delivery.Tracking === '1Z999AA10123456784',
    `delivery after shipping: ${JSON.stringify(delivery)}`);
  assert((await page.getAttribute('#ov-tracking-link', 'href')) === url, 'tracking link in the order view');
  assert(await page.isDisabled('#ov-ship') && await page.isEnabled('#ov-deliver') && await page.isDisabled('#ov-cancel'),
    'after shipping: Ship and Cancel disabled, Mark delivered enabled');
  assert(/You marked it shipped with UPS/.test(await text(page, '#ov-history')), `history: ${await text(page, '#ov-history')}`);

  // A move the server refuses (cancel after shipping; the button is disabled, so force it):
  // its message is shown as sent.
  expectedConsoleError = /status of 409/;
  await page.evaluate(() => { document.getElementById('ov-cancel').disabled = false; });
  await page.click('#ov-cancel');
  await page.click('#ov-cancel-yes');
  const refused = await actionMessage(page);
  assert(!refused.ok && /already shipped/.test(refused.text), `cancel after shipping: ${JSON.stringify(refused)}`);

  await page.fill('#ov-note-text', 'Gift: <b>no invoice</b> in the parcel');
  await page.click('#ov-note-save');
  assert((await actionMessage(page)).ok, 'note saved');
  assert((await text(page, '#ov-note')) === 'Gift: <b>no invoice</b> in the parcel', `note: ${await text(page, '#ov-note')}`);
  assert(await page.locator('#ov-note b').count() === 0, 'the note rendered as HTML');
  await page.click('#ov-deliver');
  assert((await actionMessage(page)).ok, 'mark delivered');
  assert((await viewFacts(page, 'ov-delivery')).Shipping === 'Delivered', 'delivered');
  await shot(page, '61-order-view.png');
  await context.close();

  // The shopper's shipped email, with the tracking link given.
  const [mail] = await outboxMessage(new RegExp(`Order ${number} has shipped`));
  assert(mail, `no shipped email for ${number} in the outbox`);
  assert(JSON.stringify(mail.to).includes(email), `shipped email to ${JSON.stringify(mail.to)}, not ${email}`);
  const shopper = await newContext(browser);
  const p = await shopper.newPage();
  await p.setContent(mail.html);
  const links = await p.locator('a').evaluateAll((as) => as.map((a) => [a.textContent.trim(), a.getAttribute('href')]));
  assert(links.length === 1 && links[0][1] === url, `shipped email links: ${JSON.stringify(links)}`);
  assert(/1Z999AA10123456784/.test(await p.textContent('body')), 'tracking number in the shipped email');
  await shot(p, '62-shipped-email.png');
  await shopper.close();

  // The order view on a phone fits the screen.
  const phone = await openAdmin(browser, { viewport: PHONE, isMobile: true, deviceScaleFactor: 2 });
  await openOrderView(phone.page, number);
  await noHorizontalOverflow(phone.page, 'order view (phone)');
  await shot(phone.page, '63-order-view-phone.png');
  await phone.context.close();
  return `${number}: shipped with UPS (tracking link kept), cancel refused with the server's reason, note, delivered; shipped email links ${url}; fits a phone`;
}

async function ownerRefundsPart(browser) {
  const { number, sessionId } = await buyOrder(browser, [['hoodie', 1]]);
  const { context, page } = await openAdmin(browser);
  await openOrderView(page, number);
  const total = (await viewFacts(page, 'ov-totals')).Total;
  assert((await page.inputValue('#ov-refund-amount')) === (cents(total) / 100).toFixed(2),
    `refund prefilled with ${await page.inputValue('#ov-refund-amount')}, total ${total}`);
  await page.fill('#ov-refund-amount', '12.50');
  await page.selectOption('#ov-refund-reason', 'requested_by_customer');
  await page.click('#ov-refund');
  await page.locator('#ov-refund-confirm:not([hidden])').waitFor();
  const question = await text(page, '#ov-refund-question');
  assert(question === 'Refund $12.50 to the shopper?', `confirmation: ${question}`);
  await shot(page, '64-refund-confirm.png', { fullPage: false });
  await page.click('#ov-refund-yes');
  const done = await actionMessage(page);
  assert(done.ok, `refund: ${done.text}`);
  const moneyFacts = await viewFacts(page, 'ov-money');
  assert(moneyFacts.State === 'Partly refunded' && moneyFacts.Refunded === '$12.50', `money: ${JSON.stringify(moneyFacts)}`);
  assert((await page.inputValue('#ov-refund-amount')) === ((cents(total) - 1250) / 100).toFixed(2), 'refund field: what is left');
  assert(/You refunded \$12\.50 \(requested by the shopper\)/.test(await text(page, '#ov-history')),
    `history: ${await text(page, '#ov-history')}`);
  // The list's row is refreshed too.
  const row = await page.locator(`#orders-body tr:has(button[data-order="${number}"])`).evaluate((tr) =>
    Array.from(tr.children).map((td) => td.textContent.trim()));
  assert(row[0] === number && /Partly refunded \(\$12\.50 back\)/.test(row[3]), `list row: ${JSON.stringify(row)}`);
  await context.close();

  // The shopper's page says so, and the refund email says how much.
  const shopper = await newContext(browser);
  const p = await shopper.newPage();
  await p.goto(`${SHOP_URL}/success.html?session_id=${encodeURIComponent(sessionId)}`);
  await p.waitForFunction(() => /partly refunded/.test(document.getElementById('status-title').textContent));
  const said = await text(p, '#status-text');
  assert(/Refunded \$12\.50 of/.test(said), `success page: ${said}`);
  await shot(p, '65-success-partly-refunded.png');
  await shopper.close();
  const [mail] = await outboxMessage(new RegExp(`Order ${number}: refund of 12\\.50 USD`));
  assert(mail && /We refunded part of your order: 12\.50 USD\./.test(mail.text), `refund email: ${JSON.stringify(mail && mail.text)}`);
  return `${number}: refunded $12.50 of ${total} after "${question}"; shopper's page: partly refunded; email: refund of 12.50 USD`;
}

async function refundOnce(browser) {
  const { number } = await buyOrder(browser, [['stickers', 4]]);
  const { context, page } = await openAdmin(browser);
  const keys = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/order-action') keys.push(r.headers()['idempotency-key']);
  });
  await openOrderView(page, number);

  // A double click on the confirmation: one request, one refund.
  await page.fill('#ov-refund-amount', '5');
  await page.click('#ov-refund');
  await page.locator('#ov-refund-confirm:not([hidden])').waitFor();
  await page.locator('#ov-refund-yes').evaluate((b) => { b.click(); b.click(); });
  assert((await actionMessage(page)).ok, 'refund after a double click');
  let seen = await ownerOrder(number);
  assert(seen.order.amount_refunded === 500, `refunded after a double click: ${seen.order.amount_refunded}`);
  assert(seen.order.actions.filter((a) => a.action === 'refund').length === 1, `actions: ${JSON.stringify(seen.order.actions)}`);
  assert((await refundCalls(number)).length === 1, `POST /v1/refunds after a double click: ${(await refundCalls(number)).length}`);

  // The same request sent again under its key (a retry) is answered again, not done again.
  const first = seen.order.actions[0];
  const replay = await page.evaluate(async ([order, key, token]) => {
    const res = await fetch('/api/order-action', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Idempotency-Key': key },
      body: JSON.stringify({ order, action: 'refund', amount: 500, reason: 'requested_by_customer' }),
    });
    return { status: res.status, replayed: res.headers.get('idempotent-replayed'), refunded: (await res.json()).amount_refunded };
  }, [number, first.idempotency_key, ADMIN_TOKEN]);
  assert(replay.status === 200 && replay.replayed === 'true' && replay.refunded === 500, `replay: ${JSON.stringify(replay)}`);

  // The answer is lost on the way back (the server refunded): the retry reuses the key, and
  // the refund is made once.
  expectedConsoleError = /ERR_FAILED|net::/;
  let cut = true;
  await page.route('**/api/order-action', async (route) => {
    if (!cut) return route.continue();
    cut = false;
    await route.fetch();
    await route.abort('failed');
  });
  await page.fill('#ov-refund-amount', '3.00');
  await page.click('#ov-refund');
  await page.locator('#ov-refund-confirm:not([hidden])').waitFor();
  await page.click('#ov-refund-yes');
  const lost = await actionMessage(page);
  assert(!lost.ok && /Not sent/.test(lost.text), `lost answer: ${JSON.stringify(lost)}`);
  assert(await page.isVisible('#ov-refund-yes'), 'the confirmation stays for a retry');
  await page.click('#ov-refund-yes');
  const retried = await actionMessage(page);
  assert(retried.ok, `retry: ${retried.text}`);
  seen = await ownerOrder(number);
  assert(seen.order.amount_refunded === 800, `refunded after a lost answer and a retry: ${seen.order.amount_refunded}`);
  assert((await refundCalls(number)).length === 2, `POST /v1/refunds in all: ${(await refundCalls(number)).length}`);
  // Sent: the double click's one request, its replay, the lost one and its retry.
  assert(keys.length === 4 && keys[0] === keys[1] && keys[2] === keys[3] && keys[0] !== keys[2],
    `Idempotency-Keys sent: ${JSON.stringify(keys)} (one for the double click, one reused for the retry)`);
  await context.close();
  return `${number}: a double click made 1 request and 1 refund ($5.00); a replay under its key answered again; ` +
    `a lost answer retried under the same key refunded $3.00 once (2 POST /v1/refunds in all)`;
}

// Runs last: it uses up this client's distinct-code guesses for the minute.
async function tooManyCodes(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  // The browser logs the 429 it gets as a failed resource load: that one is the point here.
  expectedConsoleError = /status of 429/;
  // Guesses are counted per fixed window (RATE_LIMIT_APPLY_DISCOUNT, 60 s aligned to the
  // clock): fifteen codes straddling a window's end would be split between two windows, so
  // start with at least 20 s of the current one left.
  const WINDOW_S = 60;
  const left = WINDOW_S - ((Date.now() / 1000) % WINDOW_S);
  if (left < 20) await new Promise((r) => setTimeout(r, (left + 1) * 1000));
  await openShop(page);
  await add(page, 'mug', 1);
  let tried = 0;
  let message = NEUTRAL;
  while (message === NEUTRAL && tried < 15) {
    tried++;
    message = await applyCode(page, `GUESS${String(tried).padStart(2, '0')}`);
  }
  assert(/Remove the code/.test(message), `after ${tried} different codes: ${JSON.stringify(message)}`);
  await shot(page, '40-too-many-codes.png');
  await context.close();
  return `the ${tried}th different code: "${message}"`;
}

// ------------------------------------------------------------------ embedded Checkout

/** The directives of a CSP header value: name ⇒ sources. */
function directives(csp) {
  const out = {};
  for (const part of (csp || '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name] = sources;
  }
  return out;
}

/** The one Content-Security-Policy of a response (fails on none or several). */
async function onlyCsp(response, what) {
  const csps = (await response.headersArray()).filter((h) => h.name.toLowerCase() === 'content-security-policy');
  assert(csps.length === 1, `${what}: ${csps.length} Content-Security-Policy headers`);
  return csps[0].value;
}

const EMBEDDED_FRAME = `#embedded-checkout iframe[src^="${CHECKOUT_ORIGIN}/c/pay/cs_"]`;

async function embeddedBuy(browser) {
  const context = await newContext(browser, { stripe: true });
  const page = await context.newPage();
  const doc = await page.goto(`${SHOP_URL}/`);
  await page.locator('[data-product-id="tshirt"] button.inc').waitFor({ state: 'visible' });
  // The storefront is served with the CSP a deployment gives it (vercel.json, via the dev
  // server): Stripe.js and Checkout's frames allowed, nothing else from elsewhere.
  const csp = directives(await onlyCsp(doc, 'GET /'));
  assert(csp['script-src'].includes(STRIPE_JS_ORIGIN) && csp['frame-src'].includes(CHECKOUT_ORIGIN) &&
    !csp['script-src'].some((s) => /unsafe/.test(s)), `storefront CSP: ${JSON.stringify(csp)}`);

  await add(page, 'tshirt', 1);
  await add(page, 'mug', 2);
  assert((await applyCode(page, 'SAVE10')) === 'SAVE10 applied: \u2212$5.30.', 'SAVE10 status');
  await page.click('#checkout');
  await page.locator(EMBEDDED_FRAME).waitFor();
  assert(await page.isHidden('#checkout'), 'the cart is hidden while Checkout is embedded');
  const seen = stripeRequests.get(context);
  assert(seen[0] === `GET ${STRIPE_JS_ORIGIN}/clover/stripe.js`, `first request to Stripe: ${seen[0]}`);
  const frame = page.frameLocator(EMBEDDED_FRAME);
  const rows = await frame.locator('tr.item').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('.name').textContent.trim(), tr.querySelector('.qty').textContent.trim()]));
  assert(rows.length === 2 && rows.some(([n, q]) => /mug/i.test(n) && q === '2'), `frame items: ${JSON.stringify(rows)}`);
  assert((await frame.locator('#total').textContent()).trim() === '$52.70', 'frame total (with SAVE10 and shipping)');
  const frameUrl = page.frames().map((f) => f.url()).find((u) => u.startsWith(`${CHECKOUT_ORIGIN}/c/pay/`));
  assert(frameUrl, `no frame from ${CHECKOUT_ORIGIN}: ${page.frames().map((f) => f.url())}`);
  await shot(page, '80-embedded.png');

  // Back to the cart and again: the first frame is destroyed, a new session mounted.
  await page.click('#embedded-close');
  await page.locator('#checkout').waitFor({ state: 'visible' });
  assert(await page.locator('#embedded-checkout iframe').count() === 0, 'frame left after "Back to cart"');
  await page.click('#checkout');
  await page.locator(EMBEDDED_FRAME).waitFor();
  const second = await page.locator(EMBEDDED_FRAME).getAttribute('src');
  assert(second !== new URL(frameUrl).href && await page.locator('#embedded-checkout iframe').count() === 1,
    `second checkout: ${second} after ${frameUrl}`);

  // Pay inside the frame: Checkout sends the shop page to return_url.
  await page.frameLocator(EMBEDDED_FRAME).locator('#pay').click();
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html' &&
    second.endsWith(`/${u.searchParams.get('session_id')}`));
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 15_000 });
  const summary = await successSummary(page);
  assert(summary.total === '$52.70', `success page total: ${summary.total}`);
  assertAddsUp(summary, 'success page (embedded)');
  await onlyCsp((await page.request.get(page.url())), 'GET /success.html');
  await shot(page, '81-embedded-success.png');
  await context.close();
  return `Stripe.js from ${STRIPE_JS_ORIGIN}, Checkout framed from ${CHECKOUT_ORIGIN} under the storefront's CSP; ` +
    `back to the cart and again; paid $52.70 in the frame, order fulfilled (${seen.length} requests to Stripe's origins)`;
}

// The negative control: the same storefront under the strict CSP every other page gets (what
// vercel.json gave it before) cannot load Stripe.js, and this test sees the violation.
async function embeddedUnderStrictCsp(browser) {
  const strict = (await fetch(`${SHOP_URL}/admin.html`)).headers.get('content-security-policy');
  assert(directives(strict)['script-src'].join(' ') === "'self'", `admin.html CSP: ${strict}`);
  const context = await newContext(browser, { stripe: true });
  const page = await context.newPage();
  await page.route(`${SHOP_URL}/`, async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, headers: { ...res.headers(), 'content-security-policy': strict } });
  });
  await openShop(page);
  await add(page, 'stickers', 1);
  await page.click('#checkout');
  await page.waitForFunction(() => /secure checkout could not be loaded/.test(document.getElementById('message').textContent));
  assert(await page.locator('#embedded-checkout iframe').count() === 0, 'a frame mounted under the strict CSP');
  assert(stripeRequests.get(context).length === 0, `requests reached Stripe: ${stripeRequests.get(context)}`);
  const caught = problems.filter((p) => /CSP violation/.test(p) && p.includes(`${STRIPE_JS_ORIGIN}/clover/stripe.js`));
  assert(caught.length > 0, `no CSP violation seen for Stripe.js: ${JSON.stringify(problems)}`);
  problems = problems.filter((p) => !caught.includes(p)); // expected here, and only here
  await context.close();
  return `under the strict CSP Stripe.js is refused, the shop says so, and the test saw: ${caught[0].slice(0, 140)}…`;
}

// ------------------------------------------------------------------ limited stock

/** The owner sets the mug's stock to 1 on the admin page; a shopper sees "Only 1 left", buys
 *  the last unit, and the next shopper sees "Sold out" with the button disabled. */
async function lastUnit(browser) {
  const owner = await openAdmin(browser);
  await owner.page.selectOption('#stock-product', 'mug');
  await owner.page.fill('#stock-units', '1');
  await owner.page.click('#stock-save');
  await owner.page.locator('#stock-message.is-success').waitFor();
  const set = await text(owner.page, '#stock-message');
  assert(/mug: 1 on hand, 0 reserved, 1 available/.test(set), `the stock form said ${JSON.stringify(set)}`);
  await shot(owner.page, '50-stock-form.png');

  // A slower shopper loads the page while one is left and puts it in the cart.
  const slow = await newContext(browser);
  const late = await slow.newPage();
  await openShop(late);
  await add(late, 'mug', 1);

  const buyer = await newContext(browser);
  let page = await buyer.newPage();
  await openShop(page);
  const left = (await card(page, 'mug').locator('.product-limit').textContent()).trim();
  assert(left === 'Only 1 left', `before: ${JSON.stringify(left)}`);
  await add(page, 'mug', 1);
  assert(await card(page, 'mug').locator('button.inc').isDisabled(), 'one unit left: no second one');
  await checkoutToHosted(page);
  await page.click('#pay');
  await page.waitForURL((u) => u.origin === SHOP_ORIGIN && u.pathname === '/success.html');
  await page.locator('#order-status[data-state="fulfilled"]').waitFor({ timeout: 15_000 });
  await buyer.close();

  // The slower shopper's page is stale; checkout's answer (409) is the truth.
  expectedConsoleError = /status of 409/;
  await late.click('#checkout');
  await late.waitForFunction(() => /sold out/.test(document.getElementById('message').textContent));
  const refused = await text(late, '#message');
  assert(refused === 'Borrow-checked Mug is sold out. Please change your cart.', `stale page: ${JSON.stringify(refused)}`);
  assert(late.url().startsWith(SHOP_URL), 'still on the shop');
  await shot(late, '52-sold-out-at-checkout.png');
  await slow.close();

  const next = await newContext(browser);
  page = await next.newPage();
  await openShop(page);
  const sold = (await card(page, 'mug').locator('.product-limit').textContent()).trim();
  assert(sold === 'Sold out', `after: ${JSON.stringify(sold)}`);
  assert(await card(page, 'mug').locator('button.inc').isDisabled(), 'a sold-out product cannot be added');
  await shot(page, '51-sold-out.png');
  await next.close();

  // Back to unlimited, through the same form.
  await owner.page.fill('#stock-units', '');
  await owner.page.click('#stock-save');
  await owner.page.locator('#stock-message.is-success').waitFor();
  await owner.page.waitForFunction(() => /unlimited/.test(document.getElementById('stock-message').textContent));
  await owner.context.close();
  return 'the last mug bought; the storefront says "Sold out"';
}

// ------------------------------------------------------------------ runner

const scenarios = UI_MODE === 'embedded_page' ? [
  ['embedded Checkout: Stripe.js and the Checkout frame under the deployed CSP, pay in the frame', embeddedBuy],
  ['embedded Checkout under the strict CSP fails, and the violation is caught', embeddedUnderStrictCsp],
] : [
  ['buy', buy],
  ['cancel', cancel],
  ['delayed payment', delayed],
  ['unknown code', unknownCode],
  ['digital order and errors', digitalAndErrors],
  ['admin order list', admin],
  ['owner ships from the order view, shopper gets the tracking link', ownerShips],
  ['owner refunds part, shopper sees it and is emailed', ownerRefundsPart],
  ['a double click on Refund refunds once', refundOnce],
  ['too many codes', tooManyCodes],
  ['the last unit, then "Sold out"', lastUnit],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
});

let passed = 0;
let failed = 0;
const started = Date.now();
try {
  for (const [name, run] of scenarios) {
    problems = [];
    expectedConsoleError = null;
    const t0 = Date.now();
    let detail;
    let error = null;
    try {
      detail = await run(browser);
    } catch (e) {
      error = e;
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (!error && problems.length === 0) {
      passed++;
      console.log(`ok   ${name} (${secs}s): ${detail}`);
    } else {
      failed++;
      console.log(`FAIL ${name} (${secs}s): ${error ? (error.message || error).toString().split('\n')[0] : 'page problems'}`);
      for (const p of problems) console.log(`       ${p}`);
    }
  }
} finally {
  await browser.close();
  writeFileSync(path.join(ARTIFACTS, 'console.log'), consoleLog.join('\n') + '\n');
}
console.log(`(screenshots and console.log in ${ARTIFACTS}; ${((Date.now() - started) / 1000).toFixed(1)}s)`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed === scenarios.length ? 0 : 1;
