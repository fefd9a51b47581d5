// Launches Debian's chromium through playwright-core, which downloads no browser of
// its own. The flags keep a headless Chromium running as root off the network: without
// the background-networking ones it keeps trying to reach Google's services.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/**
 * A fresh browser with a profile of its own (its own cookies), as a Playwright
 * context; `close()` ends it and removes the profile. Playwright passes the profile
 * to Chromium as `--user-data-dir`.
 */
export async function launch(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "pushmon-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    ...options,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
