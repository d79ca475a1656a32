// connect() with a private CA, a client certificate and a bearer token: the harness's
// server requires all three (tests/api/node_client.rs passes the PEM files' directory
// and the token as arguments).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, take } from "./support.mjs";

const [dir, token] = process.argv.slice(2);
if (!dir || !token) throw new Error("usage: node <this file> <directory with ca.pem, client.pem, client.key> <token>");
const port = new URL(SERVER_URL).port;
const url = `https://127.0.0.1:${port}`;
const tls = { ca: join(dir, "ca.pem"), cert: readFileSync(join(dir, "client.pem")), key: join(dir, "client.key"), serverName: "localhost" };
const clients = [];
const open = (options) => {
  const c = connect(url, { retryForMs: 500, ...options });
  clients.push(c);
  return c;
};
after(() => clients.forEach((c) => c.close()));

test("with the CA, a client certificate and the token, publishing and consuming work", async () => {
  const client = open({ tls, token });
  const published = await client.publishJson("secure.lessons", "lesson.published", { lesson_id: "1" });
  const consumer = client.consumer("secure.lessons", "secure-reader");
  const [message] = await take(consumer, 1);
  await message.ack();
  await consumer.close();
  assert.equal(message.id, published.id);
});

test("without the token the call is UNAUTHENTICATED", async () => {
  const client = open({ tls });
  await assert.rejects(client.publishJson("secure.lessons", "x", {}), (err) => err.codeName === "UNAUTHENTICATED");
});

test("without a client certificate the server refuses the connection", async () => {
  const client = open({ tls: { ca: tls.ca, serverName: "localhost" }, token });
  await assert.rejects(client.publishJson("secure.lessons", "x", {}), (err) => err.codeName === "UNAVAILABLE");
});
