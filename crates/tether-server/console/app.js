// Tether's web console: a framework-free page over the Device Manager API and the
// /console/api calls (docs/console.md).
//
// Every value from the server reaches the page as a text node (h() never parses
// markup), so ids, metadata and payloads cannot inject script; the CSP forbids inline
// script as a second line of defence.

const store = window.sessionStorage;
const session = {
  get token() { return store.getItem('tether.token'); },
  get project() { return store.getItem('tether.project') || ''; },
  get location() { return store.getItem('tether.location') || 'us-central1'; },
};

// What the current view runs in the background (timers, streams); stopped on leave.
// What the current view runs in the background (timers, streams). A view takes the
// scope when it starts (synchronously): one still loading when the user moves on
// finds its scope left, and stops what it starts at once.
let rendered = 0;
let activeScope = { left: false, stops: [] };
function viewScope() { return activeScope; }
function onLeave(scope, stop) {
  if (scope.left) { stop(); return; }
  scope.stops.push(stop);
}
function leave() {
  activeScope.left = true;
  for (const stop of activeScope.stops) { try { stop(); } catch (_) { /* already stopped */ } }
  activeScope = { left: false, stops: [] };
}

// Runs `task` every `ms` after the previous run ends (never two at once), until the
// view is left.
function every(scope, ms, task) {
  let timer = null;
  let stopped = false;
  const next = () => {
    if (stopped) return;
    timer = setTimeout(() => { Promise.resolve().then(task).catch(() => {}).finally(next); }, ms);
  };
  onLeave(scope, () => { stopped = true; clearTimeout(timer); });
  next();
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function replace(el, ...kids) {
  el.replaceChildren();
  return append(el, kids);
}

let ids = 0;
// A labelled form field; `input` is the control.
function field(label, input, hint) {
  const id = input.id || `f${++ids}`;
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label), input,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

function table(headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty || 'None.');
  return h('div', { class: 'scroll' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

function section(title, ...kids) {
  return h('section', { class: 'card' }, h('h2', {}, title), kids);
}

function button(label, onclick, cls) {
  return h('button', { type: 'button', class: cls || '', onclick }, label);
}

function alertBox() { return document.getElementById('alert'); }

function showError(e) {
  const box = alertBox();
  replace(box, h('strong', {}, 'Error: '), e && e.message ? e.message : String(e),
    ' ', button('Dismiss', () => { box.hidden = true; }, 'link'));
  box.hidden = false;
}

function clearError() { alertBox().hidden = true; }

function notice(el, text, ok) {
  replace(el, text);
  el.className = ok ? 'notice ok' : 'notice';
}

// Runs an action of a form or button: errors go to the alert, never to a blank page.
async function attempt(action) {
  clearError();
  try { return await action(); } catch (e) { showError(e); return undefined; }
}

// ---------------------------------------------------------------- data helpers

const b64 = {
  encodeText(text) { return b64.encodeBytes(new TextEncoder().encode(text)); },
  encodeBytes(bytes) {
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  },
  decode(data) {
    const s = atob(data || '');
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  },
};

function asText(bytes) { return new TextDecoder('utf-8', { fatal: false }).decode(bytes); }
function asHex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' '); }
function payload(data, mode) {
  const bytes = b64.decode(data);
  if (!bytes.length) return h('span', { class: 'muted' }, '(empty)');
  return h('code', { class: 'payload' }, mode === 'hex' ? asHex(bytes) : asText(bytes));
}

// A payload typed in a form, as base64 for the API.
function encodePayload(text, encoding) {
  if (encoding === 'base64') {
    const clean = text.replace(/\s+/g, '');
    try { atob(clean); } catch (_) { throw new Error('the payload is not valid base64'); }
    return clean;
  }
  return b64.encodeText(text);
}

function when(t) {
  if (!t) return h('span', { class: 'muted' }, 'never');
  const d = new Date(t);
  return h('time', { datetime: t, title: t }, Number.isNaN(d.getTime()) ? t : d.toLocaleString());
}

function latest(...times) {
  return times.filter(Boolean).sort().pop() || null;
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body, signal) {
  const headers = { Authorization: `Bearer ${session.token || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'UNAVAILABLE', `the server did not answer (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = null; }
  if (!res.ok) {
    const message = (data && data.error && data.error.message) || text || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, data && data.error && data.error.status, message);
    if (res.status === 401 || res.status === 403) signOut(message);
    throw err;
  }
  return data || {};
}

// A resource name (`projects/p/…/devices/d[:verb][?query]`) as a URL path: each
// segment percent-encoded (ids may hold `%` and `+`), the `:verb` and query kept.
function resourcePath(name) {
  const at = name.indexOf('?');
  const path = at < 0 ? name : name.slice(0, at);
  const encoded = path.split('/').map((seg) => {
    const colon = seg.indexOf(':');
    return colon < 0 ? encodeURIComponent(seg) : encodeURIComponent(seg.slice(0, colon)) + seg.slice(colon);
  }).join('/');
  return at < 0 ? encoded : encoded + name.slice(at);
}

const v1 = (method, name, body) => call(method, `/v1/${resourcePath(name)}`, body);
const parent = () => `projects/${session.project}/locations/${session.location}`;
const registryName = (r) => `${parent()}/registries/${r}`;
const deviceName = (r, d) => `${registryName(r)}/devices/${d}`;
const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();

// ---------------------------------------------------------------- routing

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch (_) { return p; }
  });
  return { parts, params: new URLSearchParams(qs || '') };
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function render() {
  leave();
  rendered += 1;
  const generation = rendered;
  clearError();
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  if (!session.token) {
    nav.hidden = true;
    replace(document.getElementById('scope'));
    replace(main, loginView());
    main.querySelector('input')?.focus();
    return;
  }
  nav.hidden = false;
  replace(document.getElementById('scope'), `projects/${session.project}/locations/${session.location}`);
  const { parts, params } = route();
  for (const a of nav.querySelectorAll('a')) {
    const here = (a.getAttribute('href') === '#/' && (parts[0] === undefined || parts[0] === 'r'))
      || a.getAttribute('href') === `#/${parts[0]}`;
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const view = h('div', { class: 'view' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, view);
  try {
    if (generation !== rendered) return;
    let content;
    if (parts[0] === 'r' && parts.length === 2) content = await registryView(parts[1]);
    else if (parts[0] === 'r' && parts[2] === 'd' && parts.length === 4) content = await deviceView(parts[1], parts[3]);
    else if (parts[0] === 'telemetry') content = await telemetryView(params);
    else if (parts[0] === 'fleet') content = fleetView();
    else if (parts[0] === 'debugger') content = debuggerView(params);
    else content = await registriesView();
    if (generation === rendered) replace(view, content);
  } catch (e) {
    if (e.status === 401 || e.status === 403) return;
    replace(view, h('div', { class: 'card failed' },
      h('h1', {}, 'This page could not be loaded'),
      h('p', { class: 'api-message' }, e.message),
      h('p', {}, h('a', { href: '#/' }, 'Back to the registries'))));
  }
}

function signOut(message) {
  store.removeItem('tether.token');
  render().then(() => { if (message) showError(new Error(message)); });
}

// ---------------------------------------------------------------- login

function loginView() {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true });
  const project = h('input', { type: 'text', name: 'project', required: true, value: session.project, placeholder: 'my-project' });
  const loc = h('input', { type: 'text', name: 'location', required: true, value: session.location });
  const status = h('p', { class: 'notice', role: 'status' });
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to Tether'),
    h('p', { class: 'muted' }, 'The admin token is printed by `tether serve` on first start, or is the one you configured.'),
    field('Admin token', token),
    field('Project', project, 'The project whose registries to show.'),
    field('Location', loc),
    h('button', { type: 'submit' }, 'Sign in'),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    store.setItem('tether.token', token.value.trim());
    store.setItem('tether.project', project.value.trim());
    store.setItem('tether.location', loc.value.trim());
    notice(status, 'Checking the token…');
    try {
      await v1('GET', `${parent()}/registries?pageSize=1`);
      go('#/');
    } catch (e) {
      store.removeItem('tether.token');
      if (e.status !== 401 && e.status !== 403) notice(status, e.message);
    }
  });
  return form;
}

