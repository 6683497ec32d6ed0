// Google's Node.js Device Manager client (@google-cloud/iot) on its default
// transport, gRPC over TLS, against `tether serve --grpc-addr`. Only what a user
// would change is given: the endpoint, the admin token as a bearer token, and the CA
// (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, which gRPC reads itself).
//
//   TETHER_GRPC=127.0.0.1:PORT TETHER_TOKEN=... GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=ca.pem node admin.js
'use strict';

const assert = require('node:assert/strict');
const iot = require('@google-cloud/iot');
const {GoogleAuth, OAuth2Client} = require('google-auth-library');

const [host, port] = process.env.TETHER_GRPC.split(':');
const bearer = new OAuth2Client();
bearer.setCredentials({access_token: process.env.TETHER_TOKEN});
const client = new iot.v1.DeviceManagerClient({
  apiEndpoint: host,
  port: Number(port),
  auth: new GoogleAuth({authClient: bearer}),
});

const parent = client.locationPath('acme', 'us-central1');
const registryName = client.registryPath('acme', 'us-central1', 'node-fleet');
const deviceName = client.devicePath('acme', 'us-central1', 'node-fleet', 'node-dev');

async function main() {
  const [registry] = await client.createDeviceRegistry({
    parent,
    deviceRegistry: {id: 'node-fleet', mqttConfig: {mqttEnabledState: 'MQTT_ENABLED'}},
  });
  assert.equal(registry.name, registryName);
  assert.equal(registry.mqttConfig.mqttEnabledState, 'MQTT_ENABLED');
  console.log('ok    registries.create');

  const [device] = await client.createDevice({
    parent: registryName,
    device: {id: 'node-dev', metadata: {site: 'north'}},
  });
  assert.equal(device.id, 'node-dev');
  assert.ok(Number(device.numId) > 0, `numId ${device.numId}`);
  console.log('ok    devices.create');

  const [config] = await client.modifyCloudToDeviceConfig({
    name: deviceName,
    binaryData: Buffer.from('{"fan":"on"}'),
  });
  assert.equal(Number(config.version), 2);
  assert.equal(Buffer.from(config.binaryData).toString(), '{"fan":"on"}');
  console.log('ok    devices.modifyCloudToDeviceConfig');

  const [devices] = await client.listDevices({
    parent: registryName,
    fieldMask: {paths: ['metadata', 'config']},
  });
  assert.deepEqual(devices.map((d) => d.id), ['node-dev']);
  assert.equal(devices[0].metadata.site, 'north');
  assert.equal(Number(devices[0].config.version), 2);
  console.log('ok    devices.list');

  try {
    await client.getDevice({name: client.devicePath('acme', 'us-central1', 'node-fleet', 'nope')});
    assert.fail('a missing device was found');
  } catch (e) {
    assert.equal(e.code, 5, `NOT_FOUND expected: ${e}`);
    console.log('ok    devices.get unknown -> NOT_FOUND');
  }
  await client.close();
  console.log('node client: all passed');
}

main().catch((e) => {
  console.error(`FAIL  ${e.stack || e}`);
  process.exit(1);
});
