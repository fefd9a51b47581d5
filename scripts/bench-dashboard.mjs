// The dashboard's list page in headless Chromium, for scripts/bench-dashboard.sh.
//
//   node bench-dashboard.mjs load BASE_URL ADMIN_TOKEN LOADS
//     signs in, then loads / LOADS times; prints one line per load:
//     "LOAD ttfb_ms=… rows_ms=… dom_ms=… rows=…" (rows_ms: from the start of the
//     navigation until the first row of the table is visible)
//   node bench-dashboard.mjs hold BASE_URL ADMIN_TOKEN SECONDS
//     signs in, opens / with its live updates connected, and keeps it open SECONDS
//     seconds; prints "HOLD live=1 events=N" when done.
import { launch } from "../tests/browser/browser.mjs";

const [mode, base, token, amount] = process.argv.slice(2);
const { context, close } = await launch();
try {
  const page = await context.newPage();
  await page.goto(base + "/login");
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(base + "/"), page.click('button[type="submit"]')]);
  if (mode === "load") {
    for (let i = 0; i < Number(amount); i++) {
      const started = Date.now();
      await page.goto(base + "/?load=" + i, { waitUntil: "commit" });
      await page.waitForSelector("table.monitors tbody tr", { state: "visible" });
      const rowsMs = Date.now() - started;
      await page.waitForLoadState("domcontentloaded");
      const timing = await page.evaluate(() => {
        const [nav] = performance.getEntriesByType("navigation");
        return {
          ttfb: nav.responseStart - nav.startTime,
          dom: nav.domContentLoadedEventEnd - nav.startTime,
          rows: document.querySelectorAll("table.monitors tbody tr").length,
        };
      });
      console.log(
        `LOAD ttfb_ms=${timing.ttfb.toFixed(1)} rows_ms=${rowsMs} dom_ms=${timing.dom.toFixed(1)} rows=${timing.rows}`,
      );
    }
  } else if (mode === "hold") {
    await page.evaluate(() => {
      window.__events = 0;
      const source = new EventSource("/live");
      ["hello", "change", "reload"].forEach((name) =>
        source.addEventListener(name, () => { window.__events += 1; }));
    });
    await page.waitForSelector("#live-dot.on", { timeout: 10000 });
    console.log("HOLD open");
    await page.waitForTimeout(Number(amount) * 1000);
    const events = await page.evaluate(() => window.__events);
    const live = await page.evaluate(() => document.getElementById("live-dot").className.includes("on"));
    console.log(`HOLD live=${live ? 1 : 0} events=${events}`);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await close();
}
