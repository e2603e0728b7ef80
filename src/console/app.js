/*
 * vigil web console: one page on the JSON API of docs/api.md. Plain JS, no
 * framework and no build step; vigild serves every file from its binary.
 *
 * Four ES modules; index.html loads this one (<script type="module">):
 *   app.js    start-up, login and session, routing (the URL hash), polling
 *   core.js   shared state S, text (i18n), DOM helpers, the API call, banner
 *   views.js  Monitoring cards; Control view: resources, logs, information
 *   menu.js   action menu, confirmation dialog, running an action
 * core.js imports nothing. app.js, views.js and menu.js import each other's
 * functions: harmless cycles, as loading a module only declares things and
 * nothing runs before start(), at the end of this file.
 *
 * Test hooks (stable ids and attributes; browser tests rely on them):
 *
 *   Login       #login-view, #login-form, #login-user (readonly "admin"),
 *               #login-password, #login-submit, #login-error (server's error,
 *               or "too many attempts, retry in N s" on 429)
 *   Header      #cluster-name, #nav-monitoring, #nav-control (class "active"
 *               on the open view), #conn-status (data-conn="ok"|"lost"),
 *               #last-update, #logout
 *   Banner      #banner (data-kind="info"|"ok"|"error"), #banner-text,
 *               #banner-close. Every action's result or error lands here.
 *   Monitoring  #monitoring-view, #nodes; one card per node:
 *               [data-node="NAME"] (attributes data-state, data-color,
 *               data-reachable="true"|"false") holding
 *                 .node-name, .local-tag (local node only),
 *                 .state (text PRIM/SECOND/...; data-color="green"|"magenta"|
 *                   "orange"|"red"|"grey"; class color-COLOR),
 *                 .reason, .since, .sync,
 *                 .unreachable ("node NAME not reachable"; only when the
 *                   status says reachable: false),
 *                 .resources [data-resource="R"] .res-state,
 *                 .checkers [data-checker="C"] .chk-state,
 *                 .vip (data-held="true"|"false"), .networks [data-net="ADDR"]
 *                   (data-up="true"|"false"), .alarms .alarm,
 *                 .menu-button (opens the action menu for that node)
 *   Action menu one shared #action-menu (data-menu-node="NAME" while open):
 *                 [data-action="start"|"stop"|"restart"|"swap"]
 *                 [data-submenu="expert"] (click to expand) ->
 *                   [data-action="stopstart"|"swap-nosync"|"forcestart"|"sync-estimate"]
 *                 [data-submenu="admin"] ->
 *                   [data-action="boot-keep"|"boot-on"|"boot-off"|"errd-suspend"|
 *                    "errd-resume"|"checkers-on"|"checkers-off"|"failover-on"|"failover-off"]
 *                   (the current setting has class "current", aria-checked="true")
 *                 [data-submenu="support"] ->
 *                   [data-action="logs"] (opens the module log of that node),
 *                   [data-action="dump"] (a dump kept on that node, state_dir/dumps),
 *                   a[data-action="snapshot"] (href /api/v1/nodes/NAME/snapshot, download)
 *   Confirm     #confirm (data-action, data-node while open), #confirm-title,
 *               #confirm-text, #confirm-ok, #confirm-cancel. Shown before stop,
 *               restart, swap, stopstart, swap-nosync and forcestart.
 *   Control     #control-view, #node-select, #node-chips [data-chip-node="NAME"],
 *               #tab-resources, #tab-module, #tab-application, #tab-commands,
 *               #tab-info (class "active", aria-selected="true" on the open one),
 *               #resources-table, #checkers-table, #switches-table,
 *               #log-verbose (module log only), #log-refresh, #log-save,
 *               #log-lines (data-node, data-log, data-verbose="0"|"1" of what it
 *               shows; one .log-line per entry), #info-source, #info-table,
 *               #info-config
 *   URL         #monitoring, #control/TAB/NODE (a reload keeps the view)
 */
