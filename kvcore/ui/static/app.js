// edgekv dashboard: plain JavaScript over the Cloudflare-compatible REST API of this
// origin (/client/v4) and the dashboard routes (/ui/api). No framework, no build step.
//
// The API token lives in sessionStorage only: it is sent as an Authorization header on
// same-origin fetches (credentials: "omit", so no cookie is ever involved) and never put
// in a URL. Every text that comes from the server is inserted with textContent.
"use strict";

(() => {
  const TOKEN_KEY = "edgekv.apiToken";
  const API = "/client/v4";
  const KEYS_PAGE = 20;
  const NS_PAGE = 100;
  const MAX_AUTO_REFRESHES = 30;

  const state = {
    token: null,
    account: null, // {id, name}
    namespaces: [],
    nsPage: 1,
    ns: null, // the open namespace {id, title}
    prefix: "",
    cursor: "", // cursor of the page shown
    nextCursor: "",
    key: null, // the open key's view {name, bytes, text, metadata, expiration, etag}
    locateTimer: null, // refreshes the region view once a held update is due
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("aria-") || k === "role" || k === "scope") node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function showError(err) {
    const box = $("error");
    box.textContent = err instanceof Error ? err.message : String(err);
    box.hidden = false;
    $("notice").textContent = "";
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function notice(text) {
    $("notice").textContent = text;
  }

  // Runs an async UI action; any failure is shown, never left as an unhandled rejection.
  function guard(fn) {
    return async (event) => {
      if (event && typeof event.preventDefault === "function") event.preventDefault();
      try {
        clearError();
        await fn(event);
      } catch (err) {
        showError(err);
      }
    };
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, body) {
      const errors = body && Array.isArray(body.errors) ? body.errors : [];
      const text = errors.length
        ? errors.map((e) => `${e.message} (code ${e.code})`).join("; ")
        : `The server answered HTTP ${status}`;
      super(text);
      this.status = status;
    }
  }

  async function request(method, path, { body, headers, token } = {}) {
    const h = new Headers(headers || {});
    h.set("Authorization", `Bearer ${token || state.token}`);
    return fetch(path, { method, headers: h, body, cache: "no-store", credentials: "omit" });
  }

  // A JSON (envelope) call: the parsed body, or an ApiError with the API's own messages.
  async function call(method, path, options) {
    const resp = await request(method, path, options);
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    if (!resp.ok || !body || body.success === false) throw new ApiError(resp.status, body);
    return body;
  }

  const acct = () => `${API}/accounts/${encodeURIComponent(state.account.id)}/storage/kv/namespaces`;
  const nsPath = (ns) => `${acct()}/${encodeURIComponent(ns.id)}`;
  const keyPath = (kind, name) => `${nsPath(state.ns)}/${kind}/${encodeURIComponent(name)}`;
  const uiApi = (route, params) =>
    `/ui/api/${route}?${new URLSearchParams({ account_id: state.account.id, ...params })}`;

  // ------------------------------------------------------------------ formatting

  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
  }

  function hexToBytes(text) {
    const clean = text.replace(/\s+/g, "");
    if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
      throw new Error("Value: not valid hex (pairs of 0-9 and a-f)");
    }
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  }

  function decodeText(bytes) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (_) {
      return null;
    }
  }

  function formatExpiration(epochS) {
    if (epochS === null || epochS === undefined || epochS === "") return "never";
    const n = Number(epochS);
    return `${new Date(n * 1000).toISOString().replace(".000Z", "Z")} (epoch ${n})`;
  }

  function formatSeconds(s) {
    if (s === null || s === undefined) return "—";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 120) return `${s.toFixed(1)} s`;
    return `${Math.round(s / 60)} min`;
  }

  function formatRatio(r) {
    return r === null || r === undefined ? "no reads yet" : `${(r * 100).toFixed(1)} %`;
  }

  function yesNo(value, yes = "yes", no = "no") {
    return el("span", { class: value ? "yes" : "no", text: value ? yes : no });
  }

  // ------------------------------------------------------------------ sign-in

  async function signIn(token) {
    const verify = await call("GET", `${API}/user/tokens/verify`, { token });
    const accounts = await call("GET", `${API}/accounts`, { token });
    const list = Array.isArray(accounts.result) ? accounts.result : [];
    if (!list.length) throw new Error("This token gives access to no account.");
    state.token = token;
    state.account = { id: list[0].id, name: list[0].name || list[0].id };
    sessionStorage.setItem(TOKEN_KEY, token);
    const status = verify.result && verify.result.status ? ` · token ${verify.result.status}` : "";
    const named = state.account.name === state.account.id ? "" : `${state.account.name} `;
    $("whoami").textContent = `Account ${named}${state.account.id}${status}`;
    show("signin-view", false);
    show("app-view", true);
    show("sign-out", true);
    $("token").value = "";
    await Promise.all([loadNamespaces(true), loadRegions()]);
  }

  function signOut() {
    stopLocateTimer();
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.account = null;
    state.ns = null;
    state.key = null;
    $("whoami").textContent = "";
    for (const id of ["app-view", "sign-out", "keys-panel", "key-panel", "editor-panel", "locate-panel"]) {
      show(id, false);
    }
    show("signin-view", true);
    clearError();
    notice("Signed out.");
  }

  // ------------------------------------------------------------------ regions at a glance

  function lagText(status) {
    const lag = status.lag_s || {};
    const parts = [];
    if (lag.create !== null && lag.create !== undefined) parts.push(`creates ${formatSeconds(lag.create)}`);
    if (lag.update !== null && lag.update !== undefined) parts.push(`updates ${formatSeconds(lag.update)}`);
    const behind = status.seq_behind ? `${status.seq_behind} changes behind` : "up to date";
    return parts.length ? `${parts.join(", ")} (mean); ${behind}` : behind;
  }

  async function loadRegions() {
    const body = await call("GET", uiApi("regions", {}));
    const { central, regions } = body.result;
    const rows = [
      el(
        "tr",
        { "aria-label": "central" },
        el("th", { scope: "row", text: "central" }),
        el("td", { text: "authority" }),
        el("td", { text: `${central.pending_updates} updates held (delay ${central.propagation_delay_s} s)` }),
        el("td", { text: "—" }),
        el("td", { text: `${central.committed_seq} committed` }),
        el("td", { text: "—" }),
      ),
    ];
    for (const r of regions) {
      const s = r.status;
      rows.push(
        el(
          "tr",
          { "aria-label": `region ${r.region}` },
          el("th", { scope: "row", text: r.region }),
          el("td", {}, yesNo(r.connected && (!s || s.connected), "connected", "disconnected")),
          el("td", { text: s ? lagText(s) : `unknown: ${r.error}` }),
          el("td", { text: s ? formatRatio(s.hit_ratio) : "—" }),
          el("td", { text: s ? String(s.applied_seq) : "—" }),
          el("td", { text: s ? String(s.cache_keys) : "—" }),
        ),
      );
    }
    if (!regions.length) {
      rows.push(el("tr", {}, el("td", { colSpan: 6, text: "No replica has subscribed yet." })));
    }
    $("regions-table").tBodies[0].replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ namespaces

  async function loadNamespaces(reset) {
    if (reset) {
      state.nsPage = 1;
      state.namespaces = [];
    }
    const query = new URLSearchParams({ page: state.nsPage, per_page: NS_PAGE, order: "title", direction: "asc" });
    const body = await call("GET", `${acct()}?${query}`);
    state.namespaces = state.namespaces.concat(body.result);
    const info = body.result_info || {};
    show("ns-more", (info.total_count || 0) > state.namespaces.length);
    renderNamespaces();
  }

  function renderNamespaces() {
    const items = state.namespaces.map((ns) => {
      const open = el("button", {
        type: "button",
        class: "link",
        text: ns.title,
        "aria-label": `Open namespace ${ns.title}`,
      });
      open.addEventListener("click", guard(() => openNamespace(ns)));
      const rename = el("button", { type: "button", class: "secondary", text: "Rename", "aria-label": `Rename namespace ${ns.title}` });
      rename.addEventListener("click", guard(() => renameNamespace(ns)));
      const del = el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete namespace ${ns.title}` });
      del.addEventListener("click", guard(() => deleteNamespace(ns)));
      const li = el("li", { class: state.ns && state.ns.id === ns.id ? "selected" : "" }, open,
        el("span", { class: "actions" }, rename, del), el("code", { text: ns.id }));
      return li;
    });
    if (!items.length) items.push(el("li", { class: "hint", text: "No namespaces yet." }));
    $("ns-list").replaceChildren(...items);
  }

  async function createNamespace() {
    const title = $("ns-title").value.trim();
    const body = await call("POST", acct(), {
      body: JSON.stringify({ title }),
      headers: { "Content-Type": "application/json" },
    });
    $("ns-title").value = "";
    await loadNamespaces(true);
    notice(`Created namespace ${body.result.title}.`);
    await openNamespace(body.result);
  }

  function ask(dialogId, setup) {
    const dialog = $(dialogId);
    setup(dialog);
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  function confirmDelete(text) {
    return ask("confirm-dialog", () => {
      $("confirm-text").textContent = text;
    });
  }

  async function renameNamespace(ns) {
    const ok = await ask("rename-dialog", () => {
      $("rename-heading").textContent = `Rename namespace ${ns.title}`;
      $("rename-title").value = ns.title;
    });
    if (!ok) return;
    const title = $("rename-title").value.trim();
    await call("PUT", nsPath(ns), { body: JSON.stringify({ title }), headers: { "Content-Type": "application/json" } });
    if (state.ns && state.ns.id === ns.id) {
      state.ns.title = title;
      $("keys-title").textContent = `Keys in ${title}`;
    }
    await loadNamespaces(true);
    notice(`Renamed namespace to ${title}.`);
  }

  async function deleteNamespace(ns) {
    if (!(await confirmDelete(`Delete namespace “${ns.title}” and every key in it?`))) return;
    await call("DELETE", nsPath(ns));
    if (state.ns && state.ns.id === ns.id) {
      state.ns = null;
      for (const id of ["keys-panel", "key-panel", "editor-panel", "locate-panel"]) show(id, false);
    }
    await loadNamespaces(true);
    notice(`Deleted namespace ${ns.title}.`);
  }

  // ------------------------------------------------------------------ keys

  async function openNamespace(ns) {
    state.ns = { id: ns.id, title: ns.title };
    state.prefix = "";
    $("prefix").value = "";
    $("keys-title").textContent = `Keys in ${ns.title}`;
    for (const id of ["key-panel", "editor-panel", "locate-panel"]) show(id, false);
    show("keys-panel", true);
    renderNamespaces();
    await loadKeys("");
  }

  async function loadKeys(cursor) {
    const query = new URLSearchParams({ limit: KEYS_PAGE });
    if (state.prefix) query.set("prefix", state.prefix);
    if (cursor) query.set("cursor", cursor);
    const body = await call("GET", `${nsPath(state.ns)}/keys?${query}`);
    state.cursor = cursor;
    state.nextCursor = (body.result_info && body.result_info.cursor) || "";
    const rows = body.result.map((k) => {
      const open = el("button", { type: "button", class: "link", text: k.name, "aria-label": `Open key ${k.name}` });
      open.addEventListener("click", guard(() => openKey(k.name)));
      const meta = k.metadata === undefined ? "—" : JSON.stringify(k.metadata);
      return el("tr", {}, el("td", {}, open), el("td", { text: formatExpiration(k.expiration) }), el("td", {}, el("code", { text: meta })));
    });
    $("keys-table").tBodies[0].replaceChildren(...rows);
    show("keys-empty", rows.length === 0);
    show("keys-next", Boolean(state.nextCursor));
    show("keys-first", Boolean(cursor));
  }

  async function openKey(name) {
    stopLocateTimer();
    const resp = await request("GET", keyPath("values", name));
    if (!resp.ok) {
      let body = null;
      try {
        body = await resp.json();
      } catch (_) {
        body = null;
      }
      throw new ApiError(resp.status, body);
    }
    const bytes = new Uint8Array(await resp.arrayBuffer());
    const metaBody = await call("GET", keyPath("metadata", name));
    const text = decodeText(bytes);
    state.key = {
      name,
      bytes,
      text,
      metadata: metaBody.result,
      expiration: resp.headers.get("Expiration"),
      etag: resp.headers.get("ETag"),
    };
    $("key-title").textContent = `Key ${name}`;
    $("key-value").textContent = text !== null ? text : bytesToHex(bytes);
    $("key-encoding").textContent =
      text !== null ? `text, ${bytes.length} bytes` : `binary, ${bytes.length} bytes, shown as hex`;
    $("key-metadata").textContent = metaBody.result === null ? "none" : JSON.stringify(metaBody.result, null, 2);
    $("key-expiration").textContent = formatExpiration(state.key.expiration);
    $("key-etag").textContent = state.key.etag || "—";
    const age = resp.headers.get("Age");
    const source = resp.headers.get("X-Edgekv-Source") || "";
    const region = resp.headers.get("X-Edgekv-Region") || "";
    $("key-served").textContent = `${region} (${source}${age && age !== "0" ? `, copy ${age} s old` : ""})`;
    show("editor-panel", false);
    show("locate-panel", false);
    show("key-panel", true);
    $("key-panel").scrollIntoView({ block: "nearest" });
  }

  function openEditor(existing) {
    const k = existing ? state.key : null;
    $("editor-title").textContent = k ? `Edit key ${k.name}` : "New key";
    $("ed-key").value = k ? k.name : "";
    const binary = Boolean(k && k.text === null);
    $("ed-hex").checked = binary;
    $("ed-value").value = k ? (binary ? bytesToHex(k.bytes) : k.text) : "";
    $("ed-metadata").value = k && k.metadata !== null ? JSON.stringify(k.metadata, null, 2) : "";
    $("ed-ttl").value = "";
    $("ed-hint").textContent =
      k && k.expiration
        ? `Now expires ${formatExpiration(k.expiration)}. Saving without a TTL stores it without expiration.`
        : "Leave TTL empty for a key that never expires (the API's minimum TTL is 60 seconds).";
    show("locate-panel", false);
    show("editor-panel", true);
    $("editor-panel").scrollIntoView({ block: "nearest" });
    $("ed-key").focus();
  }

  async function saveKey() {
    const name = $("ed-key").value;
    if (!name) throw new Error("Key: required");
    const value = $("ed-hex").checked ? hexToBytes($("ed-value").value) : new TextEncoder().encode($("ed-value").value);
    const form = new FormData();
    form.append("value", new Blob([value], { type: "application/octet-stream" }), "value");
    const metaText = $("ed-metadata").value.trim();
    if (metaText) {
      try {
        JSON.parse(metaText);
      } catch (err) {
        throw new Error(`Metadata (JSON): not valid JSON (${err.message})`);
      }
      form.append("metadata", metaText);
    }
    const query = new URLSearchParams();
    const ttl = $("ed-ttl").value.trim();
    if (ttl) query.set("expiration_ttl", ttl);
    const suffix = query.toString() ? `?${query}` : "";
    await call("PUT", keyPath("values", name) + suffix, { body: form });
    notice(`Saved key ${name}.`);
    await loadKeys(state.cursor);
    await openKey(name);
  }

  async function deleteKey() {
    const k = state.key;
    if (!k) return;
    if (!(await confirmDelete(`Delete key “${k.name}” from namespace “${state.ns.title}”?`))) return;
    await call("DELETE", keyPath("values", k.name));
    state.key = null;
    for (const id of ["key-panel", "editor-panel", "locate-panel"]) show(id, false);
    notice(`Deleted key ${k.name}.`);
    await loadKeys(state.cursor);
  }

  // ------------------------------------------------------------------ where is my key

  function copyText(copy) {
    if (!copy.namespace_known) return "namespace not known here yet";
    if (copy.cached) return "cached";
    if (copy.negative_as_of !== null && copy.negative_as_of !== undefined) return "cached as missing";
    return "not cached (reads go to central)";
  }

  function stopLocateTimer() {
    if (state.locateTimer !== null) clearTimeout(state.locateTimer);
    state.locateTimer = null;
  }

  async function locateKey(autoRefreshes = 0) {
    stopLocateTimer();
    const k = state.key;
    if (!k) return;
    const body = await call("GET", uiApi("locate", { namespace_id: state.ns.id, key: k.name }));
    const { central, regions } = body.result;
    let head = central.version === null ? "Central has no live value for this key." : `Central holds version ${central.version}.`;
    if (central.held) {
      const article = central.held.kind === "update" ? "An" : "A";
      head += ` ${article} ${central.held.kind} (version ${central.held.seq}) is held for lazy propagation and reaches the regions within ${formatSeconds(central.held.flush_in_s)}.`;
    }
    $("locate-central").textContent = head;
    const rows = regions.map((r) => {
      const c = r.copy;
      let newer;
      if (r.newer_on_its_way) {
        const when = r.arrives_in_s === null ? "already sent" : `arrives within ${formatSeconds(r.arrives_in_s)}`;
        newer = el("span", { class: "incoming", text: `yes: version ${r.incoming_seq} on its way (${when})` });
      } else {
        newer = el("span", { text: c ? "no" : "—" });
      }
      return el(
        "tr",
        { "aria-label": `copy in ${r.region}` },
        el("th", { scope: "row", text: r.region }),
        el("td", {}, yesNo(r.connected, "connected", "disconnected")),
        el("td", { text: c ? copyText(c) : `unknown: ${r.error}` }),
        el("td", { text: c && c.version !== null ? String(c.version) : "—" }),
        el("td", { text: c && c.cached ? formatSeconds(c.age_s) : "—" }),
        el("td", {}, newer),
      );
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 6, text: "No replica has subscribed yet." })));
    $("locate-table").tBodies[0].replaceChildren(...rows);
    $("locate-title").textContent = `Where is ${k.name}?`;
    // Look again once a held change has been sent (or while one is on the stream), so its
    // arrival shows by itself; a bounded number of times per click.
    const inFlight = regions.some((r) => r.newer_on_its_way);
    if ((central.held || inFlight) && autoRefreshes < MAX_AUTO_REFRESHES) {
      const delayS = central.held ? central.held.flush_in_s + 1 : 2;
      const refresh = guard(async () => {
        if (state.key === k && !$("locate-panel").hidden) await locateKey(autoRefreshes + 1);
      });
      state.locateTimer = setTimeout(refresh, delayS * 1000);
    }
    show("editor-panel", false);
    show("locate-panel", true);
    $("locate-panel").scrollIntoView({ block: "nearest" });
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("signin-form").addEventListener(
      "submit",
      guard(async () => {
        const token = $("token").value.trim();
        if (!token) throw new Error("API token: required");
        await signIn(token);
      }),
    );
    $("sign-out").addEventListener("click", guard(signOut));
    $("regions-refresh").addEventListener("click", guard(loadRegions));
    $("ns-create-form").addEventListener("submit", guard(createNamespace));
    $("ns-more").addEventListener(
      "click",
      guard(async () => {
        state.nsPage += 1;
        await loadNamespaces(false);
      }),
    );
    $("prefix-form").addEventListener(
      "submit",
      guard(async () => {
        state.prefix = $("prefix").value;
        await loadKeys("");
      }),
    );
    $("keys-next").addEventListener("click", guard(() => loadKeys(state.nextCursor)));
    $("keys-first").addEventListener("click", guard(() => loadKeys("")));
    $("key-new").addEventListener("click", guard(() => openEditor(false)));
    $("key-edit").addEventListener("click", guard(() => openEditor(true)));
    $("key-delete").addEventListener("click", guard(deleteKey));
    $("key-locate").addEventListener("click", guard(() => locateKey()));
    $("locate-refresh").addEventListener("click", guard(() => locateKey()));
    $("editor-form").addEventListener("submit", guard(saveKey));
    $("ed-cancel").addEventListener("click", guard(() => show("editor-panel", false)));
  }

  async function start() {
    wire();
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      try {
        await signIn(saved);
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        showError(err);
      }
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
