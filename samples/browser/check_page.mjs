// Opens a sample page in headless Chromium (playwright-core), waits for its result, saves a
// screenshot, and prints the page's result as JSON. Used by tests/test_browser.py.
//   PLAYWRIGHT_DIR=<node_modules/playwright-core> node check_page.mjs <url> <screenshot.png>
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, screenshot] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(join(process.env.PLAYWRIGHT_DIR, "index.mjs")).href);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"], // playwright gives each launch a fresh profile dir
});
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => window.sparseliteResult !== undefined, null, { timeout: 240000 });
  await page.screenshot({ path: screenshot });
  const result = await page.evaluate(() => window.sparseliteResult);
  result.status = await page.textContent("#status");
  result.logs = logs.slice(-20);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