import {
	TABS, S, $, enc, t, applyStatic, setTitle, api, unwrap, errorOf, hideBanner, currentNode,
} from './core.js';
import { showTab, renderCluster, syncNodeSelect, stopLogPolling, loadLog, saveLog } from './views.js';
import { closeMenu, closeConfirm, wireMenu } from './menu.js';

const POLL_MS = 1000;
const POLL_TIMEOUT_MS = 5000;

/* ---- login ---- */

function setLoginError(msg) {
	const e = $('#login-error');
	e.textContent = msg;
	e.hidden = !msg;
}

function clearThrottle() {
	clearInterval(S.throttleTimer);
	S.throttleTimer = null;
}

function throttled(r) {
	let left = parseInt(r.headers && r.headers.get('Retry-After'), 10);

	clearThrottle();
	if (!(left >= 0)) {
		setLoginError(errorOf(r));
		return;
	}
	const tick = () => {
		if (left <= 0) {
			clearThrottle();
			setLoginError(t('login_throttled_done'));
			return;
		}
		setLoginError(t('login_throttled', { n: left }));
		left--;
	};
	tick();
	S.throttleTimer = setInterval(tick, 1000);
}

async function onLogin(ev) {
	ev.preventDefault();
	const btn = $('#login-submit');
	if (btn.disabled)
		return;
	btn.disabled = true;
	const r = await api('POST', '/api/v1/login', { user: 'admin', password: $('#login-password').value });
	btn.disabled = false;
	if (r.status === 200 && r.data && typeof r.data.csrf === 'string') {
		clearThrottle();
		S.csrf = r.data.csrf;
		$('#login-password').value = '';
		setLoginError('');
		enterApp();
		return;
	}
	if (r.status === 429) {
		throttled(r);
	} else {
		clearThrottle();
		setLoginError(r.status === 0 ? t('error_network') :
			(r.data && r.data.error) || t('login_failed'));
	}
	$('#login-password').select();
}

function showLogin(msg) {
	stopPolling();
	stopLogPolling();
	closeMenu();
	closeConfirm(false);
	S.loggedIn = false;
	S.csrf = null;
	S.cluster = null;
	S.cardJson.clear();
	S.resKey = null;
	$('#nodes').replaceChildren();
	$('#app-view').hidden = true;
	$('#login-view').hidden = false;
	setLoginError(msg || '');
	$('#login-password').value = '';
	$('#login-password').focus();
	setTitle();
}

export function sessionExpired() {
	showLogin(t('session_expired'));
}

async function logout() {
	await api('POST', '/api/v1/logout', {});
	showLogin('');
}

function enterApp() {
	S.loggedIn = true;
	$('#login-view').hidden = true;
	$('#app-view').hidden = false;
	hideBanner();
	route();
	startPolling();
}

/* ---- views ---- */

function parseHash() {
	const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => {
		try {
			return decodeURIComponent(p);
		} catch (e) {
			return '';
		}
	});
	if (parts[0] === 'control')
		return { view: 'control', tab: TABS.includes(parts[1]) ? parts[1] : 'resources', node: parts[2] || null };
	return { view: 'monitoring' };
}

export function go(view, tab, node) {
	const h = view === 'control' ? '#control/' + tab + '/' + enc(node || '') : '#monitoring';
	if (location.hash !== h)
		location.hash = h;
	else
		route();
}

function route() {
	if (!S.loggedIn)
		return;
	const r = parseHash();
	S.view = r.view;
	if (r.view === 'control') {
		S.tab = r.tab;
		if (r.node)
			S.node = r.node;
	}
	closeMenu();
	$('#monitoring-view').hidden = S.view !== 'monitoring';
	$('#control-view').hidden = S.view !== 'control';
	for (const [id, v] of [['#nav-monitoring', 'monitoring'], ['#nav-control', 'control']]) {
		$(id).classList.toggle('active', S.view === v);
		if (S.view === v)
			$(id).setAttribute('aria-current', 'page');
		else
			$(id).removeAttribute('aria-current');
	}
	if (S.view === 'control') {
		syncNodeSelect();
		showTab();
	} else {
		stopLogPolling();
	}
}