// ---------------------------------------------------------------- registries

async function registriesView() {
  const list = h('div', {});
  const tokens = [''];
  async function load(i) {
    const r = await v1('GET', `${parent()}/registries?${query({ pageSize: 50, pageToken: tokens[i] })}`);
    const rows = (r.deviceRegistries || []).map((reg) => [
      h('a', { href: `#/r/${encodeURIComponent(reg.id)}` }, reg.id),
      (reg.mqttConfig?.mqttEnabledState || 'MQTT_ENABLED') === 'MQTT_ENABLED' ? 'on' : 'off',
      (reg.httpConfig?.httpEnabledState || 'HTTP_ENABLED') === 'HTTP_ENABLED' ? 'on' : 'off',
      (reg.eventNotificationConfigs || []).map((c) => h('div', {}, c.subfolderMatches ? `${c.subfolderMatches} → ` : '', c.pubsubTopicName)),
    ]);
    if (r.nextPageToken) tokens[i + 1] = r.nextPageToken;
    replace(list,
      table(['Registry', 'MQTT', 'HTTP', 'Telemetry topics'], rows, 'No registries yet: create one below.'),
      pager(i, Boolean(r.nextPageToken), (j) => attempt(() => load(j))));
  }
  await load(0);

  const id = h('input', { type: 'text', name: 'registryId', required: true });
  const topic = h('input', { type: 'text', name: 'eventTopic', placeholder: `projects/${session.project}/topics/telemetry` });
  const stateTopic = h('input', { type: 'text', name: 'stateTopic' });
  const mqtt = h('input', { type: 'checkbox', name: 'mqtt', checked: true });
  const http = h('input', { type: 'checkbox', name: 'http', checked: true });
  const form = h('form', { class: 'grid' },
    field('Registry id', id),
    field('Telemetry topic', topic, 'Where devices\' events go (a Pub/Sub topic name).'),
    field('State topic (optional)', stateTopic),
    h('div', { class: 'checks' }, h('label', {}, mqtt, ' MQTT enabled'), h('label', {}, http, ' HTTP enabled')),
    h('button', { type: 'submit' }, 'Create registry'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const body = {
        id: id.value.trim(),
        mqttConfig: { mqttEnabledState: mqtt.checked ? 'MQTT_ENABLED' : 'MQTT_DISABLED' },
        httpConfig: { httpEnabledState: http.checked ? 'HTTP_ENABLED' : 'HTTP_DISABLED' },
      };
      if (topic.value.trim()) body.eventNotificationConfigs = [{ pubsubTopicName: topic.value.trim() }];
      if (stateTopic.value.trim()) body.stateNotificationConfig = { pubsubTopicName: stateTopic.value.trim() };
      await v1('POST', `${parent()}/registries`, body);
      go(`#/r/${encodeURIComponent(body.id)}`);
    });
  });
  return [h('h1', {}, 'Registries'), section('All registries', list), section('Create a registry', form)];
}

