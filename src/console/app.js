/*
 * vigil web console: one page on the JSON API of docs/api.md. Plain JS, no
 * framework and no build step; vigild serves every file from its binary.
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
'use strict';

(function () {
	const POLL_MS = 1000;
	const POLL_TIMEOUT_MS = 5000;
	const LOG_POLL_MS = 3000;
	const LOG_LINES = 500;
	/* A swap waits for the services to stop on one node and start on the other. */
	const ACTION_TIMEOUT_MS = 300000;
	const TABS = ['resources', 'module', 'application', 'commands', 'info'];
	const LOG_TABS = ['module', 'application', 'commands'];
	const COLORS = ['green', 'magenta', 'orange', 'red', 'grey'];

	/* Menu entry -> API call. confirm: the dialog text, for what stops a service. */
	const ACTIONS = {
		'start': { path: 'start', label: 'action_start' },
		'stop': { path: 'stop', label: 'action_stop', confirm: 'confirm_stop' },
		'restart': { path: 'restart', label: 'action_restart', confirm: 'confirm_restart' },
		'swap': { path: 'swap', label: 'action_swap', confirm: 'confirm_swap' },
		'stopstart': { path: 'stopstart', label: 'action_stopstart', confirm: 'confirm_stopstart' },
		'swap-nosync': { path: 'swap', body: { nosync: true }, label: 'action_swap_nosync',
			confirm: 'confirm_swap_nosync' },
		'forcestart': { path: 'forcestart', label: 'action_forcestart', confirm: 'confirm_forcestart' },
		'sync-estimate': { path: 'sync', body: { mode: 'estimate' }, label: 'action_sync_estimate' },
		'boot-keep': { path: 'boot', body: { mode: 'keep' }, label: 'action_boot_keep' },
		'boot-on': { path: 'boot', body: { mode: 'on' }, label: 'action_boot_on' },
		'boot-off': { path: 'boot', body: { mode: 'off' }, label: 'action_boot_off' },
		'errd-suspend': { path: 'errd', body: { mode: 'suspend' }, label: 'action_errd_suspend' },
		'errd-resume': { path: 'errd', body: { mode: 'resume' }, label: 'action_errd_resume' },
		'checkers-on': { path: 'checkers', body: { mode: 'on' }, label: 'action_checkers_on' },
		'checkers-off': { path: 'checkers', body: { mode: 'off' }, label: 'action_checkers_off' },
		'failover-on': { path: 'failover', body: { mode: 'on' }, label: 'action_failover_on' },
		'failover-off': { path: 'failover', body: { mode: 'off' }, label: 'action_failover_off' },
		'dump': { path: 'dump', label: 'action_dump' },
	};

	const S = {
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

	const $ = (sel, root) => (root || document).querySelector(sel);
	const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
	const enc = encodeURIComponent;

	/* ---- text ---- */

	/* A missing key shows as itself, so a gap in a translation is visible. */
	function t(key, vars) {
		let s = Object.prototype.hasOwnProperty.call(S.strings, key) ? S.strings[key] : key;
		if (vars)
			s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
		return s;
	}

	function applyStatic() {
		$$('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
		$$('[data-i18n-aria]').forEach((e) => {
			e.setAttribute('aria-label', t(e.dataset.i18nAria));
			e.title = t(e.dataset.i18nAria);
		});
		setTitle();
	}

	function setTitle() {
		const name = S.cluster && S.cluster.cluster;
		document.title = name ? name + ' \u2014 ' + t('app_title') : t('app_title');
	}

	function fmtBytes(n) {
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let i = 0;
		while (n >= 1024 && i < units.length - 1) {
			n /= 1024;
			i++;
		}
		return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
	}

	function onOff(v) {
		return v === true ? t('on') : v === false ? t('off') : '\u2014';
	}

	function normColor(c) {
		if (c === 'gray')
			return 'grey';
		return COLORS.includes(c) ? c : 'grey';
	}

	/* ---- DOM ---- */

	function el(tag, attrs, ...kids) {
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

	function pill(kind, text) {
		return el('span', { class: 'pill pill-' + kind }, text);
	}

	function resKind(s) {
		return { started: 'ok', stopped: 'idle', failed: 'bad', starting: 'busy', stopping: 'busy' }[s] || 'idle';
	}

	function chkKind(s) {
		return { ok: 'ok', failed: 'bad' }[s] || 'idle';
	}

	/* ---- API ---- */

	async function api(method, path, body, timeoutMs) {
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
	function unwrap(d, field) {
		if (d && typeof d === 'object' && d.result && typeof d.result === 'object' && !(field in d))
			return d.result;
		return d;
	}

	function errorOf(r) {
		if (r.status === 0)
			return t('error_network');
		if (r.data && typeof r.data.error === 'string' && r.data.error)
			return r.data.error;
		return t('error_http', { status: r.status });
	}

	/* ---- banner ---- */

	function showBanner(kind, text) {
		const b = $('#banner');
		b.dataset.kind = kind;
		$('#banner-text').textContent = text;
		b.hidden = false;
	}

	function hideBanner() {
		$('#banner').hidden = true;
		$('#banner-text').textContent = '';
	}

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

	function sessionExpired() {
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

	function go(view, tab, node) {
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

	function nodeNames() {
		return S.cluster ? S.cluster.nodes.map((n) => n.name) : [];
	}

	/* The node the Control view shows: the chosen one, else the local one. */
	function currentNode() {
		const names = nodeNames();
		if (!S.cluster)
			return S.node;
		if (S.node && names.includes(S.node))
			return S.node;
		return names.includes(S.cluster.local) ? S.cluster.local : names[0] || null;
	}

	function nodeData(name) {
		return S.cluster ? S.cluster.nodes.find((n) => n.name === name) : undefined;
	}

	function showTab() {
		for (const tab of TABS) {
			const b = $('#tab-' + tab);
			b.classList.toggle('active', tab === S.tab);
			b.setAttribute('aria-selected', tab === S.tab ? 'true' : 'false');
		}
		const isLog = LOG_TABS.includes(S.tab);
		$('#panel-resources').hidden = S.tab !== 'resources';
		$('#panel-log').hidden = !isLog;
		$('#panel-info').hidden = S.tab !== 'info';
		$('#log-verbose-label').hidden = S.tab !== 'module';
		$('#node-select').disabled = false;
		stopLogPolling();
		if (S.tab === 'resources') {
			S.resKey = null;
			renderResourcesPanel();
		} else if (isLog) {
			loadLog();
			S.logTimer = setInterval(loadLog, LOG_POLL_MS);
		} else {
			loadInfo();
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

	function pollNow() {
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

	/* ---- monitoring ---- */

	function renderCluster(d) {
		const first = !S.cluster;
		S.cluster = d;
		$('#cluster-name').textContent = d.cluster || '';
		setTitle();
		const box = $('#nodes');
		const names = nodeNames();
		for (const card of $$('.node-card', box)) {
			if (!names.includes(card.dataset.node)) {
				S.cardJson.delete(card.dataset.node);
				card.remove();
			}
		}
		d.nodes.forEach((n, i) => {
			let card = $$('.node-card', box).find((c) => c.dataset.node === n.name);
			if (!card)
				card = el('section', { 'class': 'node-card', 'data-node': n.name });
			if (box.children[i] !== card)
				box.insertBefore(card, box.children[i] || null);
			const json = JSON.stringify(n);
			if (S.cardJson.get(n.name) !== json) {
				S.cardJson.set(n.name, json);
				fillCard(card, n);
			}
		});
		syncNodeSelect();
		renderChips();
		if (!$('#action-menu').hidden)
			markMenu();
		if (S.view === 'control') {
			if (first && S.tab !== 'resources')
				showTab();
			else if (S.tab === 'resources')
				renderResourcesPanel();
		}
	}

	function fact(label, value, cls) {
		return el('div', { class: 'fact' },
			el('div', { class: 'fact-label' }, label),
			el('div', { class: 'fact-value ' + (cls || '') }, value));
	}

	function section(label, cls, body) {
		return el('div', { class: 'card-section ' + cls },
			el('h3', null, label),
			body);
	}

	function syncText(n) {
		let s = n.sync === undefined ? '\u2014' : String(n.sync);
		if (n.resync && n.resync.bytes_total) {
			s += ' \u2014 ' + t('resync_progress', {
				done: fmtBytes(n.resync.bytes_done || 0), total: fmtBytes(n.resync.bytes_total),
			});
		}
		return s;
	}

	function listOrEmpty(arr, emptyKey, make) {
		if (!Array.isArray(arr))
			return el('div', { class: 'muted' }, '\u2014');
		if (!arr.length)
			return el('div', { class: 'muted empty' }, t(emptyKey));
		return el('ul', { class: 'items' }, arr.map(make));
	}

	function fillCard(card, n) {
		const color = normColor(n.color);
		const reachable = n.reachable !== false;
		card.dataset.state = n.state || '';
		card.dataset.color = color;
		card.dataset.reachable = reachable ? 'true' : 'false';
		card.className = 'node-card border-' + color + (reachable ? '' : ' is-unreachable');

		const head = el('header', { class: 'card-head' },
			el('div', { class: 'node-title' },
				el('h2', { class: 'node-name' }, n.name),
				n.local ? el('span', { class: 'tag local-tag' }, t('node_local')) : null),
			el('button', {
				'type': 'button', 'class': 'btn menu-button', 'aria-haspopup': 'menu',
				'aria-expanded': 'false', 'data-menu-for': n.name,
			}, t('actions'), el('span', { 'class': 'caret', 'aria-hidden': 'true' }, '\u25BE')));

		const stateRow = el('div', { class: 'state-row' },
			el('div', { 'class': 'state color-' + color, 'data-color': color, 'data-state': n.state || '' },
				n.state || '?'),
			el('div', { class: 'state-info' },
				el('div', { class: 'reason' }, n.reason || ''),
				el('div', { class: 'since muted' }, n.since ? t('since_label') + ' ' + n.since : '')));

		const notes = [];
		if (!reachable)
			notes.push(el('div', { class: 'unreachable note note-bad', role: 'alert' },
				t('node_unreachable', { node: n.name })));
		if (n.waiting_for_checker)
			notes.push(el('div', { class: 'note note-warn' }, t('waiting_checker', { name: n.waiting_for_checker })));
		if (n.split_brain)
			notes.push(el('div', { class: 'note note-warn' }, t('split_brain', { time: n.split_brain })));
		if (n.sync_error)
			notes.push(el('div', { class: 'note note-bad' }, n.sync_error));

		let progress = null;
		if (n.resync && n.resync.bytes_total) {
			const pct = Math.min(100, Math.round(100 * (n.resync.bytes_done || 0) / n.resync.bytes_total));
			const bar = el('div', { 'class': 'progress-bar' });
			bar.style.width = pct + '%';
			progress = el('div', { 'class': 'progress', 'role': 'progressbar', 'aria-valuenow': pct,
				'aria-valuemin': 0, 'aria-valuemax': 100 }, bar);
		}
		const facts = el('div', { class: 'facts' },
			el('div', { class: 'fact fact-wide' },
				el('div', { class: 'fact-label' }, t('sync_label')),
				el('div', { class: 'fact-value sync' }, syncText(n)),
				progress),
			fact(t('boot_label'), n.boot || '\u2014', 'boot'),
			fact(t('failover_label'), onOff(n.failover), 'failover'),
			fact(t('checkers_switch_label'), onOff(n.checkers), 'checkers-switch'),
			fact(t('errd_label'), n.errd || '\u2014', 'errd'),
			n.failovers ? fact(t('failovers_label'),
				t('failovers_value', { count: n.failovers.count, max: n.failovers.max }), 'failovers') : null,
			n.witness ? fact(t('witness_label'),
				[n.witness.mode, n.witness.address].filter(Boolean).join(' ') +
				(n.witness.state ? ': ' + n.witness.state : ''), 'witness') : null);

		const vip = n.vip;
		let vipBody;
		if (vip && typeof vip === 'object') {
			vipBody = el('div', { 'class': 'vip', 'data-held': vip.held ? 'true' : 'false' },
				el('span', { class: 'mono' }, vip.address || '?'),
				vip.interface ? el('span', { class: 'muted' }, ' ' + t('vip_on', { iface: vip.interface }) + ' ') : ' ',
				pill(vip.held ? 'ok' : 'idle', vip.held ? t('vip_held') : t('vip_not_held')));
		} else {
			vipBody = el('div', { 'class': 'vip muted', 'data-held': 'false' },
				vip === null ? t('vip_none') : '\u2014');
		}

		/* The status of a node that cannot be reached lists nothing: unknown, not empty. */
		const known = (arr) => (reachable || (Array.isArray(arr) && arr.length) ? arr : undefined);
		const resources = el('div', { class: 'resources' }, listOrEmpty(known(n.resources), 'no_resources', (r) =>
			el('li', { 'data-resource': r.name },
				el('span', { class: 'item-name' }, r.name),
				el('span', { class: 'res-state pill pill-' + resKind(r.state) }, r.state))));

		const checkers = el('div', { class: 'checkers' }, listOrEmpty(n.checkers_state, 'no_checkers', (c) =>
			el('li', { 'data-checker': c.name },
				el('span', { class: 'item-name' }, c.name,
					c.type ? el('span', { class: 'muted' }, ' (' + c.type + ')') : null),
				el('span', { class: 'chk-state pill pill-' + chkKind(c.state) }, c.state),
				c.reason ? el('div', { class: 'item-detail muted' }, c.reason) : null)));

		const networks = el('div', { class: 'networks' }, listOrEmpty(n.networks, 'no_networks', (w) =>
			el('li', { 'data-net': w.address, 'data-up': w.up ? 'true' : 'false' },
				el('span', { class: 'item-name mono' }, w.address + ' \u2194 ' + w.peer),
				pill(w.up ? 'ok' : 'bad', w.up ? t('net_up') : t('net_down')))));

		const alarms = el('div', { class: 'alarms' }, listOrEmpty(n.alarms, 'no_alarms', (a) =>
			el('li', { class: 'alarm' },
				el('span', { class: 'muted mono' }, a.time || ''),
				el('span', { class: 'alarm-text' }, a.message || ''))));

		card.replaceChildren(head, ...notes, stateRow, facts,
			el('div', { class: 'card-grid' },
				section(t('resources_label'), 'sec-resources', resources),
				section(t('vip_label'), 'sec-vip', vipBody),
				section(t('checkers_label'), 'sec-checkers', checkers),
				section(t('networks_label'), 'sec-networks', networks)),
			section(t('alarms_label'), 'sec-alarms' + (Array.isArray(n.alarms) && n.alarms.length ? ' has-alarms' : ''),
				alarms));
	}

	/* ---- control ---- */

	function syncNodeSelect() {
		const sel = $('#node-select');
		const names = nodeNames();
		const have = Array.from(sel.options).map((o) => o.value);
		if (have.join('\n') !== names.join('\n'))
			sel.replaceChildren(...names.map((nm) => el('option', { value: nm }, nm)));
		const cur = currentNode();
		if (cur && sel.value !== cur)
			sel.value = cur;
	}

	function renderChips() {
		const cur = currentNode();
		const chips = S.cluster.nodes.map((n) => {
			const color = normColor(n.color);
			return el('button', {
				'type': 'button', 'class': 'chip' + (n.name === cur ? ' selected' : ''),
				'data-chip-node': n.name, 'aria-pressed': n.name === cur ? 'true' : 'false',
			}, el('span', { class: 'chip-name' }, n.name),
			el('span', { class: 'chip-state color-' + color }, n.state || '?'));
		});
		$('#node-chips').replaceChildren(...chips);
	}

	function renderResourcesPanel() {
		const name = currentNode();
		const n = nodeData(name);
		const key = name + '\n' + JSON.stringify(n || null);
		if (key === S.resKey)
			return;
		S.resKey = key;
		const none = (cols, text) => el('tr', null, el('td', { colspan: cols, class: 'muted' }, text));

		const res = n && Array.isArray(n.resources) ? n.resources : null;
		$('#resources-table tbody').replaceChildren(...(res === null ? [none(2, '\u2014')] :
			!res.length ? [none(2, t('no_resources'))] :
				res.map((r) => el('tr', { 'data-resource': r.name },
					el('td', null, r.name),
					el('td', null, el('span', { class: 'res-state pill pill-' + resKind(r.state) }, r.state))))));

		const chk = n && Array.isArray(n.checkers_state) ? n.checkers_state : null;
		$('#checkers-table tbody').replaceChildren(...(chk === null ? [none(6, '\u2014')] :
			!chk.length ? [none(6, t('no_checkers'))] :
				chk.map((c) => el('tr', { 'data-checker': c.name },
					el('td', null, c.name),
					el('td', null, c.type || ''),
					el('td', null, el('span', { class: 'chk-state pill pill-' + chkKind(c.state) }, c.state)),
					el('td', { class: 'num' }, c.failures === undefined ? '' : c.failures),
					el('td', { class: 'num' }, c.restarts === undefined ? '' : c.restarts),
					el('td', null, c.reason || '')))));

		const rows = n ? [
			[t('state_label'), n.state || '?'],
			[t('reason_label'), n.reason || ''],
			[t('since_label'), n.since || '\u2014'],
			[t('sync_label'), syncText(n)],
			[t('boot_label'), n.boot || '\u2014'],
			[t('failover_label'), onOff(n.failover)],
			[t('checkers_switch_label'), onOff(n.checkers)],
			[t('errd_label'), n.errd || '\u2014'],
		] : [];
		$('#switches-table tbody').replaceChildren(...rows.map(([k, v]) =>
			el('tr', null, el('th', null, k), el('td', null, v))));
	}

	function stopLogPolling() {
		clearInterval(S.logTimer);
		S.logTimer = null;
		S.logGen++;
	}

	function logLevel(line) {
		const m = /^\S+ \S+ (error|warn|debug)\b/.exec(line);
		return m ? ' lvl-' + m[1] : '';
	}

	async function loadLog() {
		const node = currentNode();
		const log = S.tab;
		if (!node || !LOG_TABS.includes(log))
			return;
		const verbose = log === 'module' && $('#log-verbose').checked;
		const gen = ++S.logGen;
		const pre = $('#log-lines');
		const key = node + '|' + log + '|' + (verbose ? 1 : 0);
		if (pre.dataset.key !== key)
			pre.classList.add('loading');
		const q = (verbose ? 'verbose=1&' : '') + 'lines=' + LOG_LINES;
		const r = await api('GET', '/api/v1/nodes/' + enc(node) + '/logs/' + log + '?' + q);
		if (gen !== S.logGen)
			return;
		if (r.status === 401) {
			sessionExpired();
			return;
		}
		pre.classList.remove('loading');
		const d = unwrap(r.data, 'lines');
		if (r.status !== 200 || !d || !Array.isArray(d.lines)) {
			S.logText = null;
			S.logLines = [];
			for (const k of ['key', 'node', 'log', 'verbose'])
				delete pre.dataset[k];
			pre.classList.add('empty');
			pre.replaceChildren(el('span', { class: 'log-error' }, t('log_error', { error: errorOf(r) })));
			return;
		}
		const lines = d.lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)));
		const text = lines.join('\n');
		if (pre.dataset.key === key && S.logText === text)
			return;
		const fresh = pre.dataset.key !== key;
		const atBottom = fresh || pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
		pre.dataset.key = key;
		pre.dataset.node = node;
		pre.dataset.log = log;
		pre.dataset.verbose = verbose ? '1' : '0';
		S.logText = text;
		S.logLines = lines;
		pre.classList.toggle('empty', !lines.length);
		if (!lines.length)
			pre.replaceChildren(el('span', { class: 'log-empty' }, t('log_empty')));
		else
			pre.replaceChildren(...lines.map((l) => el('span', { class: 'log-line' + logLevel(l) }, l + '\n')));
		if (atBottom)
			pre.scrollTop = pre.scrollHeight;
	}

	function saveLog() {
		const pre = $('#log-lines');
		if (!pre.dataset.key)
			return;
		const blob = new Blob([S.logLines.join('\n') + '\n'], { type: 'text/plain' });
		const url = URL.createObjectURL(blob);
		const a = el('a', {
			href: url,
			download: 'vigil-' + pre.dataset.node + '-' + pre.dataset.log +
				(pre.dataset.verbose === '1' ? '-verbose' : '') + '.log',
		});
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 10000);
	}

	function flatten(obj, prefix, out) {
		for (const [k, v] of Object.entries(obj || {})) {
			const key = prefix ? prefix + '.' + k : k;
			if (v && typeof v === 'object' && !Array.isArray(v))
				flatten(v, key, out);
			else if (Array.isArray(v))
				out.push([key, v.map((x) => (x && typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')]);
			else if (typeof v === 'boolean')
				out.push([key, onOff(v)]);
			else
				out.push([key, v === null ? '\u2014' : String(v)]);
		}
		return out;
	}

	async function loadInfo() {
		const gen = ++S.infoGen;
		const node = currentNode();
		const r = await api('GET', node ? '/api/v1/nodes/' + enc(node) + '/info' : '/api/v1/info');
		if (gen !== S.infoGen)
			return;
		if (r.status === 401) {
			sessionExpired();
			return;
		}
		const d = unwrap(r.data, 'version');
		const kv = (rows) => rows.map(([k, v]) => el('tr', { 'data-key': k }, el('th', null, k), el('td', null, v)));
		if (r.status !== 200 || !d || typeof d !== 'object') {
			$('#info-source').textContent = errorOf(r);
			$('#info-table tbody').replaceChildren();
			$('#info-config tbody').replaceChildren();
			return;
		}
		$('#info-source').textContent = t('info_answered_by', { node: d.node || '?' });
		$('#info-table tbody').replaceChildren(...kv([
			[t('info_version'), d.version || '\u2014'],
			[t('info_node'), d.node || '\u2014'],
			[t('info_hostname'), d.hostname || '\u2014'],
			[t('info_cluster'), d.cluster || '\u2014'],
			...(Array.isArray(d.certificates) ? d.certificates : []).map((c) => [
				t('info_certificate') + ' (' + c.use + ')',
				c.path + ' \u2014 ' + c.not_after + ' (' + c.days_left + ' d)']),
		]));
		$('#info-config tbody').replaceChildren(...kv(flatten(d.config, '', [])));
	}

	/* ---- action menu ---- */

	function openMenu(btn, node) {
		const m = $('#action-menu');
		if (!m.hidden && S.menuNode === node) {
			closeMenu();
			return;
		}
		closeMenu();
		S.menuNode = node;
		m.dataset.menuNode = node;
		$('[data-action="snapshot"]', m).setAttribute('href', '/api/v1/nodes/' + enc(node) + '/snapshot');
		markMenu();
		m.hidden = false;
		btn.setAttribute('aria-expanded', 'true');
		const r = btn.getBoundingClientRect();
		const left = Math.max(8, Math.min(window.innerWidth - m.offsetWidth - 8, r.right - m.offsetWidth));
		m.style.left = (left + window.scrollX) + 'px';
		m.style.top = (r.bottom + 4 + window.scrollY) + 'px';
		$('.menu-item', m).focus();
	}

	function closeMenu() {
		const m = $('#action-menu');
		if (m.hidden)
			return;
		m.hidden = true;
		delete m.dataset.menuNode;
		S.menuNode = null;
		$$('[data-submenu]', m).forEach((b) => b.setAttribute('aria-expanded', 'false'));
		$$('[data-submenu-body]', m).forEach((b) => { b.hidden = true; });
		$$('.menu-button[aria-expanded="true"]').forEach((b) => b.setAttribute('aria-expanded', 'false'));
	}

	function toggleSubmenu(name) {
		const m = $('#action-menu');
		for (const b of $$('[data-submenu-body]', m)) {
			const open = b.dataset.submenuBody === name && b.hidden;
			b.hidden = !open;
			$('[data-submenu="' + b.dataset.submenuBody + '"]', m).setAttribute('aria-expanded', open ? 'true' : 'false');
		}
	}

	/* Tick the node's current settings in the Admin submenu. */
	function markMenu() {
		const n = nodeData(S.menuNode) || {};
		const current = {
			'boot-keep': n.boot === 'keep', 'boot-on': n.boot === 'on', 'boot-off': n.boot === 'off',
			'errd-suspend': n.errd === 'suspended', 'errd-resume': n.errd === 'active',
			'checkers-on': n.checkers === true, 'checkers-off': n.checkers === false,
			'failover-on': n.failover === true, 'failover-off': n.failover === false,
		};
		for (const [action, on] of Object.entries(current)) {
			const item = $('#action-menu [data-action="' + action + '"]');
			item.classList.toggle('current', on);
			item.setAttribute('role', 'menuitemradio');
			item.setAttribute('aria-checked', on ? 'true' : 'false');
		}
	}

	function onMenuClick(ev) {
		const sub = ev.target.closest('[data-submenu]');
		if (sub) {
			toggleSubmenu(sub.dataset.submenu);
			return;
		}
		const item = ev.target.closest('[data-action]');
		if (!item)
			return;
		const action = item.dataset.action;
		const node = S.menuNode;
		if (action === 'snapshot') {
			/* The browser downloads it; close once the click went through. */
			setTimeout(closeMenu, 0);
			return;
		}
		closeMenu();
		if (action === 'logs')
			go('control', 'module', node);
		else if (ACTIONS[action])
			runAction(node, action);
	}

	/* ---- confirmation ---- */

	function confirmDialog(action, node, title, text, okLabel) {
		closeConfirm(false);
		return new Promise((resolve) => {
			S.confirmResolve = resolve;
			const c = $('#confirm');
			c.dataset.action = action;
			c.dataset.node = node;
			$('#confirm-title').textContent = title;
			$('#confirm-text').textContent = text;
			$('#confirm-ok').textContent = okLabel;
			c.hidden = false;
			$('#confirm-cancel').focus();
		});
	}

	function closeConfirm(ok) {
		const resolve = S.confirmResolve;
		const c = $('#confirm');
		S.confirmResolve = null;
		c.hidden = true;
		delete c.dataset.action;
		delete c.dataset.node;
		if (resolve)
			resolve(ok);
	}

	/* ---- actions ---- */

	function resultText(node, d) {
		const res = (d && d.result) || {};
		const parts = [res.message || t('action_done')];
		if (Number.isFinite(res.files) && Number.isFinite(res.bytes))
			parts.push(t('estimate_result', { files: res.files, bytes: fmtBytes(res.bytes) }));
		if (res.warning)
			parts.push(t('action_warning', { warning: res.warning }));
		const who = res.node || node;
		const text = parts.join(' \u2014 ');
		/* Node messages mostly name their node already ("node1: stopping"). */
		return text.startsWith(who + ':') ? text : who + ': ' + text;
	}

	async function runAction(node, action) {
		const a = ACTIONS[action];
		if (a.confirm) {
			const ok = await confirmDialog(action, node, t('confirm_title'), t(a.confirm, { node }), t(a.label));
			if (!ok)
				return;
		}
		showBanner('info', t('action_running', { action: t(a.label), node }));
		const r = await api('POST', '/api/v1/nodes/' + enc(node) + '/' + a.path, a.body || {}, ACTION_TIMEOUT_MS);
		if (!S.loggedIn)
			return;
		if (r.status === 401) {
			sessionExpired();
			return;
		}
		if (r.status === 200 && r.data && r.data.ok !== false) {
			showBanner('ok', resultText(node, r.data));
		} else {
			let msg = errorOf(r);
			if (r.data && r.data.wait === 'sync')
				msg += ' ' + t('swap_wait_sync');
			showBanner('error', msg);
		}
		pollNow();
	}

	/* ---- wiring ---- */

	function wire() {
		$('#login-form').addEventListener('submit', onLogin);
		$('#logout').addEventListener('click', logout);
		$('#banner-close').addEventListener('click', hideBanner);
		$('#nav-monitoring').addEventListener('click', () => go('monitoring'));
		$('#nav-control').addEventListener('click', () => go('control', S.tab, currentNode()));
		$('#nodes').addEventListener('click', (ev) => {
			const btn = ev.target.closest('.menu-button');
			if (btn) {
				ev.stopPropagation();
				openMenu(btn, btn.dataset.menuFor);
			}
		});
		$('#action-menu').addEventListener('click', onMenuClick);
		document.addEventListener('click', (ev) => {
			if (!$('#action-menu').hidden && !ev.target.closest('#action-menu'))
				closeMenu();
		});
		window.addEventListener('resize', closeMenu);
		$('#confirm-ok').addEventListener('click', () => closeConfirm(true));
		$('#confirm-cancel').addEventListener('click', () => closeConfirm(false));
		$('#confirm').addEventListener('click', (ev) => {
			if (ev.target === ev.currentTarget)
				closeConfirm(false);
		});
		document.addEventListener('keydown', (ev) => {
			if (!$('#confirm').hidden) {
				if (ev.key === 'Escape') {
					closeConfirm(false);
				} else if (ev.key === 'Tab') {
					/* Keep the focus inside the dialog. */
					ev.preventDefault();
					($('#confirm-ok') === document.activeElement ? $('#confirm-cancel') : $('#confirm-ok')).focus();
				}
			} else if (ev.key === 'Escape') {
				closeMenu();
			}
		});
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
})();
