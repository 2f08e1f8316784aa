// Drive profshim's HTML report in headless Chromium and print what a user
// would see, as one JSON object on stdout; test_report_html.py judges it.
//
//   node html_check.js REPORT.html DIFF.html ARTIFACT_DIR HOSTILE_FUNCTION EMPTY.html
//   node html_check.js shares PAGE.html SCREENSHOT.png FUNCTION...
//   node html_check.js summary PAGE.html
//
// The second form only opens a page (a real recording's, test_report.py),
// keeps a screenshot and prints each FUNCTION's share of the flame graph's
// samples in percent, with the page's errors. The third prints the page's
// summary line as shown (a page whose profile may have no samples at all).
//
// EMPTY.html is the page of a profile without any data: it must still load.
//
// Every step is a real interaction (clicks, typing); the page is opened from
// file:// and any request that is not file: or data: is recorded, as are
// page errors and console errors.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
	'--no-first-run', '--disable-background-networking',
	'--disable-component-update', '--disable-sync'];

async function open(context, file, out, ready) {
	const page = await context.newPage();
	page.on('pageerror', e => out.pageErrors.push(String(e)));
	page.on('console', m => {
		if (m.type() === 'error')
			out.consoleErrors.push(m.text());
	});
	page.on('request', r => {
		if (!/^(file|data):/.test(r.url()))
			out.network.push(r.url());
	});
	await page.goto('file://' + path.resolve(file));
	await page.waitForSelector(ready || '#flame .frame');
	return page;
}

// What the flame graph shows now: its boxes, and per function the sum of
// the samples of its boxes (a function reached by two paths has two).
async function flameState(page) {
	return page.evaluate(() => {
		const flame = document.getElementById('flame');
		const boxes = Array.from(flame.querySelectorAll('.frame')).map(b => ({
			name: b.dataset.name,
			text: b.textContent,
			title: b.title,
			samples: +b.dataset.samples,
			pct: +b.dataset.pct,
			before: b.dataset.beforePct === undefined ? null : +b.dataset.beforePct,
			after: b.dataset.afterPct === undefined ? null : +b.dataset.afterPct,
			delta: b.dataset.delta === undefined ? null : +b.dataset.delta,
			background: getComputedStyle(b).backgroundColor,
			width: b.getBoundingClientRect().width,
			ancestor: b.classList.contains('ancestor'),
			match: b.classList.contains('match'),
		}));
		const root = boxes.find(b => b.name === 'all' && !b.ancestor) ||
			boxes.find(b => b.name === 'all');
		return {
			title: document.getElementById('flame-title').textContent,
			width: flame.getBoundingClientRect().width,
			rootSamples: root ? root.samples : null,
			boxes: boxes,
		};
	});
}

function shares(state, names) {
	const out = {};
	for (const n of names) {
		const s = state.boxes.filter(b => b.name === n && !b.ancestor)
			.reduce((a, b) => a + b.samples, 0);
		out[n] = 100 * s / state.rootSamples;
	}
	return out;
}

async function tableRows(page, id) {
	return page.evaluate(id => {
		const t = document.getElementById(id);
		const head = Array.from(t.querySelectorAll('th')).map(th => th.textContent.trim());
		const rows = Array.from(t.querySelectorAll('tbody tr')).map(tr => {
			const cells = Array.from(tr.children).map(td => td.textContent);
			const o = {};
			head.forEach((h, i) => { o[h] = cells[i]; });
			return o;
		});
		return { head: head, rows: rows };
	}, id);
}

async function clickFrame(page, name) {
	// The widest box of that function.
	const boxes = await page.$$('#flame .frame[data-name]');
	let best = null, bestW = -1;
	for (const b of boxes) {
		if (await b.getAttribute('data-name') !== name)
			continue;
		const w = (await b.boundingBox()).width;
		if (w > bestW) {
			best = b;
			bestW = w;
		}
	}
	if (!best)
		throw new Error('no frame ' + name);
	await best.click();
}

async function search(page, text, regex) {
	await page.setChecked('#regex', regex);
	await page.fill('#search', text);
	return page.evaluate(() => {
		const m = document.getElementById('matches');
		return {
			text: m.textContent,
			samples: m.dataset.samples === undefined ? null : +m.dataset.samples,
			pct: m.dataset.pct === undefined ? null : +m.dataset.pct,
			highlighted: Array.from(document.querySelectorAll('#flame .frame.match'))
				.map(b => b.dataset.name),
		};
	});
}