function pager(page, hasNext, load) {
  return h('div', { class: 'pager' },
    button('Previous page', () => load(page - 1), page === 0 ? 'hidden' : ''),
    h('span', { class: 'muted' }, `Page ${page + 1}`),
    hasNext ? button('Next page', () => load(page + 1)) : null);
}

// ---------------------------------------------------------------- one registry

async function registryView(rid) {
  const scope = viewScope();
  const reg = await v1('GET', registryName(rid));
  return [
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Registries'), ' / ', rid),
    h('h1', {}, `Registry ${rid}`),
    section('Devices', await deviceList(reg, scope)),
    section('Create a device', createDeviceForm(rid)),
    section('Settings', registrySettings(reg)),
  ];
}

function registrySettings(reg) {
  const rows = h('div', { class: 'rows' });
  const addRow = (c) => {
    const sub = h('input', { type: 'text', value: c.subfolderMatches || '', 'aria-label': 'Subfolder (empty: every event)' });
    const topic = h('input', { type: 'text', value: c.pubsubTopicName || '', 'aria-label': 'Pub/Sub topic' });
    const row = h('div', { class: 'row' }, sub, topic, button('Remove', () => row.remove(), 'link'));
    row.values = () => ({ subfolderMatches: sub.value.trim(), pubsubTopicName: topic.value.trim() });
    rows.append(row);
  };
  (reg.eventNotificationConfigs || []).forEach(addRow);
  const stateTopic = h('input', { type: 'text', value: reg.stateNotificationConfig?.pubsubTopicName || '' });
  const select = (name, options, value) => h('select', { name }, options.map((o) => h('option', { value: o, selected: o === value }, o)));
  const mqtt = select('mqtt', ['MQTT_ENABLED', 'MQTT_DISABLED'], reg.mqttConfig?.mqttEnabledState || 'MQTT_ENABLED');
  const http = select('http', ['HTTP_ENABLED', 'HTTP_DISABLED'], reg.httpConfig?.httpEnabledState || 'HTTP_ENABLED');
  const status = h('p', { role: 'status' });
  const form = h('form', { class: 'grid' },
    h('fieldset', {}, h('legend', {}, 'Telemetry routes (subfolder → topic; an empty subfolder is the default)'),
      rows, button('Add a route', () => addRow({}), 'secondary')),
    field('State topic', stateTopic),
    field('MQTT', mqtt), field('HTTP', http),
    h('button', { type: 'submit' }, 'Save settings'), status);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const configs = Array.from(rows.children, (r) => r.values()).filter((c) => c.pubsubTopicName)
        .map((c) => (c.subfolderMatches ? c : { pubsubTopicName: c.pubsubTopicName }));
      const body = {
        eventNotificationConfigs: configs,
        stateNotificationConfig: { pubsubTopicName: stateTopic.value.trim() },
        mqttConfig: { mqttEnabledState: mqtt.value },
        httpConfig: { httpEnabledState: http.value },
      };
      const mask = 'event_notification_configs,state_notification_config,mqtt_config,http_config';
      await v1('PATCH', `${reg.name}?updateMask=${mask}`, body);
      notice(status, 'Saved.', true);
    });
  });
  return form;
}

const LIST_FIELDS = 'id,num_id,blocked,last_heartbeat_time,last_event_time,last_state_time,last_config_ack_time,last_error_time,last_error_status,gateway_config';

