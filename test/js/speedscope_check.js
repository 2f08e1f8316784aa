// Load a speedscope file into speedscope's own viewer (the npm package's
// dist/release build) in headless Chromium, and report what the viewer
// shows, as JSON on stdout, for the Python tests to judge:
//
//   {"title": document title,
//    "pageErrors": [uncaught exceptions], "dialogs": [alert() messages],
//    "failed": true when the viewer shows its "Something went wrong" page,
//    "loaded": true once the import finished (the title changed),
//    "profiles": [{"name", "weight"}] from the profile switcher, exact names,
//    "views": [{"toolbar": "GET /x (1/3)",
//               "rows": [{"name", "file", "total", "self"}]}]}
//
// One view per profile, in file order: the viewer opens on the sandwich
// view (a DOM table of every function with its total and self time; the
// flame graphs are drawn on a canvas), and "n" moves to the next profile.
//
// usage: node speedscope_check.js PROFILE.speedscope.json
// The files are served over HTTP on 127.0.0.1 (the viewer fetches
// #profileURL=, which it refuses from file:// pages).
'use strict';

const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const RELEASE = path.join(path.dirname(require.resolve('speedscope/package.json')),
                          'dist', 'release');
const TIMEOUT_MS = 30000;

function serve(profile) {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    let file;
    if (url === '/profile.json') {
      file = profile;
    } else {
      file = path.join(RELEASE, url === '/' ? 'index.html' : url);
      if (!file.startsWith(RELEASE + path.sep)) {
        res.writeHead(403);
        res.end();
        return;
      }
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200);
      res.end(data);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// What the page shows now: title, toolbar, both tables.
function snapshot() {
  const text = (el) => (el ? el.textContent : '');
  const tables = Array.from(document.querySelectorAll('table'));
  const headers = (t) => Array.from(t.querySelectorAll('th')).map((th) => th.textContent.trim());
  const out = { title: document.title, toolbar: null, profiles: [], rows: [],
                failed: document.body.innerText.includes('Something went wrong') };

  // The toolbar: view tabs, the profile's name (with its switcher when
  // the file has several), other buttons.
  const tab = Array.from(document.querySelectorAll('div')).find(
    (d) => d.lastChild && d.lastChild.nodeType === Node.TEXT_NODE &&
           d.lastChild.textContent === 'Time Order');
  const bar = tab && tab.parentElement && tab.parentElement.parentElement;
  if (bar) {
    out.toolbar = Array.from(bar.childNodes).slice(1, -1).map(
      (k) => k.nodeType === Node.TEXT_NODE ? k.textContent
        : text(k.querySelector(':scope > span') || k)).join('');
  }
  for (const t of tables) {
    const h = headers(t);
    if (h.includes('Total Weight')) {
      // The profile switcher: one row per profile, title = its name.
      for (const tr of t.querySelectorAll('tr[title]')) {
        const tds = tr.querySelectorAll('td');
        out.profiles.push({ name: tr.getAttribute('title'),
                            weight: text(tds[tds.length - 1]) });
      }
    } else {
      // The sandwich view's function table (its header is a table of
      // its own): total, self, name with the file as its title.
      for (const tr of t.querySelectorAll('tr')) {
        const tds = tr.querySelectorAll('td');
        if (tds.length !== 3)
          continue;
        // A cell's own text, without its bar's (empty) child div.
        const own = (td) => Array.from(td.childNodes)
          .filter((n) => n.nodeType === Node.TEXT_NODE)
          .map((n) => n.textContent).join('');
        out.rows.push({ total: own(tds[0]), self: own(tds[1]),
                        name: text(tds[2]), file: tds[2].getAttribute('title') });
      }
    }
  }
  return out;
}

async function main() {
  const profile = path.resolve(process.argv[2]);
  const server = await serve(profile);
  const port = server.address().port;
  const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'speedscope-check-'));
  const result = { title: null, pageErrors: [], dialogs: [], failed: false,
                   loaded: false, profiles: [], views: [] };
  let context;

  try {
    context = await chromium.launchPersistentContext(userData, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => result.pageErrors.push(String(e && e.message)));
    page.on('dialog', (d) => {
      result.dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
    await page.goto(`http://127.0.0.1:${port}/index.html#profileURL=` +
                    encodeURIComponent(`http://127.0.0.1:${port}/profile.json`) +
                    '&view=sandwich');
    // The import is done when the title names the file (speedscope sets
    // it after a successful import), or failed when an error shows.
    try {
      await page.waitForFunction(
        () => document.title !== 'speedscope' ||
              document.body.innerText.includes('Something went wrong'),
        null, { timeout: TIMEOUT_MS });
    } catch (e) {
      // Timed out: reported as not loaded.
    }
    let snap = await page.evaluate(snapshot);
    result.title = snap.title;
    result.failed = snap.failed;
    result.loaded = snap.title !== 'speedscope' && !snap.failed &&
                    result.dialogs.length === 0;
    if (result.loaded) {
      await page.waitForFunction(() => document.querySelector('table'), null,
                                 { timeout: TIMEOUT_MS });
      snap = await page.evaluate(snapshot);
      result.profiles = snap.profiles;
      const n = Math.max(snap.profiles.length, 1);
      for (let i = 1; i <= n; i++) {
        if (i > 1) {
          await page.keyboard.press('n');
          await page.waitForFunction(
            (want) => Array.from(document.querySelectorAll('span > span'))
              .some((s) => s.textContent === want),
            `(${i}/${n})`, { timeout: TIMEOUT_MS }).catch(() => {});
          // Then the table's rows for that profile.
          await page.waitForTimeout(200);
        }
        snap = await page.evaluate(snapshot);
        result.views.push({ toolbar: snap.toolbar, rows: snap.rows });
      }
    }
  } finally {
    if (context)
      await context.close();
    server.close();
    fs.rmSync(userData, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(`speedscope_check: ${e && e.stack || e}\n`);
  process.exit(1);
});
