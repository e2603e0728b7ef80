#!/usr/bin/env node
/*
 * Browser test of the vigil web console: playwright-core driving Debian's
 * chromium (headless) through login, monitoring, swap, stop/start, the log
 * views, the snapshot download and the translations, against a running
 * two-node cluster (tests/system/test_console_browser.py starts it in the
 * lab and runs this script in the lab's client namespace).
 *
 *   node console.mjs CONFIG.json
 *
 * CONFIG (JSON):
 *   url             console of node1, e.g. "http://10.0.0.1:9010/"
 *   password        the admin password; wrong_password: one that is refused
 *   artifacts       directory for the numbered screenshots and the snapshot
 *   client_addr     this host's address as the commands log records it
 *   app_log         strings the application log of node1 must show
 *   i18n_dir        src/console/i18n (default: next to this script's repo)
 *   timeout_s       whole run (default 150)
 *
 * Only the hooks listed at the top of src/console/app.js are used. Every
 * step saves a screenshot; the first failed assertion saves one more
 * (NN-FAILED-step.png), prints why, and the script exits 1.
 */
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const STATE_TIMEOUT_MS = 45000;
const UI_TIMEOUT_MS = 10000;

class StepError extends Error {}

function fail(msg) {
	throw new StepError(msg);
}

function loadConfig(argv) {
	if (argv.length !== 1)
		throw new StepError('usage: node console.mjs CONFIG.json');
	let cfg;
	try {
		cfg = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
	} catch (e) {
		throw new StepError(`config ${argv[0]}: ${e.message}`);
	}
	for (const k of ['url', 'password', 'wrong_password', 'artifacts', 'client_addr']) {
		if (typeof cfg[k] !== 'string' || !cfg[k])
			throw new StepError(`config ${argv[0]}: "${k}" must be a non-empty string`);
	}
	cfg.app_log = cfg.app_log || [];
	cfg.i18n_dir = cfg.i18n_dir || path.resolve(HERE, '../../src/console/i18n');
	cfg.timeout_s = cfg.timeout_s || 150;
	/* A missing translation file is the config's fault: say so before the run. */
	for (const lang of ['en', 'fr', 'ja'])
		strings(cfg, lang);
	return cfg;
}

function strings(cfg, lang) {
	const file = path.join(cfg.i18n_dir, lang + '.json');
	let d;
	try {
		d = JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch (e) {
		throw new StepError(`${file}: ${e.message}`);
	}
	return d.strings && typeof d.strings === 'object' ? d.strings : d;
}

/* ---- the run: numbered screenshots, one step at a time ---- */

const run = {
	cfg: null,
	shot: 0,
	step: '',
	page: null,
	browser: null,
	pageErrors: [],
	t0: Date.now(),
};

function log(msg) {
	const s = ((Date.now() - run.t0) / 1000).toFixed(1).padStart(6);
	console.log(`[${s}s] ${msg}`);
}

async function screenshot(page, name) {
	run.shot++;
	const file = path.join(run.cfg.artifacts, String(run.shot).padStart(2, '0') + '-' + name + '.png');
	await page.screenshot({ path: file, fullPage: true });
	log(`  screenshot ${path.basename(file)}`);
	return file;
}

async function step(name, fn) {
	run.step = name;
	const t = Date.now();
	log(`step ${name}`);
	await fn();
	if (run.pageErrors.length)
		fail(`JavaScript error in the page: ${run.pageErrors.join(' | ')}`);
	log(`  ok (${((Date.now() - t) / 1000).toFixed(1)}s)`);
}

/* Polls fn (async, returns a value or null) until it gives a truthy value;
 * on timeout fails with what, and what describe() says about the page. */
async function until(what, fn, describe, timeoutMs = UI_TIMEOUT_MS) {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v)
			return v;
		if (Date.now() > end) {
			const seen = describe ? await describe() : '';
			fail(`timed out after ${timeoutMs / 1000}s waiting for ${what}` + (seen ? `; the page shows: ${seen}` : ''));
		}
		await new Promise((r) => setTimeout(r, 200));
	}
}

