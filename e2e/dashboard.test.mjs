// Browser test of the /admin usage dashboard: Debian's headless Chromium,
// driven by playwright-core, against opsbot's HTTP API on 127.0.0.1 over a
// freshly seeded database (e2e/seedserver). Run with `make test-browser`.
//
// It checks that the page asks for the admin token, keeps it out of every
// URL, draws one bar per day whose values are exactly the API's daily costs,
// fills the top users/models and spend-vs-budget tables from the API, and
// saves a screenshot to test-results/dashboard.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SEEDSERVER = process.env.SEEDSERVER || path.join(root, "bin", "e2e-seedserver");

let server; // the seedserver child process
let ready; // {url, token, user_token, start, end, tz}
let context; // the browser context (persistent, fresh profile)
let profileDir;

function startSeedServer() {
  return new Promise((resolve, reject) => {
    server = spawn(SEEDSERVER, [], { stdio: ["pipe", "pipe", "inherit"] });
    server.on("error", reject);
    server.on("exit", (code) => reject(new Error("seedserver exited with " + code)));
    readline.createInterface({ input: server.stdout }).once("line", (line) => resolve(JSON.parse(line)));
  });
}

before(async () => {
  ready = await startSeedServer();
  profileDir = mkdtempSync(path.join(tmpdir(), "opsbot-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
});

after(async () => {
  if (context) await context.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  if (server) {
    server.removeAllListeners("exit");
    const exited = new Promise((r) => server.once("exit", r));
    server.stdin.end(); // the seedserver drops its database and exits
    await exited;
  }
});

async function api(pathAndQuery) {
  const resp = await fetch(ready.url + pathAndQuery, { headers: { Authorization: "Bearer " + ready.token } });
  assert.equal(resp.status, 200, pathAndQuery);
  return resp.json();
}

test("dashboard shows the API's figures", async () => {
  const page = await context.newPage();
  const seenURLs = [];
  page.on("request", (req) => seenURLs.push(req.url()));
  const consoleErrors = [];
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));

  await page.goto(ready.url + "/admin");
  assert.match(await page.locator("#status").textContent(), /admin token/);
  // The default range is the last 30 days in the server's zone, as the API
  // counts them (not in UTC or the browser's zone).
  assert.equal(await page.inputValue("#tz"), ready.tz);
  assert.deepEqual([await page.inputValue("#start"), await page.inputValue("#end")], [ready.start, ready.end]);

  // Without a token nothing loads.
  await page.click("#load");
  assert.match(await page.locator("#status").textContent(), /token first/);

  await page.fill("#token", ready.token);
  await page.fill("#start", ready.start);
  await page.fill("#end", ready.end);
  await page.fill("#tz", ready.tz);
  await page.click("#load");
  await page.waitForSelector("body[data-loaded=true]", { timeout: 15000 });

  const q = new URLSearchParams({ start: ready.start, end: ready.end, tz: ready.tz });
  const [days, byUser, byModel, budgets] = await Promise.all([
    api("/api/v1/admin/usage?group_by=day&" + q),
    api("/api/v1/admin/usage?group_by=user&" + q),
    api("/api/v1/admin/usage?group_by=model&" + q),
    api("/api/v1/admin/budgets"),
  ]);

  // The chart: one bar per day, each carrying exactly the API's cost.
  const bars = await page.$$eval("#chart rect.bar", (rs) => rs.map((r) => ({
    date: r.getAttribute("data-date"),
    cost: Number(r.getAttribute("data-cost-micro-usd")),
    height: Number(r.getAttribute("height")),
  })));
  assert.equal(bars.length, 30);
  assert.deepEqual(bars.map((b) => [b.date, b.cost]), days.rows.map((r) => [r.key, r.cost_micro_usd]));
  assert.ok(days.totals.cost_micro_usd > 0, "seeded usage present");
  // Bar heights are proportional to cost.
  const maxBar = bars.reduce((m, b) => (b.cost > m.cost ? b : m));
  for (const b of bars) {
    assert.ok(Math.abs(b.height / maxBar.height - b.cost / maxBar.cost) < 1e-6, "bar " + b.date + " is to scale");
  }
  // The y axis: evenly spaced round ticks (1, 2 or 5 × 10^n micro-USD) from
  // $0 to at least the tallest bar, each labelled with its exact value.
  const ticks = await page.$$eval("#chart text.tick", (ts) => ts.map((t) => [Number(t.getAttribute("data-micro-usd")), t.textContent]));
  assert.ok(ticks.length >= 3, "at least three y ticks, got " + ticks.length);
  const tickStep = ticks[1][0];
  assert.match(String(tickStep), /^[125]0*$/, "tick step " + tickStep + " is 1, 2 or 5 × 10^n");
  ticks.forEach(([v, label], i) => {
    assert.equal(v, i * tickStep, "tick " + i);
    assert.equal(Number(label.slice(1)), v / 1e6, "tick label " + label);
  });
  assert.ok(ticks.at(-1)[0] >= maxBar.cost && ticks.at(-2)[0] < maxBar.cost, "the axis ends at the first tick above the tallest bar");
  assert.equal(await page.getAttribute("#chart", "data-total-micro-usd"), String(days.totals.cost_micro_usd));
  assert.equal(await page.textContent("#total-cost"), "$" + (days.totals.cost_micro_usd / 1e6).toFixed(2));
  assert.equal(await page.textContent("#total-users"), String(byUser.rows.length));

  // Top users and models, in the API's order.
  const userRows = await page.$$eval("#users tbody tr", (trs) => trs.map((tr) => [tr.children[0].textContent, Number(tr.dataset.costMicroUsd)]));
  assert.deepEqual(userRows, byUser.rows.slice(0, 10).map((r) => [r.label, r.cost_micro_usd]));
  const modelRows = await page.$$eval("#models tbody tr", (trs) => trs.map((tr) => tr.children[0].textContent));
  assert.deepEqual(modelRows, byModel.rows.map((r) => r.key));

  // Spend vs budget: the org row and one per user budget.
  const budgetRows = await page.$$eval("#budgets tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent.trim())));
  assert.equal(budgetRows.length, 1 + budgets.users.length);
  assert.equal(budgetRows[0][0], "Whole organisation");
  assert.equal(budgetRows[0][2], "$" + (budgets.org.limit_micro_usd / 1e6).toFixed(2));

  // The token never travels in a URL and stays in this tab's sessionStorage.
  for (const u of seenURLs) assert.ok(!u.includes(ready.token), "token in URL " + u);
  assert.ok(!page.url().includes(ready.token));
  assert.equal(await page.evaluate(() => sessionStorage.getItem("opsbot_admin_token")), ready.token);
  assert.equal(await page.inputValue("#token"), "", "token field cleared after use");
  assert.deepEqual(consoleErrors, [], "no script errors (CSP included)");

  mkdirSync(path.join(root, "test-results"), { recursive: true });
  await page.screenshot({ path: path.join(root, "test-results", "dashboard.png"), fullPage: true });

  // A bad token and a non-admin's token are refused with the API's message.
  for (const [token, want] of [["not-a-real-token", /Could not load: Missing or invalid bearer token/], [ready.user_token, /Could not load: Admin role required/]]) {
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.fill("#token", token);
    await page.click("#load");
    await page.waitForFunction(() => document.getElementById("status").className === "error");
    assert.match(await page.textContent("#status"), want);
    assert.equal(await page.$$eval("#chart rect.bar", (rs) => rs.length), 0, "no figures drawn for a refused token");
  }
});
