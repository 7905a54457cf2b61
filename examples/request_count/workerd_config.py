"""A workerd config running `worker.js` once per region of an `edgekv dev --workerd`
cluster, each Worker's `env.REQUESTS` bound to its own region's replica.

    python examples/request_count/workerd_config.py --info /tmp/edgekv.json \\
        --namespace <id> --out /tmp/request-count.capnp [--regions us,eu] [--base-port 8101]
    .workerd/node_modules/.bin/workerd serve /tmp/request-count.capnp

Worker `<region>` listens on 127.0.0.1:<base-port + i>; `request.cf` comes from the
`cf-blob` request header (`{"country": "DE"}`), which whatever fronts the Workers sets.
The config holds the dev token (file mode 0600).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kvcore.workerd.config import KvBinding, WorkerSpec, write_config

WORKER = Path(__file__).resolve().with_name("worker.js")


def worker_spec(info: Mapping[str, Any], region: str, namespace_id: str, listen_addr: str) -> WorkerSpec:
    """The request-count Worker of `region`, from `edgekv dev --info-file` facts."""
    token = str(info["token"])
    return WorkerSpec(
        name=region,
        module_path=WORKER,
        listen_addr=listen_addr,
        kv=[KvBinding("REQUESTS", info["workerd"][region], token, namespace_id)],
        text={
            "REGION": region,
            "EDGEKV_API": info["regions"][region],
            "ACCOUNT_ID": info["account_id"],
            "NAMESPACE_ID": namespace_id,
            "API_TOKEN": token,
        },
        fetch_loopback=True,  # /exact calls the region's REST API on this machine
    )


def worker_specs(
    info: Mapping[str, Any], namespace_id: str, base_port: int, regions: Sequence[str] = ()
) -> list[WorkerSpec]:
    names = list(regions) or list(info["regions"])
    return [worker_spec(info, r, namespace_id, f"127.0.0.1:{base_port + i}") for i, r in enumerate(names)]


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--info", required=True, help="JSON from `edgekv dev --workerd --info-file`")
    parser.add_argument("--namespace", required=True, help="namespace id of the counters")
    parser.add_argument("--out", required=True, help="where to write the config")
    parser.add_argument("--regions", default="", help="comma-separated (default: every region)")
    parser.add_argument("--base-port", type=int, default=8101)
    args = parser.parse_args()
    info = json.loads(Path(args.info).read_text())
    if "workerd" not in info:
        raise SystemExit(f"{args.info}: no workerd listeners; start the cluster with `edgekv dev --workerd`")
    regions = [r for r in args.regions.split(",") if r]
    specs = worker_specs(info, args.namespace, args.base_port, regions)
    write_config(Path(args.out), specs)
    for spec in specs:
        print(f"{spec.name}: http://{spec.listen_addr}")


if __name__ == "__main__":
    main()
