/*
 * vigil web console, shared core: the page's state, its text (i18n), DOM
 * helpers, the API call, the banner and look-ups in the last cluster status.
 * It imports nothing; app.js, views.js and menu.js build on it.
 */

/* The Control view's tabs (#tab-NAME), and those that show a log. */
export const TABS = ['resources', 'module', 'application', 'commands', 'info'];
export const LOG_TABS = ['module', 'application', 'commands'];

/* The page's whole state: one object every module reads and writes. */
export const S = {
	strings: {},
	lang: 'en',
	csrf: null,
	loggedIn: false,
	cluster: null,
	cardJson: new Map(),
	polling: false,
	pollTimer: null,
	pollGen: 0,
	view: 'monitoring',
	tab: 'resources',
	node: null,
	menuNode: null,
	logTimer: null,
	logGen: 0,
	logText: null,
	logLines: [],
	infoGen: 0,
	resKey: null,
	throttleTimer: null,
	confirmResolve: null,
};

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
export const enc = encodeURIComponent;

/* ---- text ---- */

/* A missing key shows as itself, so a gap in a translation is visible. */
export function t(key, vars) {
	let s = Object.prototype.hasOwnProperty.call(S.strings, key) ? S.strings[key] : key;
	if (vars)
		s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
	return s;
}

export function applyStatic() {
	$$('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
	$$('[data-i18n-aria]').forEach((e) => {
		e.setAttribute('aria-label', t(e.dataset.i18nAria));
		e.title = t(e.dataset.i18nAria);
	});
	setTitle();
}

export function setTitle() {
	const name = S.cluster && S.cluster.cluster;
	document.title = name ? name + ' \u2014 ' + t('app_title') : t('app_title');
}

export function fmtBytes(n) {
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

/* ---- DOM ---- */

export function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k === 'class')
			e.className = v;
		else
			e.setAttribute(k, v === true ? '' : String(v));
	}
	for (const k of kids.flat()) {
		if (k !== null && k !== undefined && k !== false)
			e.append(k instanceof Node ? k : String(k));
	}
	return e;
}

/* ---- API ---- */

export async function api(method, path, body, timeoutMs) {
	const headers = { 'Accept': 'application/json' };
	const opts = {
		method, headers, credentials: 'same-origin', cache: 'no-store',
		signal: AbortSignal.timeout(timeoutMs || 15000),
	};
	if (method === 'POST') {
		headers['Content-Type'] = 'application/json';
		if (S.csrf)
			headers['X-CSRF-Token'] = S.csrf;
		opts.body = JSON.stringify(body || {});
	}
	let res;
	try {
		res = await fetch(path, opts);
	} catch (e) {
		return { status: 0, data: null, headers: null };
	}
	let data = null;
	try {
		const text = await res.text();
		data = text ? JSON.parse(text) : null;
	} catch (e) {
		data = null;
	}
	return { status: res.status, data, headers: res.headers };
}

/* The UNIX socket wraps answers in {"ok", "result"}; take either shape. */
export function unwrap(d, field) {
	if (d && typeof d === 'object' && d.result && typeof d.result === 'object' && !(field in d))
		return d.result;
	return d;
}

export function errorOf(r) {
	if (r.status === 0)
		return t('error_network');
	if (r.data && typeof r.data.error === 'string' && r.data.error)
		return r.data.error;
	return t('error_http', { status: r.status });
}

/* ---- banner ---- */

export function showBanner(kind, text) {
	const b = $('#banner');
	b.dataset.kind = kind;
	$('#banner-text').textContent = text;
	b.hidden = false;
}

export function hideBanner() {
	$('#banner').hidden = true;
	$('#banner-text').textContent = '';
}

/* ---- cluster ---- */

export function nodeNames() {
	return S.cluster ? S.cluster.nodes.map((n) => n.name) : [];
}

/* The node the Control view shows: the chosen one, else the local one. */
export function currentNode() {
	const names = nodeNames();
	if (!S.cluster)
		return S.node;
	if (S.node && names.includes(S.node))
		return S.node;
	return names.includes(S.cluster.local) ? S.cluster.local : names[0] || null;
}

export function nodeData(name) {
	return S.cluster ? S.cluster.nodes.find((n) => n.name === name) : undefined;
}
