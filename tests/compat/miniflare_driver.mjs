// Miniflare's KV binding (the Workers runtime API over Cloudflare's own KV emulator)
// driven by JSON lines, for the differential test (tests/compat/test_differential.py).
//   node miniflare_driver.mjs NODE_MODULES_DIR
// stdin:  {"id": n, "op": "put"|"get"|"getWithMetadata"|"delete"|"list"|"bulkGet"|"clear", ...}
// stdout: {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": {"name", "message"}}
// The first line is {"ready": true}. Loopback only; Request.cf is never fetched.
import { createInterface } from "node:readline";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = path.resolve(process.argv[2]);
const { Miniflare, Log, LogLevel } = await import(
  pathToFileURL(path.join(modules, "miniflare", "dist", "src", "index.js")).href
);

const mf = new Miniflare({
  modules: true,
  script: "export default { fetch() { return new Response('') } }",
  kvNamespaces: ["KV"],
  host: "127.0.0.1",
  port: 0,
  cf: false,
  log: new Log(LogLevel.WARN),
});
const kv = await mf.getKVNamespace("KV");

const plain = (value) => (value instanceof Map ? Object.fromEntries(value) : value ?? null);

const ops = {
  async put({ key, value, valueBase64, expiration, expirationTtl, metadata }) {
    if (valueBase64 !== undefined) value = new Uint8Array(Buffer.from(valueBase64, "base64"));
    const options = {};
    if (expiration !== undefined) options.expiration = expiration;
    if (expirationTtl !== undefined) options.expirationTtl = expirationTtl;
    if (metadata !== undefined) options.metadata = metadata;
    await kv.put(key, value, options);
    return null;
  },
  async get({ key, type }) {
    return plain(await kv.get(key, type));
  },
  async getWithMetadata({ key, type }) {
    const { value, metadata } = await kv.getWithMetadata(key, type);
    return { value: value ?? null, metadata: metadata ?? null };
  },
  async delete({ key }) {
    await kv.delete(key);
    return null;
  },
  async list({ prefix, limit, cursor }) {
    const options = {};
    if (prefix !== undefined) options.prefix = prefix;
    if (limit !== undefined) options.limit = limit;
    if (cursor !== undefined) options.cursor = cursor;
    const page = await kv.list(options);
    return { keys: page.keys, list_complete: page.list_complete, cursor: page.cursor ?? null };
  },
  async bulkGet({ keys, type, withMetadata }) {
    return plain(withMetadata ? await kv.getWithMetadata(keys, type) : await kv.get(keys, type));
  },
  async clear() {
    let cursor;
    do {
      const page = await kv.list({ cursor });
      for (const k of page.keys) await kv.delete(k.name);
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    return null;
  },
};

const write = (doc) => process.stdout.write(JSON.stringify(doc) + "\n");
write({ ready: true });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  try {
    write({ id: request.id, ok: true, result: await ops[request.op](request) });
  } catch (e) {
    write({ id: request.id, ok: false, error: { name: e?.name ?? "Error", message: String(e?.message ?? e) } });
  }
}
await mf.dispose();
