// The web console in a real headless Chromium (Debian's `chromium`), driven by
// Playwright, against a running `tether serve`. Started by tests/it/console_e2e.rs,
// which passes the server and the device keys in the environment:
//   TETHER_URL          http://127.0.0.1:PORT (the admin listener)
//   TETHER_TOKEN        the admin token
//   TETHER_MQTT         127.0.0.1:PORT of MQTT over TLS, TETHER_CA the CA file
//   TETHER_PUBLIC_KEY   the PEM public key registered for the devices
//   TETHER_JWT          a token signed by that key; TETHER_JWT_OTHER one signed by another
//   TETHER_SHOTS        where to write the screenshots (docs/console/ when refreshed)
//   TETHER_CHROMIUM     the browser (default /usr/bin/chromium)
// Prints "ok - <step>" per step and "console e2e: all passed" at the end.

import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
const url = `${env.TETHER_URL}/console/`;
const [mqttHost, mqttPort] = env.TETHER_MQTT.split(':');
const shots = env.TETHER_SHOTS;
const XSS = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2">';
const REGISTRY = 'console';
const TOPIC = 'projects/acme/topics/console-events';
const clientId = (device) => `projects/acme/locations/us-central1/registries/${REGISTRY}/devices/${device}`;

const children = [];
function mosquitto(tool, device, jwt, args) {
  const child = spawn(tool, ['-h', mqttHost, '-p', mqttPort, '--cafile', env.TETHER_CA,
    '-i', clientId(device), '-u', 'unused', '-P', jwt, '-V', 'mqttv311', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  children.push(child);
  const done = new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
  return { child, done, output: () => out };
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    console.log(`not ok - ${name}`);
    throw e;
  }
}

async function shot(page, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: env.TETHER_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(20000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
page.on('console', (m) => {
  const text = m.text();
  // Refused calls (401/403/404) are logged by the browser as failed loads: expected.
  if (m.type() === 'error' && !text.startsWith('Failed to load resource')) pageErrors.push(`console: ${text}`);
});

try {
  await step('the console is served with a strict CSP, no framing and nosniff', async () => {
    const res = await page.goto(url);
    const h = res.headers();
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(h['x-content-type-options'], 'nosniff');
  });

  await step('without a token: the login form, and no data', async () => {
    await page.getByRole('heading', { name: 'Sign in to Tether' }).waitFor();
    assert.equal(await page.locator('table').count(), 0);
    const status = await page.evaluate(async () => (await fetch('/v1/projects/acme/locations/us-central1/registries')).status);
    assert.equal(status, 401);
    const stream = await page.evaluate(async () => (await fetch('/console/api/fleet')).status);
    assert.equal(stream, 401);
  });

  await step('a wrong token: the API\'s message, still the login form', async () => {
    await page.getByLabel('Admin token').fill('not-the-admin-token');
    await page.getByLabel('Project').fill('acme');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /admin token/i);
    await page.getByRole('heading', { name: 'Sign in to Tether' }).waitFor();
    assert.equal(await page.locator('table').count(), 0);
  });

  await step('log in with the keyboard', async () => {
    await page.getByLabel('Admin token').focus();
    await page.keyboard.type(env.TETHER_TOKEN);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.name), 'project');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Registries', exact: true }).waitFor();
  });

  await step('create a registry', async () => {
    await page.getByLabel('Registry id').fill(REGISTRY);
    await page.getByLabel('Telemetry topic').fill(TOPIC);
    await page.getByRole('button', { name: 'Create registry' }).click();
    await page.getByRole('heading', { name: `Registry ${REGISTRY}` }).waitFor();
  });

  await step('an API error is shown as the API\'s message', async () => {
    await page.getByLabel('Device id', { exact: true }).fill('Bad id!');
    await page.getByLabel('Public key (PEM)').fill(env.TETHER_PUBLIC_KEY);
    await page.getByRole('button', { name: 'Create device' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /Bad id!/);
  });

  await step('edit the registry\'s telemetry routes and state topic', async () => {
    const settings = page.locator('section', { has: page.getByRole('heading', { name: 'Settings' }) });
    await settings.getByRole('button', { name: 'Add a route' }).click();
    await settings.getByLabel('Subfolder (empty: every event)').last().fill('alerts');
    await settings.getByLabel('Pub/Sub topic').last().fill('projects/acme/topics/console-alerts');
    await settings.getByLabel('State topic').fill('projects/acme/topics/console-state');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByText('Saved.').waitFor();
    const reg = await page.evaluate(async (name) => {
      const res = await fetch(`/v1/${name}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem('tether.token')}` } });
      return res.json();
    }, `projects/acme/locations/us-central1/registries/${REGISTRY}`);
    assert.deepEqual(reg.eventNotificationConfigs, [
      { pubsubTopicName: TOPIC },
      { subfolderMatches: 'alerts', pubsubTopicName: 'projects/acme/topics/console-alerts' },
    ]);
    assert.equal(reg.stateNotificationConfig.pubsubTopicName, 'projects/acme/topics/console-state');
  });

  for (const device of ['dev-1', 'dev-wrong']) {
    await step(`create device ${device} with a key`, async () => {
      await page.goto(`${url}#/r/${REGISTRY}`);
      await page.getByLabel('Device id', { exact: true }).fill(device);
      await page.getByLabel('Public key (PEM)').fill(env.TETHER_PUBLIC_KEY);
      await page.getByRole('button', { name: 'Create device' }).click();
      await page.getByRole('heading', { name: `Device ${device}` }).waitFor();
      await page.locator('.fingerprint', { hasText: 'sha256:' }).first().waitFor();
      await page.locator('#presence', { hasText: 'offline' }).waitFor();
    });
  }

  await step('metadata holding <script> is shown as text', async () => {
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-1`);
    await page.getByLabel('Key', { exact: true }).fill('note');
    await page.getByLabel('Value', { exact: true }).fill(XSS);
    await page.getByRole('button', { name: 'Set metadata' }).click();
    const cell = page.locator('.meta-value');
    await cell.waitFor();
    assert.equal(await cell.innerText(), XSS);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
  });

  await step('a telemetry event appears live, its <script> payload as text', async () => {
    await page.getByRole('link', { name: 'Live telemetry of this device' }).click();
    await page.locator('#stream-status', { hasText: 'Live from offset' }).waitFor();
    const pub = mosquitto('mosquitto_pub', 'dev-1', env.TETHER_JWT, ['-q', '1', '-t', '/devices/dev-1/events', '-m', `hello ${XSS}`]);
    const { code, out } = await pub.done;
    assert.equal(code, 0, out);
    const row = page.locator('#live tbody tr').first();
    await row.waitFor();
    assert.equal(await row.locator('.payload').innerText(), `hello ${XSS}`);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    await page.getByLabel('Payload as').selectOption('hex');
    await shot(page, 'telemetry');
  });

  let device;
  await step('the device goes online when it connects', async () => {
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-1`);
    await page.locator('#presence', { hasText: 'offline' }).waitFor();
    device = mosquitto('mosquitto_sub', 'dev-1', env.TETHER_JWT, ['-q', '1', '-v', '-t', '/devices/dev-1/config']);
    await page.locator('#presence', { hasText: 'online' }).waitFor();
  });

  await step('push a config and see its ack', async () => {
    const form = page.locator('section', { has: page.getByRole('heading', { name: 'Config' }) });
    await form.getByLabel('Payload', { exact: true }).fill('{"interval": 30}');
    await form.getByRole('button', { name: 'Push config' }).click();
    const row = page.locator('tr', { has: page.locator('.version', { hasText: /^2$/ }) });
    await row.waitFor();
    await row.locator('.acked').waitFor();
    assert.match(device.output(), /\{"interval": 30\}/);
    await shot(page, 'device');
  });

  await step('the device list shows it online, and offline once it leaves', async () => {
    await page.goto(`${url}#/r/${REGISTRY}`);
    const row = page.locator('tr', { has: page.getByRole('link', { name: 'dev-1' }) });
    await row.locator('.badge', { hasText: 'online' }).waitFor();
    await shot(page, 'registry');
    device.child.kill();
    await row.locator('.badge', { hasText: 'offline' }).waitFor();
  });

  await step('a wrong-key device\'s refusal reason is on its page', async () => {
    const pub = mosquitto('mosquitto_pub', 'dev-wrong', env.TETHER_JWT_OTHER, ['-q', '1', '-t', '/devices/dev-wrong/events', '-m', 'x']);
    const { code } = await pub.done;
    assert.notEqual(code, 0, 'the gateway refuses a token signed by another key');
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-wrong`);
    const box = page.locator('#last-error .error-text');
    await box.waitFor();
    const text = await box.innerText();
    assert.match(text, /signature does not verify with the registered key \(ES256 sha256:[0-9a-f]{8}…\)/);
    assert.match(text, /another private key/);
    assert.match(text, /the token was signed by the key sha256:[0-9a-f]{8}… or sha256:[0-9a-f]{8}…/);
  });

  await step('a padded token in the debugger gets the padding warning', async () => {
    await page.getByRole('link', { name: 'Token debugger' }).click();
    await page.getByLabel('Token (JWT)').fill(`${env.TETHER_JWT}==`);
    await page.getByLabel('Registry id (optional)').fill(REGISTRY);
    await page.getByLabel('Device id (optional)').fill('dev-1');
    await page.getByRole('button', { name: 'Diagnose' }).click();
    const padding = page.locator('[data-code="base64-padding"]');
    await padding.waitFor();
    assert.match(await padding.innerText(), /warning/);
    await page.getByText('verifies the signature').waitFor();
    await shot(page, 'debugger');
  });

  await step('the fleet view charts the /metrics numbers', async () => {
    await page.getByRole('link', { name: 'Fleet' }).click();
    await page.locator('#stat-connected .value').waitFor();
    await page.locator('polyline.messages').waitFor({ state: 'attached' });
    const refusals = page.locator('section', { has: page.getByRole('heading', { name: 'Refusals by reason' }) });
    await refusals.locator('tbody tr').first().waitFor();
    await page.waitForTimeout(4500);
    await shot(page, 'fleet');
  });

  await step('every page fits 360 px and 1920 px without sideways scrolling', async () => {
    for (const width of [360, 1920]) {
      await page.setViewportSize({ width, height: 800 });
      for (const hash of ['#/', `#/r/${REGISTRY}`, `#/r/${REGISTRY}/d/dev-1`, `#/telemetry?topic=${TOPIC}`, '#/fleet', '#/debugger']) {
        await page.goto(`${url}${hash}`);
        await page.locator('main h1').first().waitFor();
        await page.waitForTimeout(300);
        const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(over <= 0, `${hash} at ${width} px is ${over} px too wide`);
      }
    }
    await page.setViewportSize({ width: 360, height: 800 });
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-1`);
    await page.locator('#presence').waitFor();
    await shot(page, 'device-360px');
  });

  await step('block and unblock; add a key and remove the right one', async () => {
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-wrong`);
    await page.getByRole('button', { name: 'Block', exact: true }).click();
    await page.getByText('Blocked: the gateway refuses this device.').waitFor();
    await page.getByRole('button', { name: 'Unblock' }).click();
    await page.getByText('Not blocked.').waitFor();
    const keys = page.locator('section', { has: page.getByRole('heading', { name: 'Keys' }) });
    await keys.getByLabel('Public key (PEM)').fill(env.TETHER_OTHER_PUBLIC_KEY);
    await keys.getByRole('button', { name: 'Add key' }).click();
    await keys.locator('.fingerprint').nth(1).waitFor();
    const first = await keys.locator('.fingerprint').first().innerText();
    await keys.getByRole('button', { name: 'Remove' }).first().click();
    await page.waitForFunction((fp) => {
      const all = Array.from(document.querySelectorAll('.fingerprint'), (e) => e.textContent);
      return all.length === 1 && all[0] !== fp;
    }, first);
  });

  await step('the skip link moves focus to the content and stays on the page', async () => {
    // A fresh load: the first Tab goes to the first control of the page.
    await page.reload();
    await page.getByRole('heading', { name: 'Device dev-wrong' }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Device dev-wrong' }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '#main');
    await page.goBack();
  });

  await step('the keyboard reaches every control of the device page, with a visible focus', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${url}#/r/${REGISTRY}/d/dev-1`);
    await page.locator('#presence').waitFor();
    await page.locator('.fingerprint').first().waitFor();
    const controls = await page.evaluate(() => Array.from(
      document.querySelectorAll('a[href], button, input, select, textarea'),
    ).filter((e) => e.offsetParent !== null && !e.disabled).length);
    const reached = new Set();
    await page.locator('body').focus();
    // A date field takes a Tab per part (month, day, year, hours, minutes, AM/PM).
    for (let i = 0; i < controls * 2 + 10; i++) {
      await page.keyboard.press('Tab');
      const seen = await page.evaluate(() => {
        const e = document.activeElement;
        if (!e || e === document.body) return null;
        const all = Array.from(document.querySelectorAll('a[href], button, input, select, textarea'));
        const style = getComputedStyle(e);
        return { index: all.indexOf(e), what: `${e.tagName} ${e.type || ''} ${e.name || e.textContent.slice(0, 30)} focus=${e.matches(':focus')} outline=${style.outlineStyle}/${style.outlineWidth}`, outlined: style.outlineStyle !== 'none' && style.outlineWidth !== '0px' };
      });
      if (seen && seen.index >= 0) {
        assert.ok(seen.outlined, `control #${seen.index} (${seen.what}) has no visible focus`);
        reached.add(seen.index);
      }
    }
    assert.ok(reached.size >= controls, `Tab reached ${reached.size} of ${controls} controls`);
  });

  await step('log out: the login form and no data', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${url}#/`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Tether' }).waitFor();
    assert.doesNotMatch(await page.locator('main').innerText(), /dev-1|console/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tether.token')), null);
  });

  await step('no script error and no CSP violation on any page', async () => {
    assert.deepEqual(pageErrors, []);
  });
  console.log('console e2e: all passed');
} finally {
  for (const child of children) child.kill();
  await browser.close();
}