async function visible(page, sel) {
	return page.locator(sel).first().isVisible();
}

async function text(page, sel) {
	const l = page.locator(sel).first();
	return (await l.count()) ? (await l.textContent()).trim() : null;
}

/* ---- monitoring ---- */

/* Every node card: {node, state, color, reachable, text, stateColor}. */
function cards(page) {
	return page.evaluate(() => Array.from(document.querySelectorAll('#nodes [data-node]')).map((c) => {
		const s = c.querySelector('.state');
		return {
			node: c.dataset.node, state: c.dataset.state, color: c.dataset.color,
			reachable: c.dataset.reachable, text: s ? s.textContent.trim() : null,
			stateColor: s ? s.dataset.color : null,
		};
	}));
}

function fmtCards(cs) {
	return cs.length ? cs.map((c) => `${c.node}=${c.text}(${c.state}/${c.color}, .state ${c.stateColor}, ` +
		`reachable ${c.reachable})`).join(' ') : 'no node cards';
}

async function pageSummary(page) {
	const banner = (await visible(page, '#banner')) ? ` banner[${await page.getAttribute('#banner', 'data-kind')}]: ` +
		`"${await text(page, '#banner-text')}"` : '';
	return fmtCards(await cards(page)) + banner;
}

/* want: {node: [STATE, color or null]}; both the card's attributes and its
 * .state element (text and data-color) must agree. */
async function waitStates(page, want, timeoutMs = STATE_TIMEOUT_MS) {
	const desc = Object.entries(want).map(([n, [s, c]]) => `${n} ${s}${c ? ' ' + c : ''}`).join(', ');
	await until(desc, async () => {
		const cs = await cards(page);
		return Object.entries(want).every(([n, [s, c]]) => {
			const card = cs.find((x) => x.node === n);
			return card && card.state === s && card.text === s && card.reachable === 'true' &&
				(!c || (card.color === c && card.stateColor === c));
		});
	}, () => pageSummary(page), timeoutMs);
}

async function openMenu(page, node) {
	await page.locator(`#nodes [data-node="${node}"] .menu-button`).click();
	await until(`the action menu of ${node}`, async () =>
		(await visible(page, '#action-menu')) &&
		(await page.getAttribute('#action-menu', 'data-menu-node')) === node);
}

/* Menu entry of node, then the confirmation dialog if confirm. */
async function menuAction(page, node, action, shotName, confirm) {
	await openMenu(page, node);
	await page.locator(`#action-menu [data-action="${action}"]`).click();
	if (!confirm) {
		await page.waitForTimeout(300);
		if (await visible(page, '#confirm'))
			fail(`${action} on ${node} asked for a confirmation; it stops nothing`);
		return;
	}
	await until(`the confirmation dialog for ${action} on ${node}`, async () =>
		(await visible(page, '#confirm')) &&
		(await page.getAttribute('#confirm', 'data-action')) === action &&
		(await page.getAttribute('#confirm', 'data-node')) === node,
	async () => `#confirm visible=${await visible(page, '#confirm')} ` +
		`action=${await page.getAttribute('#confirm', 'data-action')} node=${await page.getAttribute('#confirm', 'data-node')}`);
	const title = await text(page, '#confirm-title');
	const body = await text(page, '#confirm-text');
	if (!title || !body)
		fail(`the confirmation dialog for ${action} has no text (title "${title}", text "${body}")`);
	if (!body.includes(node))
		fail(`the confirmation text does not name ${node}: "${body}"`);
	await screenshot(page, shotName);
	await page.locator('#confirm-ok').click();
	await until('the confirmation dialog to close', async () => !(await visible(page, '#confirm')));
}

/* The banner with the action's answer: an error there fails the step. */
async function waitBannerOk(page, what) {
	const kind = await until(`the result of ${what} in the banner`, async () => {
		if (!(await visible(page, '#banner')))
			return null;
		const k = await page.getAttribute('#banner', 'data-kind');
		return k === 'ok' || k === 'error' ? k : null;
	}, () => pageSummary(page), STATE_TIMEOUT_MS);
	if (kind !== 'ok')
		fail(`${what} failed: the banner says "${await text(page, '#banner-text')}"`);
}