async function report(context, file, artifacts, hostile, out) {
	const r = {};
	const page = await open(context, file, out);

	r.initial = await flameState(page);
	r.shares = shares(r.initial, ['burn_alpha', 'burn_beta']);
	r.hostileShown = r.initial.boxes.some(b => b.text === hostile && b.name === hostile);
	r.injected = await page.evaluate(() => document.querySelectorAll('.injected').length);
	r.summary = await page.textContent('#summary');

	await clickFrame(page, 'burn_beta');
	r.zoomed = await flameState(page);
	await clickFrame(page, 'all');
	r.unzoomed = await flameState(page);

	r.searchSubstring = await search(page, 'COMPUTE', false);
	r.searchRegex = await search(page, 'burn_alpha|^compute$', true);
	r.searchBadRegex = await search(page, 'burn(', true);
	await search(page, '', false);

	r.endpoints = await tableRows(page, 'endpoints');
	r.histogramTitle = await page.textContent('#histogram-title');
	r.histogramBars = await page.$$eval('#histogram rect.bar', rs => rs.length);
	await page.click('#endpoints tr[data-endpoint="GET /beta"]');
	r.beta = await flameState(page);
	r.betaHistogram = {
		title: await page.textContent('#histogram-title'),
		bars: await page.$$eval('#histogram rect.bar', rs => rs.length),
		labels: await page.$$eval('#histogram text.plabel', ts => ts.map(t => t.textContent)),
	};
	r.betaRequests = await tableRows(page, 'requests');
	await page.click('#endpoints tr.all');
	r.requests = await tableRows(page, 'requests');

	await page.click('#requests tr[data-request="req-1"]');
	r.request = await flameState(page);
	r.requestShares = shares(r.request, ['burn_alpha', 'compute']);
	r.timeline = await page.evaluate(() => ({
		visible: !document.getElementById('timeline-panel').hidden,
		ticks: Array.from(document.querySelectorAll('#timeline rect.tick')).map(t => ({
			leaf: t.dataset.leaf, offset: +t.dataset.offset,
			x: +t.getAttribute('x'), fill: t.getAttribute('fill'),
		})),
		legend: Array.from(document.querySelectorAll('#timeline-legend .leaf')).map(l => l.dataset.leaf),
	}));
	await page.screenshot({ path: path.join(artifacts, 'report-request.png'), fullPage: true });
	await page.click('#show-all');
	r.afterShowAll = await flameState(page);
	await page.setViewportSize({ width: 1280, height: 900 });
	await page.screenshot({ path: path.join(artifacts, 'report.png'), fullPage: true });
	await page.close();
	return r;
}

async function diff(context, file, artifacts, out) {
	const r = {};
	const page = await open(context, file, out);

	r.initial = await flameState(page);
	r.title = await page.textContent('#page-title');
	r.requestsHidden = await page.evaluate(() => document.getElementById('requests-section').hidden);
	await clickFrame(page, 'burn_alpha');
	r.zoomed = await flameState(page);
	await page.keyboard.press('Escape');
	r.search = await search(page, 'burn', false);
	await search(page, '', false);
	await page.screenshot({ path: path.join(artifacts, 'diff.png'), fullPage: true });
	await page.close();
	return r;
}

async function empty(context, file, out) {
	const page = await open(context, file, out, '#flame .empty');
	const r = await page.evaluate(() => ({
		flame: document.getElementById('flame').textContent,
		histogram: document.getElementById('histogram').textContent,
		requests: document.getElementById('requests').textContent,
	}));
	await page.close();
	return r;
}

// Run fn(context) in a fresh headless Chromium profile, removed after.
async function withChromium(fn) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profshim-chromium-'));
	const context = await chromium.launchPersistentContext(dir, {
		executablePath: '/usr/bin/chromium',
		headless: true,
		args: FLAGS,
		viewport: { width: 1280, height: 900 },
	});
	try {
		return await fn(context);
	} finally {
		await context.close();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

async function sharesOnly(context, args) {
	const [page, shot, ...names] = args;
	const out = { pageErrors: [], consoleErrors: [], network: [] };
	const p = await open(context, page, out);
	out.shares = shares(await flameState(p), names);
	await p.screenshot({ path: shot, fullPage: true });
	await p.close();
	return out;
}

async function summaryOnly(context, page) {
	const out = { pageErrors: [], consoleErrors: [], network: [] };
	const p = await open(context, page, out, '#summary');
	out.summary = await p.innerText('#summary');
	await p.close();
	return out;
}

async function main() {
	if (process.argv[2] === 'summary') {
		const out = await withChromium(c => summaryOnly(c, process.argv[3]));
		process.stdout.write(JSON.stringify(out) + '\n');
		return;
	}
	if (process.argv[2] === 'shares') {
		const out = await withChromium(c => sharesOnly(c, process.argv.slice(3)));
		process.stdout.write(JSON.stringify(out) + '\n');
		return;
	}
	const [reportFile, diffFile, artifacts, hostile, emptyFile] = process.argv.slice(2);
	const out = { pageErrors: [], consoleErrors: [], network: [] };
	fs.mkdirSync(artifacts, { recursive: true });
	await withChromium(async context => {
		out.report = await report(context, reportFile, artifacts, hostile, out);
		out.diff = await diff(context, diffFile, artifacts, out);
		out.empty = await empty(context, emptyFile, out);
	});
	process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch(e => {
	process.stderr.write(String(e && e.stack || e) + '\n');
	process.exit(1);
});
