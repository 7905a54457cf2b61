// Runs worker.mjs in Miniflare (Cloudflare's local Workers + KV simulator) on
// 127.0.0.1, with a KV namespace holding one key, and prints {"url": ...} when ready.
//   node server.mjs PREFIX PORT KEY VALUE_FILE
// PREFIX is the npm --prefix dir that holds node_modules/miniflare.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const [prefix, port, key, valueFile] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(prefix), "package.json"));
const { Miniflare, Log, LogLevel } = await import(pathToFileURL(require.resolve("miniflare")).href);

const here = path.dirname(fileURLToPath(import.meta.url));
const mf = new Miniflare({
  modules: true,
  scriptPath: path.join(here, "worker.mjs"),
  modulesRoot: here,
  kvNamespaces: ["KV"],
  bindings: { KEY: key },
  host: "127.0.0.1",
  port: Number(port),
  log: new Log(LogLevel.WARN),
  cf: false, // never fetch the Request.cf object from the network
});
const url = await mf.ready;
const kv = await mf.getKVNamespace("KV");
await kv.put(key, readFileSync(valueFile, "utf8"));
console.log(JSON.stringify({ url: url.href }));

const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
