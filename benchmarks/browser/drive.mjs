// Opens the benchmark page in headless Chromium (playwright-core), waits for window.benchResult and
// prints it as one JSON line with the browser's version.
//   PLAYWRIGHT_DIR=<node_modules/playwright-core> node drive.mjs <url>
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(join(process.env.PLAYWRIGHT_DIR, "index.mjs")).href);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 0, polling: 1000 });
  const result = await page.evaluate(() => window.benchResult);
  console.log(JSON.stringify({ browser: `Chromium ${browser.version()} headless`, ...result, logs: logs.slice(-20) }));
} finally {
  await browser.close();
}
