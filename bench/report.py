"""`make bench`'s report: the table of figures against their baselines and targets,
and a note per missed target, from the results the sections wrote (bench.run).

    rows = table(results); print(render(rows)); results["notes"] = notes(results)
"""

from __future__ import annotations

import math
from typing import Any

from bench import cache_sim, centrals, geo, reads


def _f(x: Any, fmt: str = ",.0f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, fmt)


def _med(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] if xs else float("nan")


def _range(x: dict[str, Any]) -> str:
    rng = x.get("ratio_range")
    return f" ({rng[0]:.2f}-{rng[1]:.2f})" if rng else ""


def table(r: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def row(
        metric: str,
        edgekv: str,
        baseline: str = "-",
        ratio: str = "-",
        target: str = "-",
        ok: bool | None = None,
    ) -> None:
        rows.append(
            {
                "metric": metric,
                "edgekv": edgekv,
                "baseline": baseline,
                "ratio": ratio,
                "target": target,
                "met": "-" if ok is None else ("yes" if ok else "NO"),
            }
        )

    h = r.get("hot_read")
    if h:
        e, b, m = h["edgekv"], h["asgi_baseline"], h.get("miniflare", {})
        row(
            "hot read req/s (replica, 32 conns)",
            _f(e["rps"]),
            f"{_f(b['rps'])} bare ASGI",
            f"{h['ratio_vs_asgi']:.2f}x" + _range(h),
            f">= {reads.HOT_TARGET}x",
            h["ratio_vs_asgi"] >= reads.HOT_TARGET,
        )
        if "rps" in m:
            row(
                "hot read req/s vs Miniflare",
                _f(e["rps"]),
                f"{_f(m['rps'])} Miniflare",
                f"{h['ratio_vs_miniflare']:.1f}x",
                ">= 5x",
                h["ratio_vs_miniflare"] >= 5,
            )
        else:
            row(
                "hot read req/s vs Miniflare",
                _f(e["rps"]),
                f"failed: {m.get('error', '?')[:60]}",
                "-",
                ">= 5x",
            )
        if "cpu_ratio_vs_asgi" in h:
            rr = h["rounds"]
            row(
                "hot read server CPU us/request (median)",
                _f(_med([x["edgekv_cpu_us"] for x in rr]), ".1f"),
                f"{_f(_med([x['asgi_cpu_us'] for x in rr]), '.1f')} bare ASGI",
                f"{h['cpu_ratio_vs_asgi']:.2f}x (baseline / edgekv)",
            )
        row(
            "hot read p50 / p99 ms",
            f"{e['p50_ms']:.2f} / {e['p99_ms']:.2f}",
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ASGI"
            + (f"; {m['p50_ms']:.2f} / {m['p99_ms']:.2f} Miniflare" if "rps" in m else ""),
        )
    rw = r.get("regional_writes")
    if rw:
        lo, hi = rw["ratio_range"]
        row(
            "writes/s through a replica (REST, 64 conns)",
            _f(rw["replica_wps"]),
            f"{_f(rw['central_wps'])} central REST",
            f"{rw['ratio']:.2f}x ({lo:.2f}-{hi:.2f})",
            ">= 0.8x",
            rw["ratio"] >= 0.8,
        )
        cw = rw.get("cpu_us_per_write")
        if cw:
            row(
                "CPU us/write: central (REST) vs central + replica (stream)",
                f"{cw['replica_central']:.0f} + {cw['replica_replica']:.0f}",
                f"{cw['central_central']:.0f} central REST",
                f"{cw['central_central'] / (cw['replica_central'] + cw['replica_replica']):.2f}x",
            )
        lb = rw.get("loop_busy")
        if lb:
            row(
                "event loop busy, cores: replica round | central round",
                f"replica {lb['replica_replica']:.2f}, central {lb['replica_central']:.2f}",
                f"central {lb['central_central']:.2f}, replica {lb['central_replica']:.2f}",
            )
    c = r.get("cold_read")
    if c:
        e, b = c["edgekv"], c["central_rest"]
        row(
            "cold read req/s (read-through)",
            _f(e["rps"]),
            f"{_f(b['rps'])} central REST",
            f"{e['rps'] / b['rps']:.2f}x",
        )
        row(
            "cold read p50 / p99 ms",
            f"{e['p50_ms']:.2f} / {e['p99_ms']:.2f}",
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} central REST",
        )
    w = r.get("writes")
    s = r.get("store_writes", {})
    if w:
        for k, label, base in (
            ("rest_1", "REST, 1 conn", "tasks_1"),
            ("rest_64", "REST, 64 conns", "tasks_64"),
            ("grpc_1", "gRPC, 1 client", "tasks_1"),
            ("grpc_64", "gRPC, 64 clients, unary Put", "tasks_64"),
            ("grpc_64_stream", "gRPC, 64 clients, write stream (the client's default)", "tasks_64"),
        ):
            x = w.get(k)
            if not x:
                continue
            bw = s.get(base)
            tgt = ">= 5,000/s" if k.endswith("64") else "-"
            row(
                f"durable writes/s, {label}",
                _f(x["wps"]),
                f"{_f(bw)} RocksStore in-process" if bw else "-",
                f"{x['wps'] / bw:.2f}x" if bw else "-",
                tgt,
                x["wps"] >= 5000 if k.endswith("64") else None,
            )
    p = r.get("propagation")
    if p:
        for name, v in p["create"].items():
            row(
                f"create lag p50 / p99 ms -> {name}",
                f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f}",
                "-",
                "-",
                "p99 < 100 ms",
                v["p99_ms"] < 100,
            )
        d = p["propagation_delay_s"] * 1000
        for name, v in p["update"].items():
            row(
                f"update lag p50 / p99 ms -> {name}",
                f"{v['p50_ms']:.0f} / {v['p99_ms']:.0f}",
                f"delay {d:.0f} ms",
                "-",
                f"max <= {d:.0f} ms (+poll 20)",
                v["max_ms"] <= d + 20,
            )
    for metric, edgekv, base, ratio, target, ok in centrals.rows(r):
        row(metric, edgekv, base, ratio, target, ok)
    ld = r.get("load")
    if ld:
        row(
            "bulk load keys/s (gRPC BulkPut x 10,000)",
            _f(ld["keys_per_s"]),
            "-",
            "-",
            f"{ld['keys']:,} keys in {ld['seconds']} s",
        )
    li = r.get("list")
    if li:
        for where, v in li.items():
            row(
                f"list 1,000-key page p50 / p99 ms ({where})",
                f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f}",
                "-",
                "-",
                "< 20 ms",
                v["p99_ms"] < 20,
            )
    mem = r.get("memory", {})
    if "replica" in mem:
        v = mem["replica"]
        bound = v["cache_bound_mib"] + 100
        row(
            "replica RSS MiB (Zipf, 64 MiB cache)",
            _f(v["rss_peak_mib"], ".0f"),
            f"cache {v['cache_fill'] * 100:.0f}% full, {_f(v['cache_keys'])} keys",
            "-",
            f"<= {bound:.0f} MiB",
            v["rss_peak_mib"] <= bound,
        )
        if v.get("rss_projected_full_mib"):
            row(
                "replica RSS MiB projected at a full cache",
                _f(v["rss_projected_full_mib"], ".0f"),
                f"{v['rss_bytes_per_cached_entry']} B/entry real vs {v['charged_bytes_per_entry']} charged",
                "-",
                f"<= {bound:.0f} MiB",
                v["rss_projected_full_mib"] <= bound,
            )
    if "central" in mem:
        v = mem["central"]
        row(f"central RSS MiB ({v['keys']:,} keys)", _f(v["rss_mib"], ".0f"))
    for args in cache_sim.rows(r) + geo.rows(r):
        row(*args)
    return rows