async function deviceList(reg, scope) {
  const rid = reg.id;
  const ids = h('input', { type: 'search', name: 'deviceIds', placeholder: 'dev-1, dev-2' });
  const kind = h('select', { name: 'type' },
    h('option', { value: '' }, 'All devices'), h('option', { value: 'GATEWAY' }, 'Gateways'),
    h('option', { value: 'NON_GATEWAY' }, 'Non-gateways'));
  const show = h('select', { name: 'show' },
    h('option', { value: '' }, 'Online and offline'), h('option', { value: 'online' }, 'Online only'),
    h('option', { value: 'offline' }, 'Offline only'));
  const out = h('div', { 'aria-live': 'polite' });
  const filters = h('form', { class: 'filters', role: 'search' },
    field('Device ids (exact)', ids), field('Type', kind), field('Show', show),
    h('button', { type: 'submit' }, 'Filter'));
  let tokens = [''];
  let page = 0;
  let devices = [];
  let online = {};
  let presenceNote = '';

  function draw() {
    const shown = devices.filter((d) => !show.value
      || (show.value === 'online') === Boolean(online[d.numId]));
    const rows = shown.map((d) => {
      const up = online[d.numId];
      const status = d.blocked ? h('span', { class: 'badge blocked' }, 'blocked')
        : h('span', { class: `badge ${up ? 'online' : 'offline'}` }, up === undefined ? '…' : up ? 'online' : 'offline');
      return [
        h('a', { href: `#/r/${encodeURIComponent(rid)}/d/${encodeURIComponent(d.id)}` }, d.id),
        d.gatewayConfig?.gatewayType === 'GATEWAY' ? 'gateway' : 'device',
        status,
        when(latest(d.lastHeartbeatTime, d.lastEventTime, d.lastStateTime, d.lastConfigAckTime)),
        d.lastErrorStatus?.message ? h('span', { class: 'error-text' }, d.lastErrorStatus.message) : h('span', { class: 'muted' }, 'none'),
      ];
    });
    replace(out,
      presenceNote ? h('p', { class: 'notice' }, presenceNote) : null,
      table(['Device', 'Kind', 'Status', 'Last seen', 'Last error'], rows, 'No devices match.'),
      pager(page, Boolean(tokens[page + 1]), (j) => attempt(() => load(j))));
  }

  async function refreshPresence() {
    if (!devices.length) return;
    const asked = devices;
    const r = await call('GET', `/console/api/presence?${query({ registry: reg.name, numIds: devices.map((d) => d.numId).join(',') })}`);
    // Another page was loaded meanwhile: this answer is not about it.
    if (asked !== devices) return;
    online = r.online || {};
    presenceNote = r.unknown ? `Online state unknown: ${r.unknown}` : '';
    draw();
  }

  async function load(i) {
    const params = { pageSize: 50, pageToken: tokens[i], fieldMask: LIST_FIELDS, 'gatewayListOptions.gatewayType': kind.value };
    const list = ids.value.split(',').map((s) => s.trim()).filter(Boolean);
    let qs = query(params);
    for (const id of list) qs += `&deviceIds=${encodeURIComponent(id)}`;
    const r = await v1('GET', `${reg.name}/devices?${qs}`);
    page = i;
    devices = r.devices || [];
    if (r.nextPageToken) tokens[i + 1] = r.nextPageToken; else tokens = tokens.slice(0, i + 1);
    online = {};
    draw();
    await refreshPresence();
  }

  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    tokens = [''];
    attempt(() => load(0));
  });
  show.addEventListener('change', draw);
  // Page tokens belong to the filter they were issued for.
  kind.addEventListener('change', () => { tokens = ['']; attempt(() => load(0)); });
  ids.addEventListener('input', () => { tokens = ['']; page = 0; draw(); });
  await load(0);
  every(scope, 3000, refreshPresence);
  return [filters, out];
}

const KEY_FORMATS = ['ES256_PEM', 'RSA_PEM', 'ES256_X509_PEM', 'RSA_X509_PEM'];

function keyFields() {
  const format = h('select', { name: 'format' }, KEY_FORMATS.map((f) => h('option', { value: f }, f)));
  const key = h('textarea', { name: 'key', rows: 5, placeholder: '-----BEGIN PUBLIC KEY-----' });
  const expires = h('input', { type: 'datetime-local', name: 'expires' });
  return {
    fields: [field('Key format', format), field('Public key (PEM)', key), field('Expires (optional)', expires)],
    value() {
      if (!key.value.trim()) throw new Error('paste the device\'s public key (PEM)');
      const c = { publicKey: { format: format.value, key: key.value.trim() + '\n' } };
      if (expires.value) c.expirationTime = new Date(expires.value).toISOString();
      return c;
    },
  };
}

function createDeviceForm(rid) {
  const id = h('input', { type: 'text', name: 'deviceId', required: true });
  const gateway = h('input', { type: 'checkbox', name: 'gateway' });
  const key = keyFields();
  const form = h('form', { class: 'grid' },
    field('Device id', id), key.fields,
    h('div', { class: 'checks' }, h('label', {}, gateway, ' This device is a gateway')),
    h('button', { type: 'submit' }, 'Create device'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const body = { id: id.value.trim(), credentials: [key.value()] };
      if (gateway.checked) body.gatewayConfig = { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' };
      await v1('POST', `${registryName(rid)}/devices`, body);
      go(`#/r/${encodeURIComponent(rid)}/d/${encodeURIComponent(body.id)}`);
    });
  });
  return form;
}

// ---------------------------------------------------------------- one device