/* ---- polling ---- */

function startPolling() {
	stopPolling();
	S.polling = true;
	pollOnce();
}

function stopPolling() {
	S.polling = false;
	clearTimeout(S.pollTimer);
	S.pollTimer = null;
	S.pollGen++;
}

/* One request at a time; pollNow() drops the answer of the one in flight. */
async function pollOnce() {
	if (!S.polling)
		return;
	clearTimeout(S.pollTimer);
	S.pollTimer = null;
	const gen = ++S.pollGen;
	const t0 = performance.now();
	const r = await api('GET', '/api/v1/cluster', null, POLL_TIMEOUT_MS);
	if (gen !== S.pollGen || !S.polling)
		return;
	if (r.status === 401) {
		sessionExpired();
		return;
	}
	const d = unwrap(r.data, 'nodes');
	if (r.status === 200 && d && Array.isArray(d.nodes)) {
		setConn(true, '');
		renderCluster(d);
	} else {
		setConn(false, errorOf(r));
	}
	S.pollTimer = setTimeout(pollOnce, Math.max(200, POLL_MS - (performance.now() - t0)));
}

export function pollNow() {
	if (S.polling)
		pollOnce();
}

function setConn(ok, why) {
	const c = $('#conn-status');
	c.dataset.conn = ok ? 'ok' : 'lost';
	$('.conn-text', c).textContent = ok ? t('conn_ok') : t('conn_lost');
	c.title = why;
	document.body.classList.toggle('stale', !ok);
	if (ok)
		$('#last-update').textContent = t('last_update', { time: new Date().toLocaleTimeString(S.lang) });
}

/* ---- wiring ---- */

function wire() {
	$('#login-form').addEventListener('submit', onLogin);
	$('#logout').addEventListener('click', logout);
	$('#banner-close').addEventListener('click', hideBanner);
	$('#nav-monitoring').addEventListener('click', () => go('monitoring'));
	$('#nav-control').addEventListener('click', () => go('control', S.tab, currentNode()));
	wireMenu();
	for (const tab of TABS)
		$('#tab-' + tab).addEventListener('click', () => go('control', tab, currentNode()));
	$('#node-select').addEventListener('change', (ev) => go('control', S.tab, ev.target.value));
	$('#node-chips').addEventListener('click', (ev) => {
		const chip = ev.target.closest('[data-chip-node]');
		if (chip)
			go('control', S.tab, chip.dataset.chipNode);
	});
	$('#log-verbose').addEventListener('change', loadLog);
	$('#log-refresh').addEventListener('click', loadLog);
	$('#log-save').addEventListener('click', saveLog);
	window.addEventListener('hashchange', route);
}

async function loadStrings() {
	let r = await api('GET', '/i18n.json');
	if (r.status !== 200 || !r.data)
		r = await api('GET', '/i18n/en.json');
	const d = r.data || {};
	const strings = d.strings && typeof d.strings === 'object' ? d.strings : d;
	S.strings = strings && typeof strings === 'object' ? strings : {};
	S.lang = typeof d.lang === 'string' ? d.lang : 'en';
	document.documentElement.lang = S.lang;
	applyStatic();
}

async function start() {
	wire();
	await loadStrings();
	$('#boot-spinner').hidden = true;
	const r = await api('GET', '/api/v1/session');
	if (r.status === 200 && r.data && typeof r.data.csrf === 'string') {
		S.csrf = r.data.csrf;
		enterApp();
	} else {
		showLogin('');
	}
}

if (document.readyState === 'loading')
	document.addEventListener('DOMContentLoaded', start);
else
	start();
