// Opens a page in headless Chromium (playwright-core), waits for its result, saves a screenshot,
// and prints what a person would read as JSON: the page's result, its status line, its text and its
// tables (cell texts and data- attributes). Used by tests/test_browser.py.
//   PLAYWRIGHT_DIR=<node_modules/playwright-core> node check_page.mjs <url> <screenshot.png> [options]
//   --static           a page without a script (the profile report): no result to wait for
//   --pick image.png   then pick this image with the page's file input, and report that run too
//   --drop image.png   then drop this image on the page's photo, and report that run too
//   --width N          the window's width (default 1200; the pages are responsive)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, screenshot, ...rest] = process.argv.slice(2);
const option = (name) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : undefined);
const { chromium } = await import(pathToFileURL(join(process.env.PLAYWRIGHT_DIR, "index.mjs")).href);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"], // playwright gives each launch a fresh profile dir
});

async function read(page, logs) {
  const result = rest.includes("--static") ? {} : await page.evaluate(() => window.sparseliteResult);
  result.status = (await page.$("#status")) ? await page.textContent("#status") : "";
  result.text = await page.innerText("body");
  result.scroll_width = await page.evaluate(() => document.documentElement.scrollWidth);
  result.tables = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("table[id]")].map((t) => [
    t.id, [...t.querySelectorAll("tr")].map((tr) => ({ cells: [...tr.cells].map((c) => c.innerText),
                                                        data: { ...tr.dataset }, section: tr.parentElement.tagName }))])));
  result.logs = logs.slice(-20);
  return result;
}

try {
  const page = await browser.newPage({ viewport: { width: Number(option("--width") || 1200), height: 900 } });
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(String(e)));
  await page.goto(url);
  if (!rest.includes("--static")) {
    await page.waitForFunction(() => window.sparseliteResult !== undefined, null, { timeout: 240000 });
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  const first = await read(page, logs);
  if (option("--pick")) { // through the file input
    await page.evaluate(() => { window.sparseliteResult = undefined; });
    await page.setInputFiles("#file", option("--pick"));
    await page.waitForFunction(() => window.sparseliteResult !== undefined, null, { timeout: 240000 });
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-picked.png"), fullPage: true });
    first.picked = await read(page, logs);
  }
  if (option("--drop")) { // dropped on the photo, as from a file manager
    await page.evaluate(() => { window.sparseliteResult = undefined; });
    const transfer = await page.evaluateHandle((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
      return dt;
    }, (await readFile(option("--drop"))).toString("base64"));
    await page.dispatchEvent("#drop", "drop", { dataTransfer: transfer });
    await page.waitForFunction(() => window.sparseliteResult !== undefined, null, { timeout: 240000 });
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-dropped.png"), fullPage: true });
    first.dropped = await read(page, logs);
  }
  console.log(JSON.stringify(first));
} finally {
  await browser.close();
}