async function deviceView(rid, did) {
  const scope = viewScope();
  const name = deviceName(rid, did);
  const [reg, device] = await Promise.all([v1('GET', registryName(rid)), v1('GET', name)]);
  const badge = h('span', { id: 'presence', class: 'badge', role: 'status' }, '…');
  const activity = h('dl', { class: 'facts' });
  const lastError = h('div', { id: 'last-error' });
  const keys = h('div', {});
  const configs = h('div', {});
  const states = h('div', {});
  const mode = h('select', { 'aria-label': 'Show payloads as' }, h('option', { value: 'text' }, 'text'), h('option', { value: 'hex' }, 'hex'));
  let current = device;
  // Bumped by every change made here: a refresh that started before one is stale and
  // must not put the older device back.
  let changes = 0;

  // Changes the device from its latest version (read now, not the page's copy, so a
  // key rotated or a field set elsewhere meanwhile is kept), then redraws.
  async function change(mask, edit) {
    changes += 1;
    const fresh = await v1('GET', name);
    current = await v1('PATCH', `${name}?updateMask=${mask}`, edit(fresh));
    changes += 1;
    drawBlocked();
    await drawKeys();
    return current;
  }

  function drawActivity(d) {
    replace(activity,
      h('dt', {}, 'numId'), h('dd', {}, d.numId),
      h('dt', {}, 'Kind'), h('dd', {}, d.gatewayConfig?.gatewayType === 'GATEWAY' ? `gateway (${d.gatewayConfig.gatewayAuthMethod || 'no auth method'})` : 'device'),
      h('dt', {}, 'Last heartbeat'), h('dd', {}, when(d.lastHeartbeatTime)),
      h('dt', {}, 'Last event'), h('dd', {}, when(d.lastEventTime)),
      h('dt', {}, 'Last state'), h('dd', {}, when(d.lastStateTime)),
      h('dt', {}, 'Last config sent'), h('dd', {}, when(d.lastConfigSendTime)),
      h('dt', {}, 'Last config ack'), h('dd', {}, when(d.lastConfigAckTime)));
    replace(lastError, d.lastErrorStatus?.message
      ? h('div', { class: 'last-error' }, h('strong', {}, 'Last error '), when(d.lastErrorTime), h('p', { class: 'error-text' }, d.lastErrorStatus.message))
      : h('p', { class: 'muted' }, 'No error recorded.'));
  }

  async function drawKeys() {
    const [d, info] = await Promise.all([v1('GET', name), call('GET', `/console/api/device?${query({ name })}`)]);
    const rows = info.credentials.map((c) => [
      c.format,
      c.error ? h('span', { class: 'error-text' }, c.error) : h('span', {}, h('div', {}, c.label), h('code', { class: 'fingerprint' }, c.fingerprint)),
      c.expirationTime ? h('span', { class: c.expired ? 'error-text' : '' }, when(c.expirationTime), c.expired ? ' (expired)' : '') : 'never',
      // Removed by its text, not its position: positions move when keys change.
      button('Remove', () => attempt(() => {
        const text = d.credentials?.[c.index]?.publicKey?.key;
        return change('credentials', (fresh) => ({ credentials: (fresh.credentials || []).filter((k) => k.publicKey?.key !== text) }));
      }), 'link'),
    ]);
    replace(keys, table(['Format', 'Key', 'Expires', ''], rows, 'No keys: this device cannot connect.'));
    presence(info);
  }

  function presence(info) {
    const up = info.online;
    badge.className = `badge ${up ? 'online' : up === false ? 'offline' : ''}`;
    replace(badge, up === null || up === undefined ? `online state unknown: ${info.onlineUnknown || ''}` : up ? 'online' : 'offline');
  }

  async function drawConfigs() {
    const r = await v1('GET', `${name}/configVersions`);
    const rows = (r.deviceConfigs || []).map((c) => [
      h('span', { class: 'version' }, c.version), when(c.cloudUpdateTime),
      c.deviceAckTime ? h('span', { class: 'acked' }, 'acknowledged ', when(c.deviceAckTime)) : h('span', { class: 'muted' }, 'not acknowledged'),
      payload(c.binaryData, mode.value),
    ]);
    replace(configs, table(['Version', 'Stored', 'Device ack', 'Data'], rows, 'No config yet.'));
  }

  async function drawStates() {
    const r = await v1('GET', `${name}/states?numStates=10`);
    const rows = (r.deviceStates || []).map((s) => [when(s.updateTime), payload(s.binaryData, mode.value)]);
    replace(states, table(['Reported', 'Data'], rows, 'No state reported yet.'));
  }

  async function refresh() {
    const seen = changes;
    const d = await v1('GET', name);
    if (seen !== changes) return;
    current = d;
    drawActivity(d);
    drawBlocked();
    meta.draw();
    await Promise.all([drawKeys(), drawConfigs(), drawStates()]);
  }

  const blockedState = h('span', {});
  // The label says what a click does to the device as last read.
  const blocked = button('Block', () => attempt(() => change('blocked', () => ({ blocked: !current.blocked }))), 'secondary');
  function drawBlocked() {
    replace(blocked, current.blocked ? 'Unblock' : 'Block');
    replace(blockedState, current.blocked ? 'Blocked: the gateway refuses this device.' : 'Not blocked.');
  }
  const meta = metadataEditor(() => current, change);

  drawActivity(device);
  drawBlocked();
  await Promise.all([drawKeys(), drawConfigs(), drawStates()]);
  mode.addEventListener('change', () => attempt(() => Promise.all([drawConfigs(), drawStates()])));
  every(scope, 3000, refresh);

  const addKey = keyFields();
  const keyForm = h('form', { class: 'grid' }, addKey.fields, h('button', { type: 'submit' }, 'Add key'));
  keyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const key = addKey.value();
      await change('credentials', (fresh) => ({ credentials: [...(fresh.credentials || []), key] }));
      keyForm.reset();
    });
  });

  // The default route's topic (no subfolder) holds most of a device's events.
  const routes = (reg.eventNotificationConfigs || []).filter((c) => c.pubsubTopicName);
  const topic = (routes.find((c) => !c.subfolderMatches) || routes[0])?.pubsubTopicName;
  return [
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Registries'), ' / ',
      h('a', { href: `#/r/${encodeURIComponent(rid)}` }, rid), ' / ', did),
    h('h1', {}, `Device ${did} `, badge),
    h('div', { class: 'columns' },
      section('Activity', activity, lastError,
        topic ? h('p', {}, h('a', { href: `#/telemetry?${query({ topic, registry: rid, device: did })}` }, 'Live telemetry of this device')) : null,
        h('p', {}, h('a', { href: `#/debugger?${query({ registry: rid, device: did })}` }, 'Check a token of this device'))),
      section('Blocked', h('p', {}, blockedState, ' ', blocked))),
    section('Keys', keys, h('h3', {}, 'Add a key'), keyForm),
    section('Metadata', meta.view),
    section('Config', h('div', { class: 'inline' }, field('Show payloads as', mode)), configs,
      h('h3', {}, 'Push a new config'), payloadForm('Push config', async (data) => {
        await v1('POST', `${name}:modifyCloudToDeviceConfig`, { binaryData: data });
        await drawConfigs();
      })),
    section('State history', states),
    section('Send a command', payloadForm('Send command', async (data, subfolder) => {
      await v1('POST', `${name}:sendCommandToDevice`, subfolder ? { binaryData: data, subfolder } : { binaryData: data });
    }, true)),
    section('Gateway bindings', await bindings(reg, device)),
  ];
}