/* ---- login ---- */

async function openLogin(page, url) {
	await page.goto(url, { waitUntil: 'load' });
	await until('the login view with its labels', async () =>
		(await visible(page, '#login-view')) && !!(await text(page, '#login-submit')));
}

async function login(page, password) {
	await page.locator('#login-password').fill(password);
	await page.locator('#login-submit').click();
}

async function loginOk(page, password) {
	await login(page, password);
	await until('the app view after login', async () =>
		(await visible(page, '#app-view')) && (await visible(page, '#monitoring-view')) &&
		!(await visible(page, '#login-view')),
	async () => `login error "${await text(page, '#login-error')}"`);
}

/* ---- logs ---- */

async function logLines(page) {
	return page.evaluate(() => {
		const pre = document.querySelector('#log-lines');
		return {
			node: pre.dataset.node, log: pre.dataset.log,
			lines: Array.from(pre.querySelectorAll('.log-line')).map((l) => l.textContent.replace(/\n$/, '')),
		};
	});
}

/* Opens a log tab of node and waits until every pattern matches a line;
 * ordered: they match lines in that order (one line each). */
async function checkLog(page, node, tab, patterns, ordered = false) {
	await page.locator(`#tab-${tab}`).click();
	await until(`the ${tab} tab to open`, async () =>
		(await page.getAttribute(`#tab-${tab}`, 'aria-selected')) === 'true' && (await visible(page, '#log-lines')));
	let last = null;
	const missing = () => {
		if (!ordered)
			return patterns.filter((p) => !last.lines.some((l) => p.test(l)));
		let at = 0;
		for (let i = 0; i < patterns.length; i++) {
			while (at < last.lines.length && !patterns[i].test(last.lines[at]))
				at++;
			if (at++ >= last.lines.length)
				return patterns.slice(i);
		}
		return [];
	};
	await until(`the ${tab} log of ${node} to show ${patterns.join(', ')}${ordered ? ' in this order' : ''}`, async () => {
		last = await logLines(page);
		return last.node === node && last.log === tab && missing().length === 0;
	}, async () => {
		if (!last)
			return 'no log';
		return `log ${last.log} of ${last.node}, ${last.lines.length} lines, missing ${missing().join(', ')}; ` +
			`last lines:\n    ${last.lines.slice(-15).join('\n    ')}`;
	}, 15000);
	await screenshot(page, `log-${tab}`);
	log(`  ${tab} log: ${last.lines.length} lines`);
}

/* ---- translations ---- */

async function checkLanguage(browser, cfg, locale, lang) {
	const en = strings(cfg, 'en');
	const tr = strings(cfg, lang);
	for (const k of ['login_submit', 'view_monitoring', 'view_control']) {
		if (!tr[k] || tr[k] === en[k])
			fail(`${lang}.json: "${k}" is missing or the English text ("${tr[k]}")`);
	}
	const ctx = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
	try {
		const page = await ctx.newPage();
		page.on('pageerror', (e) => run.pageErrors.push(`${locale}: ${e.message}`));
		await openLogin(page, cfg.url);
		const htmlLang = await page.getAttribute('html', 'lang');
		const button = await text(page, '#login-submit');
		await screenshot(page, `login-${lang}`);
		if (button !== tr.login_submit)
			fail(`${locale}: login button says "${button}", want ${lang}.json's "${tr.login_submit}"`);
		if (htmlLang !== lang)
			fail(`${locale}: <html lang="${htmlLang}">, want "${lang}"`);
		await loginOk(page, cfg.password);
		await waitStates(page, { node1: ['PRIM', 'green'], node2: ['SECOND', 'green'] });
		const nav = await text(page, '#nav-monitoring');
		const ctl = await text(page, '#nav-control');
		await screenshot(page, `monitoring-${lang}`);
		if (nav !== tr.view_monitoring)
			fail(`${locale}: Monitoring nav says "${nav}", want ${lang}.json's "${tr.view_monitoring}"`);
		if (ctl !== tr.view_control)
			fail(`${locale}: Control nav says "${ctl}", want ${lang}.json's "${tr.view_control}"`);
	} finally {
		await ctx.close();
	}
}

