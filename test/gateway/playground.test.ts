/** `dsv4 gateway` serves the built web playground at GET / as `dsv4 serve` does, its API behind it. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { RunningGateway } from "../../src/gateway/index.js";
import { gatewayOver, replicas } from "./helpers.js";
import type { TestServer } from "../server/helpers.js";

let replica: TestServer;
let gateway: RunningGateway;
before(async () => {
  [replica] = (await replicas(1)) as [TestServer];
  gateway = await gatewayOver([replica]);
});
after(async () => {
  await gateway?.close();
  await replica?.close();
});

test("the gateway serves the page and its bundle", async () => {
  const page = await fetch(`${gateway.url}/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<title>dsv4 playground<\/title>/);
  const src = /src="(playground\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(src, "the page names its script");
  const js = await fetch(`${gateway.url}/${src}`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /javascript/);
});