function payloadForm(label, send, withSubfolder) {
  const text = h('textarea', { name: 'payload', rows: 3 });
  const encoding = h('select', { name: 'encoding' }, h('option', { value: 'text' }, 'text (UTF-8)'), h('option', { value: 'base64' }, 'base64'));
  const subfolder = h('input', { type: 'text', name: 'subfolder' });
  const status = h('p', { role: 'status' });
  const form = h('form', { class: 'grid' },
    withSubfolder ? field('Subfolder (optional)', subfolder) : null,
    field('Payload', text), field('Payload is', encoding),
    h('button', { type: 'submit' }, label), status);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      await send(encodePayload(text.value, encoding.value), subfolder.value.trim());
      notice(status, withSubfolder ? 'Delivered to the device.' : 'Stored; it is sent to the device if it is subscribed.', true);
    });
  });
  return form;
}

// `change(mask, edit)` applies an edit to the device's latest version.
function metadataEditor(get, change) {
  const out = h('div', {});
  function draw() {
    const meta = get().metadata || {};
    const rows = Object.keys(meta).sort().map((k) => [
      h('code', {}, k), h('span', { class: 'meta-value' }, meta[k]),
      button('Remove', () => save((fresh) => Object.fromEntries(Object.entries(fresh).filter(([key]) => key !== k))), 'link'),
    ]);
    replace(out, table(['Key', 'Value', ''], rows, 'No metadata.'));
  }
  async function save(edit) {
    await attempt(async () => {
      await change('metadata', (fresh) => ({ metadata: edit(fresh.metadata || {}) }));
      draw();
    });
  }
  const key = h('input', { type: 'text', name: 'metaKey', required: true });
  const value = h('textarea', { name: 'metaValue', rows: 2 });
  const form = h('form', { class: 'grid' }, field('Key', key), field('Value', value), h('button', { type: 'submit' }, 'Set metadata'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const k = key.value.trim();
    const v = value.value;
    save((fresh) => ({ ...fresh, [k]: v })).then(() => form.reset());
  });
  draw();
  return { view: [out, form], draw };
}

async function bindings(reg, device) {
  const isGateway = device.gatewayConfig?.gatewayType === 'GATEWAY';
  const out = h('div', {});
  async function draw() {
    const option = isGateway ? 'gatewayListOptions.associationsGatewayId' : 'gatewayListOptions.associationsDeviceId';
    const r = await v1('GET', `${reg.name}/devices?${query({ [option]: device.id, pageSize: 100 })}`);
    const rows = (r.devices || []).map((d) => [
      h('a', { href: `#/r/${encodeURIComponent(reg.id)}/d/${encodeURIComponent(d.id)}` }, d.id),
      button('Unbind', () => attempt(async () => {
        const pair = isGateway ? { gatewayId: device.id, deviceId: d.id } : { gatewayId: d.id, deviceId: device.id };
        await v1('POST', `${reg.name}:unbindDeviceFromGateway`, pair);
        await draw();
      }), 'link'),
    ]);
    replace(out, table([isGateway ? 'Bound devices' : 'Bound to gateways', ''], rows, isGateway ? 'No devices bound to this gateway.' : 'Not bound to any gateway.'));
  }
  await draw();
  const other = h('input', { type: 'text', name: 'bindId', required: true });
  const form = h('form', { class: 'grid' }, field(isGateway ? 'Device id to bind' : 'Gateway id to bind to', other), h('button', { type: 'submit' }, 'Bind'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const id = other.value.trim();
      const pair = isGateway ? { gatewayId: device.id, deviceId: id } : { gatewayId: id, deviceId: device.id };
      await v1('POST', `${reg.name}:bindDeviceToGateway`, pair);
      form.reset();
      await draw();
    });
  });
  return [out, form];
}

// ---------------------------------------------------------------- live telemetry

