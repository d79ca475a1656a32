// The server heartbeats idle streams; a stream that hears nothing for
// heartbeatTimeoutMs is taken for dead (a dead network path keeps the TCP connection
// open, HTTP/2 keepalive notices only after its own 30 s + 10 s): the consumer
// reconnects on a new connection and goes on where it was.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, within, take, freezableProxy } from "./support.mjs";

const direct = connect(SERVER_URL);
const proxy = await freezableProxy(SERVER_URL);
const viaProxy = connect(proxy.url);
after(() => {
  viaProxy.close();
  direct.close();
  proxy.close();
});

test("a frozen connection is left after the heartbeat timeout, and the next record arrives on a new one", async () => {
  const topic = uniqueTopic("watchdog");
  await direct.publish(topic, [{ type: "before" }]);
  // The harness's server heartbeats every 100 ms: 1.5 s of silence is a dead stream.
  const consumer = viaProxy.consumer(topic, "", { heartbeatTimeoutMs: 1500 });
  const [first] = await take(consumer, 1);
  assert.equal(first.type, "before");

  const disconnected = once(consumer, "disconnected");
  assert.ok(proxy.freeze() >= 1, "the consumer's connection goes through the proxy");
  await direct.publish(topic, [{ type: "after" }]);
  const [{ error }] = await within(10_000, disconnected, "the watchdog");
  const [second] = await take(consumer, 1, 10_000);
  await consumer.close();

  assert.equal(error.codeName, "DEADLINE_EXCEEDED");
  assert.match(error.message, /no message \(record or heartbeat\) for 1500 ms/);
  assert.equal(second.type, "after");
  assert.equal(second.offset, "2");
  assert.equal(consumer.streams, 2);
});
