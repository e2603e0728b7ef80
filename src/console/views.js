/*
 * vigil web console, what the page shows: the Monitoring view (one card per
 * node) and the Control view (node choice, tabs, resources, logs,
 * information), drawn from the cluster status that app.js polls.
 */
import {
	TABS, LOG_TABS, S, $, $$, enc, t, setTitle, fmtBytes, el, api, unwrap, errorOf,
	nodeNames, currentNode, nodeData,
} from './core.js';
import { markMenu } from './menu.js';
import { sessionExpired } from './app.js';

const LOG_POLL_MS = 3000;
const LOG_LINES = 500;

/* ---- helpers ---- */

const COLORS = ['green', 'magenta', 'orange', 'red', 'grey'];

function onOff(v) {
	return v === true ? t('on') : v === false ? t('off') : '\u2014';
}

function normColor(c) {
	if (c === 'gray')
		return 'grey';
	return COLORS.includes(c) ? c : 'grey';
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

/* ---- monitoring ---- */

export function renderCluster(d) {
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

export function showTab() {
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

export function syncNodeSelect() {
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

/* ---- logs ---- */

export function stopLogPolling() {
	clearInterval(S.logTimer);
	S.logTimer = null;
	S.logGen++;
}

function logLevel(line) {
	const m = /^\S+ \S+ (error|warn|debug)\b/.exec(line);
	return m ? ' lvl-' + m[1] : '';
}

export async function loadLog() {
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

export function saveLog() {
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

/* ---- information ---- */

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
