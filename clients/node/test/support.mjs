// Shared by the test files: where the server is, the control protocol of the Rust
// harness (tests/api/e2e/driven.rs), and waiting on events with a timeout.
import { createInterface } from "node:readline";

/** The server under test (the harness sets PULSEBUS_URL). */
export const SERVER_URL = process.env.PULSEBUS_URL ?? "http://127.0.0.1:50051";

/** A topic name no other test uses. */
export function uniqueTopic(prefix) {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Asks the harness to `restart`, `stop` or `start` the server (or start a `replica`)
 * and waits for its answer line.
 */
export async function control(request) {
  if (!process.env.PULSEBUS_URL) throw new Error(`"${request}" needs the Rust harness (cargo nextest run --test api -E 'test(node_client)')`);
  const lines = createInterface({ input: process.stdin });
  const answer = new Promise((resolve) => lines.once("line", resolve));
  process.stdout.write(`pulsebus-test: ${request}\n`);
  const line = await within(60_000, answer, `the harness's answer to ${request}`);
  lines.close();
  if (!String(line).startsWith("ok")) throw new Error(`the harness answered ${request} with ${line}`);
  return String(line).slice(3).trim();
}

/** Resolves like `promise`, or rejects after `ms` naming `what`. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve function. */
export function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** The next `n` messages of a consumer, within `ms` in all. */
export async function take(consumer, n, ms = 20_000) {
  const got = [];
  await within(
    ms,
    (async () => {
      while (got.length < n) {
        const m = await consumer.next();
        if (!m) throw new Error(`the consumer stopped after ${got.length} of ${n} messages`);
        got.push(m);
      }
    })(),
    `${n} messages (got ${got.length})`,
  );
  return got;
}

/** Events of a JSON type, numbered. */
export function numbered(type, n, subject = (i) => "") {
  return Array.from({ length: n }, (_, i) => ({
    type,
    subject: subject(i),
    contentType: "application/json",
    textData: JSON.stringify({ n: i + 1 }),
  }));
}

/** A consumer's row from ListConsumers. */
export async function consumerInfo(client, topic, name) {
  const info = (await client.listConsumers(topic)).find((c) => c.name === name);
  if (!info) throw new Error(`no consumer ${name} on ${topic}`);
  return info;
}

/**
 * A TCP proxy in front of `url` whose `freeze()` turns every connection open so far
 * into a black hole (bytes are dropped both ways, nothing is closed), as a dead
 * network path looks; connections made afterwards pass.
 */
export async function freezableProxy(url) {
  const { createServer, connect: dial } = await import("node:net");
  const upstream = new URL(url);
  const open = new Set();
  const server = createServer((client) => {
    const conn = { frozen: false, client, server: dial(Number(upstream.port), upstream.hostname) };
    open.add(conn);
    conn.client.on("data", (b) => conn.frozen || conn.server.write(b));
    conn.server.on("data", (b) => conn.frozen || conn.client.write(b));
    const end = () => {
      open.delete(conn);
      conn.client.destroy();
      conn.server.destroy();
    };
    conn.client.on("error", end).on("close", end);
    conn.server.on("error", end).on("close", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    freeze() {
      for (const conn of open) conn.frozen = true;
      return open.size;
    },
    close() {
      for (const conn of open) {
        conn.client.destroy();
        conn.server.destroy();
      }
      server.close();
    },
  };
}