/* ---- the steps ---- */

async function main(cfg) {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-quic',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
			'--no-first-run'],
		timeout: 30000,
	});
	run.browser = browser;
	try {
		const ctx = await browser.newContext({
			locale: 'en-US', viewport: { width: 1280, height: 900 }, acceptDownloads: true,
		});
		const page = await ctx.newPage();
		run.page = page;
		page.setDefaultTimeout(UI_TIMEOUT_MS);
		page.on('pageerror', (e) => run.pageErrors.push(e.message));
		let loads = 0;
		page.on('load', () => { loads++; });
		const marker = 'vigil-test-' + Date.now();
		/* A reload or a navigation to another page drops this variable. */
		const sameDocument = async (what) => {
			const m = await page.evaluate(() => window.__vigilTestMarker);
			if (m !== marker || loads !== 1)
				fail(`${what} reloaded the page (marker ${m === marker ? 'kept' : 'lost'}, ${loads} page loads)`);
		};

		await step('a: wrong password is refused', async () => {
			await openLogin(page, cfg.url);
			await page.evaluate((m) => { window.__vigilTestMarker = m; }, marker);
			await screenshot(page, 'login');
			await login(page, cfg.wrong_password);
			const err = await until('the login error', async () =>
				(await visible(page, '#login-error')) && (await text(page, '#login-error')));
			await screenshot(page, 'login-refused');
			if (!(await visible(page, '#login-view')) || (await visible(page, '#app-view')))
				fail(`a wrong password left the login view (error shown: "${err}")`);
			log(`  login error: "${err}"`);
		});

		await step('b: login, node1 PRIM green, node2 SECOND green', async () => {
			await loginOk(page, cfg.password);
			await waitStates(page, { node1: ['PRIM', 'green'], node2: ['SECOND', 'green'] });
			if (await text(page, '#login-error'))
				fail('the login error is still shown after a good login');
			await screenshot(page, 'monitoring');
			await sameDocument('logging in');
		});

		await step('c: swap from node1\'s menu, view updates without reload', async () => {
			await menuAction(page, 'node1', 'swap', 'swap-confirm', true);
			await waitStates(page, { node1: ['SECOND', 'green'], node2: ['PRIM', 'green'] });
			await waitBannerOk(page, 'swap node1');
			await screenshot(page, 'swapped');
			await sameDocument('the swap');
		});

		await step('d: stop node2, node1 ALONE; start node2 again', async () => {
			await menuAction(page, 'node2', 'stop', 'stop-confirm', true);
			await waitStates(page, { node1: ['ALONE', 'green'], node2: ['STOP', 'red'] });
			await waitBannerOk(page, 'stop node2');
			await screenshot(page, 'node1-alone');
			await menuAction(page, 'node2', 'start', null, false);
			await waitStates(page, { node1: ['PRIM', 'green'], node2: ['SECOND', 'green'] });
			await waitBannerOk(page, 'start node2');
			await screenshot(page, 'started-again');
			await sameDocument('stop and start');
		});

		await step('e: the log views of node1 show what was done', async () => {
			await page.locator('#nav-control').click();
			await until('the control view', async () => (await visible(page, '#control-view')) &&
				(await page.getAttribute('#nav-control', 'class') || '').split(/\s+/).includes('active'));
			await page.locator('#node-select').selectOption('node1');
			const who = cfg.client_addr.replace(/\./g, '\\.');
			await checkLog(page, 'node1', 'module', [
				/node1: PRIM -> .*\bswap\b/, /node1: \S+ -> SECOND\b/, /node1: SECOND -> ALONE\b/,
				/node1: ALONE -> PRIM\b/], true);
			await checkLog(page, 'node1', 'application', cfg.app_log.map((s) => new RegExp(escapeRe(s))), true);
			const cmd = (what) => new RegExp(`admin@${who} \\(http\\): ${what}`);
			await checkLog(page, 'node1', 'commands', [
				cmd('login -> refused'), cmd('login -> ok'),
				cmd('swap\\b.*\\bnode1\\b.*-> ok'),
				cmd('stop\\b.*\\bnode2\\b.*-> ok'),
				cmd('start\\b.*\\bnode2\\b.*-> ok')], true);
			await sameDocument('the log views');
		});

		await step('f: snapshot of node1 from the Support menu', async () => {
			await page.locator('#nav-monitoring').click();
			await until('the monitoring view', async () => visible(page, '#monitoring-view'));
			await openMenu(page, 'node1');
			await page.locator('#action-menu [data-submenu="support"]').click();
			const link = page.locator('#action-menu a[data-action="snapshot"]');
			await until('the snapshot entry', async () => link.isVisible());
			await screenshot(page, 'support-menu');
			const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), link.click()]);
			const name = dl.suggestedFilename();
			if (!/^vigil-node1-[^/]*\.tar\.gz$/.test(name))
				fail(`snapshot file name "${name}", want vigil-node1-*.tar.gz`);
			const file = path.join(cfg.artifacts, name);
			await dl.saveAs(file);
			const why = await dl.failure();
			if (why)
				fail(`snapshot download failed: ${why}`);
			const data = fs.readFileSync(file);
			if (data.length < 1024)
				fail(`snapshot ${name} is only ${data.length} bytes`);
			if (data[0] !== 0x1f || data[1] !== 0x8b)
				fail(`snapshot ${name} is no gzip (starts with ${data.subarray(0, 4).toString('hex')})`);
			let tar;
			try {
				tar = zlib.gunzipSync(data);
			} catch (e) {
				fail(`snapshot ${name} does not gunzip: ${e.message}`);
			}
			if (tar.length < 1024 || tar.subarray(257, 262).toString('latin1') !== 'ustar')
				fail(`snapshot ${name} holds no tar archive (${tar.length} bytes unpacked)`);
			log(`  ${name}: ${data.length} bytes, ${tar.length} unpacked`);
			await sameDocument('the snapshot download');
		});

		await step('g: French and Japanese by Accept-Language', async () => {
			await checkLanguage(browser, cfg, 'fr-FR', 'fr');
			await checkLanguage(browser, cfg, 'ja-JP', 'ja');
		});
		await ctx.close();
	} catch (e) {
		if (run.page && !run.page.isClosed() && !run.timedOut) {
			try {
				await screenshot(run.page, 'FAILED-' + run.step.split(':')[0]);
			} catch (e2) {
				log(`  (no screenshot of the failure: ${e2.message})`);
			}
		}
		throw e;
	} finally {
		await browser.close();
	}
}

function escapeRe(s) {
	return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function entry() {
	let cfg;
	try {
		cfg = loadConfig(process.argv.slice(2));
		run.cfg = cfg;
		fs.mkdirSync(cfg.artifacts, { recursive: true });
	} catch (e) {
		console.error(`console.mjs: ${e.message}`);
		return 2;
	}
	/* The whole run is bounded: a hung browser must not hang the test. */
	const watchdog = setTimeout(async () => {
		run.timedOut = true;
		console.error(`FAIL: the whole run took over ${cfg.timeout_s}s (at step ${run.step})`);
		/* A closed browser leaves no profile behind; a killed one might. */
		if (run.browser)
			await Promise.race([run.browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
		process.exit(1);
	}, cfg.timeout_s * 1000);
	try {
		await main(cfg);
		log(`PASS: all steps, ${run.shot} screenshots in ${cfg.artifacts}`);
		return 0;
	} catch (e) {
		if (run.timedOut)
			return 1; /* said so already; this is the browser closing under the step */
		const msg = e instanceof StepError ? e.message : (e.stack || String(e));
		console.error(`FAIL at step ${run.step || '(start)'}: ${msg}`);
		return 1;
	} finally {
		clearTimeout(watchdog);
	}
}

process.exitCode = await entry();
