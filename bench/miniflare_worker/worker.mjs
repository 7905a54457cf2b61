// The Miniflare baseline: a Worker that answers every request with one KV read.
export default {
  async fetch(request, env) {
    return new Response(await env.KV.get(env.KEY));
  },
};
