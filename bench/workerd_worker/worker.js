// bench/workers.py: hot reads from one Worker, through the KV binding or through fetch
// to the REST API of the same replica.
//   GET /binding?key=K&n=N   N sequential env.KV.get(K)
//   GET /rest?key=K&n=N      N sequential fetch(<REST value URL of K>)
//   GET /noop?n=N            nothing: the cost of the request into the Worker
// Answers {n, bytes, ms}; ms is Date.now() around the loop (workerd advances it on I/O).

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = url.searchParams.get("key") ?? "hot";
    const n = parseInt(url.searchParams.get("n") ?? "1");
    const rest =
      `${env.EDGEKV_API}/client/v4/accounts/${env.ACCOUNT_ID}/storage/kv/namespaces/` +
      `${env.NAMESPACE_ID}/values/${encodeURIComponent(key)}`;
    const auth = { authorization: `Bearer ${env.API_TOKEN}` };
    let bytes = 0;
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      if (url.pathname === "/binding") {
        bytes += (await env.KV.get(key)).length;
      } else if (url.pathname === "/rest") {
        const r = await fetch(rest, { headers: auth });
        if (r.status !== 200) throw new Error(`REST read: ${r.status}`);
        bytes += (await r.text()).length;
      }
    }
    return Response.json({ n, bytes, ms: Date.now() - t0 });
  },
};
