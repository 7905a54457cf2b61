// A Worker that runs one KV binding call per request, for tests/workerd:
//   POST / {"binding": "KV", "op": "get", "args": ["key", "text"]}
//   -> {"result": ...} or {"error": {"name", "message"}}
// Binary values travel as {"b64": "..."}, streams as {"stream": "<text>"}, Maps as
// {"map": {...}}. The extra op "listAll" pages through list() with its cursor.

function toB64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

function fromB64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

// {"b64": "..."} is bytes; {"chunks": ["a", "b"]} a ReadableStream of unknown length.
function decodeArg(arg) {
  if (arg === null || typeof arg !== "object") return arg;
  if ("b64" in arg) return fromB64(arg.b64);
  if ("chunks" in arg) {
    const chunks = arg.chunks.map((c) => new TextEncoder().encode(c));
    return new ReadableStream({
      pull(controller) {
        if (chunks.length) controller.enqueue(chunks.shift());
        else controller.close();
      },
    });
  }
  return arg;
}

async function encode(value) {
  if (value instanceof ArrayBuffer) return { b64: toB64(value) };
  if (value instanceof ReadableStream) return { stream: await new Response(value).text() };
  if (value instanceof Map) return { map: Object.fromEntries(value) };
  if (value !== null && typeof value === "object" && "metadata" in value && "value" in value) {
    return { ...value, value: await encode(value.value) };
  }
  return value === undefined ? null : value;
}

async function listAll(ns, options) {
  const names = [];
  const pages = [];
  let cursor;
  for (;;) {
    const page = await ns.list({ ...options, cursor });
    pages.push({ count: page.keys.length, list_complete: page.list_complete, cursor: page.cursor ?? null });
    names.push(...page.keys.map((k) => k.name));
    if (page.list_complete) return { names, pages };
    cursor = page.cursor;
  }
}

export default {
  async fetch(request, env) {
    const { binding = "KV", op, args = [] } = await request.json();
    const ns = env[binding];
    try {
      const result = op === "listAll" ? await listAll(ns, args[0] ?? {}) : await ns[op](...args.map(decodeArg));
      return Response.json({ result: await encode(result) });
    } catch (e) {
      return Response.json({ error: { name: e.name, message: e.message } });
    }
  },
};