async function telemetryView(params) {
  const scope = viewScope();
  let known = [];
  try { known = (await call('GET', '/v1/telemetry/topics')).topics || []; } catch (e) { if (e.status === 401 || e.status === 403) throw e; }
  const topic = h('input', { type: 'text', name: 'topic', list: 'topics', required: true, value: params.get('topic') || known[0]?.topic || '' });
  const topics = h('datalist', { id: 'topics' }, known.map((t) => h('option', { value: t.topic })));
  const device = h('input', { type: 'text', name: 'device', value: params.get('device') || '' });
  const mode = h('select', { name: 'mode' }, h('option', { value: 'text' }, 'text'), h('option', { value: 'hex' }, 'hex'));
  const status = h('p', { class: 'notice', role: 'status', id: 'stream-status' }, 'Not streaming.');
  const body = h('tbody', {});
  const messages = h('div', { class: 'scroll' }, h('table', { id: 'live' },
    h('thead', {}, h('tr', {}, ['Published', 'Device', 'Subfolder', 'Payload'].map((t) => h('th', { scope: 'col' }, t)))), body));
  const start = h('button', { type: 'submit' }, 'Start');
  let controller = null;
  const form = h('form', { class: 'filters' }, field('Topic', topic), topics, field('Device id (optional)', device), field('Payload as', mode), start);
  const stop = () => { if (controller) controller.abort(); controller = null; replace(start, 'Start'); };
  onLeave(scope, stop);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (controller) { stop(); notice(status, 'Stopped.'); return; }
    controller = new AbortController();
    replace(start, 'Stop');
    const signal = controller.signal;
    stream(topic.value.trim(), device.value.trim() ? params.get('registry') : '', device.value.trim(), signal, {
      open(from) { notice(status, `Live from offset ${from}: new messages appear at the top.`, true); },
      message(m) {
        const a = m.attributes || {};
        body.prepend(h('tr', {}, h('td', {}, when(m.publishTime)), h('td', {}, a.deviceId || ''), h('td', {}, a.subFolder || ''), h('td', {}, payload(m.data, mode.value))));
        while (body.children.length > 200) body.lastElementChild.remove();
      },
      failure(message) { notice(status, `The stream ended: ${message}`); stop(); },
    }).catch((e) => { if (e.name !== 'AbortError') { notice(status, `The stream ended: ${e.message}`); stop(); } });
  });
  const view = [h('h1', {}, 'Live telemetry'), section('Stream', form, status, messages)];
  if (params.get('topic')) setTimeout(() => form.requestSubmit(), 0);
  return view;
}

// Reads the server-sent events of /console/api/stream with fetch (an EventSource
// cannot send the admin token).
async function stream(topic, registry, device, signal, on) {
  const res = await fetch(`/console/api/stream?${query({ topic, registry, device })}`, { headers: { Authorization: `Bearer ${session.token}` }, signal });
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try { message = JSON.parse(text).error.message; } catch (_) { /* plain text */ }
    if (res.status === 401 || res.status === 403) signOut(message);
    throw new Error(message);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) { on.failure('the server closed the stream'); return; }
    buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const chunk = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = 'message';
      let data = '';
      for (const line of chunk.split('\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (line.startsWith('event:')) kind = value;
        else if (line.startsWith('data:')) data += value;
      }
      if (!data) continue;
      const parsed = JSON.parse(data);
      if (kind === 'open') on.open(parsed.from);
      else if (kind === 'failure') { on.failure(parsed.message); return; }
      else on.message(parsed);
    }
  }
}

// ---------------------------------------------------------------- fleet

const WINDOW = 150; // samples: five minutes at one every two seconds

function fleetView() {
  const scope = viewScope();
  // This visit's samples: rates never span a time the page was closed.
  const samples = [];
  const cards = h('div', { class: 'stats', 'aria-live': 'polite' });
  const chart = h('div', { class: 'chart' });
  const refusals = h('div', {});
  async function poll() {
    const n = await call('GET', '/console/api/fleet');
    samples.push(n);
    while (samples.length > WINDOW) samples.shift();
    const rates = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1];
      const b = samples[i];
      const dt = Math.max((b.atMillis - a.atMillis) / 1000, 0.001);
      const refused = Object.values(b.refusals).reduce((x, y) => x + y, 0) - Object.values(a.refusals).reduce((x, y) => x + y, 0);
      rates.push({
        at: b.atMillis,
        messages: Math.max(0, (b.messagesIn + b.httpRequests - a.messagesIn - a.httpRequests) / dt),
        connects: Math.max(0, (b.connects - a.connects) / dt),
        refusals: Math.max(0, refused / dt),
      });
    }
    const last = rates[rates.length - 1] || { messages: 0, connects: 0, refusals: 0 };
    const stat = (label, value, id) => h('div', { class: 'stat', id }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
    replace(cards,
      stat('connected devices', n.connections, 'stat-connected'),
      stat('connects/s', last.connects.toFixed(1), 'stat-connects'),
      stat('messages/s', last.messages.toFixed(1), 'stat-messages'),
      stat('refusals/s', last.refusals.toFixed(1), 'stat-refusals'));
    replace(chart, lineChart(rates));
    const first = samples[0];
    const rows = Object.keys(n.refusals).sort().map((reason) => [reason, n.refusals[reason], n.refusals[reason] - (first.refusals[reason] || 0)]);
    replace(refusals, table(['Reason', 'Since the server started', `In the last ${Math.round((n.atMillis - first.atMillis) / 1000)} s`], rows, 'No CONNECT refused since the server started.'));
  }
  const tick = () => poll().catch((e) => { if (e.status !== 401 && e.status !== 403) showError(e); });
  tick();
  every(scope, 2000, tick);
  return [h('h1', {}, 'Fleet'), section('Now', cards),
    section('Last minutes', h('p', { class: 'muted' }, 'From the same counters as /metrics, sampled every 2 s while this page is open.'), chart),
    section('Refusals by reason', refusals)];
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const kid of kids) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}

