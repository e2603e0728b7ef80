/*
 * vigil web console, acting on a node: the action menu of the node cards,
 * the confirmation asked before what stops a service, and running the
 * action (POST /api/v1/nodes/NAME/...), whose outcome lands in the banner.
 */
import { S, $, $$, enc, t, fmtBytes, api, errorOf, showBanner, nodeData } from './core.js';
import { go, pollNow, sessionExpired } from './app.js';

/* A swap waits for the services to stop on one node and start on the other. */
const ACTION_TIMEOUT_MS = 300000;

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

export function closeMenu() {
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
export function markMenu() {
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

export function closeConfirm(ok) {
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

export function wireMenu() {
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
}