def render(rows: list[dict[str, str]]) -> str:
    cols = ("metric", "edgekv", "baseline", "ratio", "target", "met")
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols} if rows else {c: len(c) for c in cols}
    line = " | ".join(c.ljust(width[c]) for c in cols)
    out = [line, "-+-".join("-" * width[c] for c in cols)]
    out += [" | ".join(r[c].ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(out)


def notes(r: dict[str, Any]) -> list[str]:
    """Each missed target: by how much, and the top of the limiting process's profile."""
    out: list[str] = []

    def prof(p: dict[str, Any] | None, label: str) -> str:
        if not p or "own" not in p:
            return f" ({label}: no profile: {p.get('error') if p else 'none'})"
        return f" {label} py-spy (GIL samples), top own: " + "; ".join(x.strip() for x in p["own"][:6])

    h = r.get("hot_read")
    if h:
        t = reads.HOT_TARGET
        if h["ratio_vs_asgi"] < t:
            out.append(
                f"hot read: {h['ratio_vs_asgi']:.2f}x the bare ASGI app, target {t}x (short by "
                f"{(t - h['ratio_vs_asgi']) / t * 100:.0f}%)." + prof(h.get("profile_replica"), "replica")
            )
        if h.get("ratio_vs_miniflare", 99) < 5:
            out.append(
                f"hot read: {h['ratio_vs_miniflare']:.1f}x Miniflare, target 5x (short by "
                f"{(5 - h['ratio_vs_miniflare']) / 5 * 100:.0f}%)."
            )
    w = r.get("writes")
    if w:
        best = max(w.get(k, {}).get("wps", 0) for k in ("rest_64", "grpc_64", "grpc_64_stream"))
        if best < 5000:
            out.append(
                f"durable writes: best with 64 clients {best:,.0f}/s, target 5,000/s (short by "
                f"{(5000 - best) / 50:.0f}%)."
                + prof(w.get("profile_central_rest"), "central (REST)")
                + prof(w.get("profile_central_grpc"), "central (gRPC)")
            )
    p = r.get("propagation")
    if p:
        worst = max(v["p99_ms"] for v in p["create"].values())
        if worst >= 100:
            out.append(
                f"create lag: worst replica p99 {worst:.0f} ms, target < 100 ms "
                f"(over by {worst - 100:.0f} ms);"
                f" replicas' own lag histograms (commit -> applied): {p.get('replica_histograms')}."
            )
    g = r.get("store_writes", {}).get("python_speed_beside_sync_writer")
    if g is not None:
        out.append(
            f"store: a Python loop runs at {g:.2f}x its speed while another thread does synced"
            " rocksdict writes (~1.0 = the GIL is released during the WAL fsync; ~0.5 = held through"
            " it, so every group commit stalls central's event loop)."
        )
    gp = r.get("store_writes", {}).get("gil_probe")
    if gp:
        out.append(
            "store GIL probe (a spinner thread's speed *during* each rocksdict call, 0 = shut out,"
            " 1 = free): "
            + "; ".join(
                f"{k} {v['spinner_speed_during_call']:.2f} (call {v['median_call_ms']:.2f} ms)"
                for k, v in gp.items()
            )
            + ". The writer syncs with flush_wal(True) after an unsynced write, so the event loop"
            " runs through the fsync."
        )
    li = r.get("list")
    if li:
        for where, v in li.items():
            if v["p99_ms"] >= 20:
                out.append(
                    f"list ({where}): p99 {v['p99_ms']:.1f} ms per 1,000-key page, target < 20 ms "
                    f"(over by {(v['p99_ms'] - 20) / 20 * 100:.0f}%)."
                )
    mem = r.get("memory", {}).get("replica")
    if mem:
        bound = mem["cache_bound_mib"] + 100
        worst = max(mem["rss_peak_mib"], mem.get("rss_projected_full_mib") or 0)
        if worst > bound:
            out.append(
                f"replica memory: RSS {worst:.0f} MiB (peak or projected at a full cache) vs bound "
                f"{bound:.0f} MiB (over by {worst - bound:.0f} MiB): each cached entry costs "
                f"~{mem['rss_bytes_per_cached_entry']} B of RSS but is charged "
                f"{mem['charged_bytes_per_entry']} B."
            )
        if mem["cache_fill"] < 0.9:
            out.append(
                f"replica memory: the Zipf run filled the cache to {mem['cache_fill'] * 100:.0f}% only "
                "in its time bound; the full-cache RSS is projected from the measured bytes per entry."
            )
    c = r.get("cold_read")
    if c:
        out.append(
            "cold read: "
            + prof(c.get("profile_replica"), "replica").strip()
            + ";"
            + prof(c.get("profile_central"), "central")
        )
    return out