function lineChart(rates) {
  const W = 600; const H = 160; const P = 28;
  const max = Math.max(1, ...rates.map((r) => Math.max(r.messages, r.connects, r.refusals)));
  // The line spans the chart from the first minute on, then slides once it holds
  // WINDOW samples.
  const span = Math.min(WINDOW - 2, Math.max(rates.length - 1, 30));
  const x = (i) => P + (i * (W - 2 * P)) / span;
  const y = (v) => H - P - (v * (H - 2 * P)) / max;
  const line = (key, cls) => svg('polyline', { class: cls, fill: 'none', 'stroke-width': 2, points: rates.map((r, i) => `${x(i).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ') });
  return [
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Messages, connects and refusals per second; peak ${max.toFixed(1)}/s` },
      svg('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' }),
      svg('line', { x1: P, y1: P, x2: P, y2: H - P, class: 'axis' }),
      svg('text', { x: 2, y: P + 4, class: 'tick' }, max.toFixed(0)),
      svg('text', { x: 2, y: H - P, class: 'tick' }, '0'),
      line('messages', 'series messages'), line('connects', 'series connects'), line('refusals', 'series refusals')),
    h('p', { class: 'legend' }, h('span', { class: 'key messages' }, 'messages/s'), h('span', { class: 'key connects' }, 'connects/s'), h('span', { class: 'key refusals' }, 'refusals/s')),
  ];
}

// ---------------------------------------------------------------- token debugger

function debuggerView(params) {
  const token = h('textarea', { name: 'token', rows: 6, required: true, spellcheck: 'false', autocomplete: 'off' });
  const registry = h('input', { type: 'text', name: 'registry', value: params.get('registry') || '' });
  const device = h('input', { type: 'text', name: 'device', value: params.get('device') || '' });
  const out = h('div', { id: 'diagnosis', 'aria-live': 'polite' });
  const form = h('form', { class: 'grid' },
    field('Token (JWT)', token, 'Checked on the server; it is neither logged nor stored.'),
    field('Registry id (optional)', registry), field('Device id (optional)', device, 'With a device, the signature is checked against its registered keys and aud against the project.'),
    h('button', { type: 'submit' }, 'Diagnose'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const body = { token: token.value };
      if (registry.value.trim() && device.value.trim()) body.device = deviceName(registry.value.trim(), device.value.trim());
      else body.project = session.project;
      if (Boolean(registry.value.trim()) !== Boolean(device.value.trim())) throw new Error('name both the registry and the device, or neither');
      const d = await call('POST', '/console/api/diagnose', body);
      replace(out, diagnosis(d));
    });
  });
  return [h('h1', {}, 'Token debugger'), section('Token', form), out];
}

function diagnosis(d) {
  const errors = d.findings.filter((f) => f.severity === 'error').length;
  const warnings = d.findings.filter((f) => f.severity === 'warning').length;
  const verdict = d.valid
    ? h('p', { class: 'verdict ok' }, `The gateway accepts this token${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}.`)
    : h('p', { class: 'verdict bad' }, `The gateway refuses this token: ${errors} error${errors > 1 ? 's' : ''}.`);
  const keys = (d.keys || []).map((k, i) => [`credentials[${k.credential}]`, k.label, h('code', { class: 'fingerprint' }, k.fingerprint), d.verified_with_key === i + 1 ? h('strong', { class: 'acked' }, 'verifies the signature') : '']);
  const skipped = (d.skippedKeys || []).map((why) => h('li', { class: 'error-text' }, why));
  return [
    section('Verdict', verdict,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Algorithm'), h('dd', {}, d.algorithm || 'unknown'),
        h('dt', {}, 'Expected aud'), h('dd', {}, d.project || 'not checked')),
      !d.device ? h('p', { class: 'muted' }, 'No device named: the signature was not checked against registered keys.') : null,
      keys.length ? table(['', 'Registered key', 'Fingerprint', ''], keys) : null,
      skipped.length ? h('div', {}, h('h3', {}, 'Keys not checked'), h('ul', {}, skipped)) : null),
    section('Findings', h('ol', { class: 'findings' }, d.findings.map((f) => h('li', { class: `finding ${f.severity}`, 'data-code': f.code },
      h('span', { class: `badge ${f.severity}` }, f.severity), ' ', h('code', {}, f.code),
      f.segment ? h('span', { class: 'muted' }, ` in the ${f.segment}${f.offset !== null && f.offset !== undefined ? ` at byte ${f.offset}` : ''}`) : '',
      h('p', {}, f.message), f.fix ? h('p', { class: 'fix' }, 'Fix: ', f.fix) : null)))),
    section('Decoded', h('h3', {}, 'Header'), h('pre', {}, JSON.stringify(d.header, null, 2)), h('h3', {}, 'Claims'), h('pre', {}, JSON.stringify(d.claims, null, 2))),
  ];
}

// ---------------------------------------------------------------- start

document.getElementById('logout').addEventListener('click', () => { store.removeItem('tether.token'); go('#/'); });
window.addEventListener('hashchange', () => {
  // `#main` is the skip link's target, not a route.
  if (!location.hash.startsWith('#/') && location.hash !== '') return;
  render();
  document.getElementById('main').focus({ preventScroll: true });
});
render();
