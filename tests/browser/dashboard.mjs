// The dashboard in a real headless Chromium, against a running pushmon.
//
//   BASE_URL=http://127.0.0.1:8080 ADMIN_TOKEN=… READ_KEY=pmk_… ARTIFACTS=dir node dashboard.mjs
//
// Run by tests/it/browser.rs, which starts the server. Exits 1 on the first failed
// check, naming it; saves a screenshot of each page into ARTIFACTS.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./browser.mjs";

const BASE = must("BASE_URL");
const ADMIN_TOKEN = must("ADMIN_TOKEN");
const READ_KEY = must("READ_KEY");
const ARTIFACTS = must("ARTIFACTS");
mkdirSync(ARTIFACTS, { recursive: true });

function must(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const problems = [];
let shots = 0;

/** A page whose console errors and uncaught exceptions are collected. */
async function watched(context, who) {
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push(`${who}: console error on ${page.url()}: ${message.text()} (${message.location().url})`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${who}: uncaught: ${error.message}`));
  return page;
}

async function shot(page, name) {
  shots += 1;
  const file = join(ARTIFACTS, `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

async function push(url, query = "") {
  const response = await fetch(url + query, { method: "POST" });
  return response.status;
}

/** Marks the window, so a check can tell that the page was not reloaded since. */
async function mark(page) {
  await page.evaluate(() => { window.__notReloaded = true; });
}
async function stillMarked(page) {
  assert.equal(await page.evaluate(() => window.__notReloaded === true), true, "the page was reloaded");
}

async function signIn(page, secret) {
  await page.goto(BASE + "/");
  assert.match(page.url(), /\/login\?next=%2F$/, "signed out, / sends to sign in");
  await page.fill('input[name="token"]', secret);
  await Promise.all([page.waitForURL(BASE + "/"), page.click('button[type="submit"]')]);
}

const admin = await launch();
const reader = await launch();
try {
  const page = await watched(admin.context, "admin");

  // Sign in.
  await page.goto(BASE + "/login");
  await shot(page, "sign-in");
  await signIn(page, ADMIN_TOKEN);
  assert.match(await page.textContent("main"), /No monitors yet/);
  await shot(page, "monitors-empty");

  // A channel, from its form.
  await page.goto(BASE + "/channels");
  await page.fill('input[name="name"]', "ops hook");
  await page.selectOption('select[name="kind"]', "webhook");
  await page.fill('input[name="url"]', "http://127.0.0.1:9/hook");
  await Promise.all([page.waitForURL(BASE + "/channels"), page.click('form[data-kind-form] button[type="submit"]')]);
  assert.match(await page.textContent(".flash.ok"), /Created channel “ops hook”/);
  // Email fields show only for email.
  assert.equal(await page.isVisible('input[name="smtp_url"]'), false);
  await page.selectOption('select[name="kind"]', "email");
  assert.equal(await page.isVisible('input[name="smtp_url"]'), true);
  // A Telegram channel told about downs only: its own fields, not a URL.
  await page.selectOption('select[name="kind"]', "telegram");
  assert.equal(await page.isVisible('input[name="url"]'), false);
  assert.equal(await page.isVisible('input[name="bot_token"]'), true);
  assert.equal(await page.isVisible('textarea[name="body"]'), false);
  await page.fill('input[name="name"]', "on-call telegram");
  await page.fill('input[name="bot_token"]', "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
  await page.fill('input[name="chat_id"]', "-1001234567890");
  await page.selectOption('select[name="send_on"]', "down");
  await shot(page, "channel-form-telegram");
  await Promise.all([page.waitForURL(BASE + "/channels"), page.click('form[data-kind-form] button[type="submit"]')]);
  assert.match(await page.textContent(".flash.ok"), /Created channel “on-call telegram”/);
  assert.match(await page.textContent("table.channels"), /chat -1001234567890 via .* · down only/);
  // A templated webhook shows its method, headers and body.
  await page.selectOption('select[name="kind"]', "template");
  assert.equal(await page.isVisible('textarea[name="body"]'), true);
  assert.equal(await page.isVisible('select[name="method"]'), true);
  await page.selectOption('select[name="kind"]', "webhook");
  await shot(page, "channels");

  // A monitor, from its form, alerting the channel.
  await page.goto(BASE + "/monitors/new");
  await page.fill('input[name="name"]', "browser job");
  await page.fill('input[name="timeout"]', "3s");
  await page.fill('input[name="tags"]', "prod, browser");
  await page.check('input[name="channels"]');
  await shot(page, "monitor-form");
  await Promise.all([page.waitForURL(/\/monitors\/[0-9a-f-]{36}$/), page.click('form.form button[type="submit"]')]);
  const monitorUrl = page.url();
  const monitorId = monitorUrl.split("/").pop();
  const pushUrl = (await page.textContent("#push-url")).trim();
  assert.match(pushUrl, /\/api\/push\/[A-Za-z0-9_-]{22}$/);
  assert.match(await page.textContent(".flash.ok"), /Created “browser job”/);
  const snippets = await page.textContent("[data-tabs]");
  for (const name of ["curl", "cron", "pushmon run", "Python", "Node.js", "PowerShell"]) {
    assert.ok(snippets.includes(name), `a ${name} snippet`);
  }
  assert.ok(snippets.includes(pushUrl), "snippets carry the real URL");

  // The list turns up, then down, live: no reload.
  await page.goto(BASE + "/");
  const row = `tr[data-id="${monitorId}"]`;
  await page.waitForSelector(`${row} .pill.pending`);
  await page.waitForSelector("#live-dot.on");
  await mark(page);
  assert.equal(await push(pushUrl, "?msg=from%20the%20browser%20test&value=7"), 200);
  await page.waitForSelector(`${row} .pill.up`, { timeout: 10000 });
  await stillMarked(page);
  assert.doesNotMatch(await page.title(), /down/);
  await shot(page, "monitors-up");
  await page.waitForSelector(`${row} .pill.down`, { timeout: 15000 });
  await stillMarked(page);
  assert.match(await page.title(), /^\(1 down\) /, "the title counts what is down");
  const icon = await page.getAttribute("#favicon", "href");
  assert.match(icon, /^data:image\/svg\+xml,/, "the favicon is redrawn");
  assert.ok(decodeURIComponent(icon).includes(">1<"), "the favicon shows the count");
  assert.equal((await page.textContent('[data-count="down"]')).trim(), "1");
  await shot(page, "monitors-down");
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, "monitors-down-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // Filters.
  await page.goto(BASE + "/?status=up");
  assert.equal(await page.locator(row).count(), 0, "the down monitor is filtered out");
  await page.goto(BASE + "/?q=BROWSER");
  assert.equal(await page.locator(row).count(), 1, "text search ignores case");

  // The monitor's page: up again live, then pause, rotate.
  await page.goto(monitorUrl);
  await page.waitForSelector("#live-dot.on");
  await mark(page);
  assert.equal(await push(pushUrl, "?value=9"), 200);
  await page.waitForSelector("#monitor-status.up", { timeout: 10000 });
  await stillMarked(page);
  await page.reload();
  assert.ok(await page.isVisible("svg.chart"), "values are charted");
  assert.match(await page.textContent("section.card:has(h2:text('Incidents'))"), /timeout/);
  await shot(page, "monitor-page");
  await Promise.all([page.waitForURL(monitorUrl), page.click("#pause")]);
  assert.equal((await page.textContent("#monitor-status")).trim(), "Paused");
  assert.ok(await page.isVisible("#resume"));
  await shot(page, "monitor-paused");

  await page.click("text=Rotate token");
  await page.waitForURL(monitorUrl + "/rotate-token");
  assert.match(await page.textContent("main"), /stops working at once/);
  await shot(page, "rotate-confirm");
  await Promise.all([page.waitForURL(monitorUrl), page.click("#confirm")]);
  const newUrl = (await page.textContent("#flash-copy")).trim();
  assert.notEqual(newUrl, pushUrl, "a new push URL");
  assert.equal((await page.textContent("#push-url")).trim(), newUrl);
  assert.equal(await push(pushUrl), 404, "the old URL no longer works");
  assert.equal(await push(newUrl), 200, "the new one does");
  await shot(page, "token-rotated");

  // A badge and a status page.
  await Promise.all([page.waitForURL(BASE + "/public"), page.click("text=Make a badge of this monitor")]);
  await page.waitForFunction(() => [...document.images].every((img) => img.complete && img.naturalWidth > 0));
  await page.fill('input[name="title"]', "Example status");
  await page.fill('input[name="slug"]', "example");
  await page.fill('textarea[name="monitors"]', "browser job");
  await Promise.all([page.waitForURL(BASE + "/public"), page.click("text=Create status page")]);
  await shot(page, "badges-and-status-pages");
  await page.goto(BASE + "/status/example");
  assert.match(await page.textContent("main"), /browser job/);
  assert.ok(!(await page.content()).includes(newUrl.split("/").pop()), "no token on the status page");
  await shot(page, "status-page");

  // Sign out: the session is gone.
  await page.goto(BASE + "/");
  await Promise.all([page.waitForURL(BASE + "/login"), page.click("text=Sign out")]);
  await page.goto(BASE + "/");
  assert.match(page.url(), /\/login/, "signed out for good");

  // A read key sees, and cannot change anything.
  const readPage = await watched(reader.context, "reader");
  await signIn(readPage, READ_KEY);
  assert.match(await readPage.textContent(".role"), /read-only/);
  assert.equal(await readPage.locator("text=New monitor").count(), 0);
  await readPage.goto(monitorUrl);
  for (const selector of ["#pause", "#resume", "text=Rotate token", "text=Delete", "#push-url"]) {
    assert.equal(await readPage.locator(selector).count(), 0, `no ${selector} for a read key`);
  }
  await shot(readPage, "read-only-monitor");
  const csrf = await readPage.getAttribute('input[name="csrf"]', "value");
  const refused = await reader.context.request.post(monitorUrl + "/resume", {
    form: { csrf },
    headers: { origin: BASE },
    maxRedirects: 0,
  });
  assert.equal(refused.status(), 403, "the server refuses a read key's change");
  await readPage.goto(BASE + "/channels");
  assert.equal(await readPage.locator("text=Send test").count(), 0);
  await shot(readPage, "read-only-channels");

  assert.deepEqual(problems, [], "no console errors");
  console.log(`ok: ${shots} screenshots in ${ARTIFACTS}`);
} finally {
  await admin.close();
  await reader.close();
}
