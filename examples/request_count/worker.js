// Request count per country: the classic Workers + KV demo, as a module Worker.
//
// Runs unchanged on Cloudflare or on self-hosted workerd, where `env.REQUESTS` is a
// kvNamespace binding served by the nearest edgekv replica (see workerd_config.py).
//
//   GET /         (or /naive) count this request under request.cf.country, naive
//   GET /exact    the same, exact: edgekv's conditional writes through its REST API
//   GET /count?country=DE   what this region reads for both counters (no increment)
//
// Environment: REQUESTS (KV namespace); REGION (text). For /exact only: EDGEKV_API
// (this region's REST base URL), ACCOUNT_ID, NAMESPACE_ID, API_TOKEN (a secret on
// Cloudflare; text in the generated workerd config).

const MAX_ATTEMPTS = 100;

// Naive, as the demo is usually written: read, add one, write. Two concurrent
// requests read the same count and both write count+1; a region also reads its own
// copy, which may trail writes made elsewhere by up to the propagation delay.
async function countNaive(env, country) {
  const key = `naive:${country}`;
  const count = (parseInt(await env.REQUESTS.get(key)) || 0) + 1;
  await env.REQUESTS.put(key, String(count));
  return { count, attempts: 1 };
}

// Exact: read the latest value and its version from central (?consistency=strong,
// the version in the ETag), write only if it is still that version (If-Match, or
// If-None-Match: * for the first request); on 412 someone else won: back off, retry.
async function countExact(env, country) {
  const url =
    `${env.EDGEKV_API}/client/v4/accounts/${env.ACCOUNT_ID}/storage/kv/namespaces/` +
    `${env.NAMESPACE_ID}/values/${encodeURIComponent(`exact:${country}`)}`;
  const auth = { authorization: `Bearer ${env.API_TOKEN}` };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const read = await fetch(`${url}?consistency=strong`, { headers: auth });
    let count;
    let condition;
    if (read.status === 200) {
      count = (parseInt(await read.text()) || 0) + 1;
      condition = { "if-match": read.headers.get("etag") };
    } else if (read.status === 404) {
      await read.arrayBuffer();
      count = 1;
      condition = { "if-none-match": "*" };
    } else {
      throw new Error(`read failed: ${read.status} ${await read.text()}`);
    }
    const write = await fetch(url, {
      method: "PUT",
      headers: { ...auth, ...condition, "content-type": "text/plain" },
      body: String(count),
    });
    const answer = await write.text();
    if (write.ok) return { count, attempts: attempt };
    if (write.status !== 412) throw new Error(`write failed: ${write.status} ${answer}`);
    const backoffMs = Math.random() * Math.min(100, 2 * 2 ** attempt);
    await new Promise((resolve) => setTimeout(resolve, backoffMs));
  }
  throw new Error(`exact:${country}: gave up after ${MAX_ATTEMPTS} conflicting attempts`);
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const country = request.cf?.country ?? "XX";
    const region = env.REGION ?? "";
    if (url.pathname === "/count") {
      const asked = url.searchParams.get("country") ?? country;
      const naive = parseInt(await env.REQUESTS.get(`naive:${asked}`)) || 0;
      const exact = parseInt(await env.REQUESTS.get(`exact:${asked}`)) || 0;
      return Response.json({ region, country: asked, naive, exact });
    }
    const mode = url.pathname === "/exact" ? "exact" : "naive";
    const { count, attempts } = await (mode === "exact" ? countExact : countNaive)(env, country);
    return Response.json({ mode, region, country, count, attempts });
  },
};
