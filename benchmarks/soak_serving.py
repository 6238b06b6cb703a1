"""Soak a local endpoint: minutes of mixed valid and malformed traffic, then its memory, its log and every answer checked.

Usage: .venv/bin/python benchmarks/soak_serving.py [--minutes 10] [--clients 8]

A real endpoint (`Hosting.deploy`, as `sagelab deploy` starts one: the supervisor, its server and a
worker per CPU) serves the iris LogisticRegression. `--clients` threads send requests back to back on
keep-alive connections for `--minutes` (bounded): two thirds valid (two rows of JSON, each answer
compared with the model's own predict for those rows), one third malformed in three ways (JSON that
does not parse, rows of the wrong width, a content type the model does not read). The resident memory
of the endpoint's processes is sampled once the first tenth of the run has warmed it up, and at the
end; the log is measured (with its rotated part) when the endpoint has stopped.

Targets: memory growth < 5 %, log <= 20 MB, every valid request answered correctly.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import tree_rss_mb  # noqa: E402 - a sibling script

BAD = [
    (b'[[5.1, 3.5, 1.4', "application/json"),  # does not parse
    (b"[[1.0, 2.0], [3.0, 4.0]]", "application/json"),  # two features where the model takes four
    (b"\x00\x01binary", "application/x-unknown"),  # a type the default handlers do not read
]


@dataclass
class Tally:
    valid: int = 0
    correct: int = 0
    invalid: int = 0
    rejected: int = 0  # malformed requests answered 4xx/5xx, as they should be
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(port: int, deadline: float, rows: list[list[float]], expected: list[int], tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < deadline:
        if rng.random() < 2 / 3:
            pick = rng.randrange(len(rows) - 1)
            body, content_type, want = json.dumps(rows[pick : pick + 2]).encode(), "application/json", expected[pick : pick + 2]
        else:
            (body, content_type), want = rng.choice(BAD), None
        try:
            connection.request("POST", "/invocations", body, {"Content-Type": content_type, "Accept": "application/json"})
            answer = connection.getresponse()
            status, text = answer.status, answer.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, text = 0, str(exc).encode()
        with tally.lock:
            if want is None:
                tally.invalid += 1
                tally.rejected += 400 <= status < 600
            else:
                tally.valid += 1
                if status == 200 and json.loads(text) == want:
                    tally.correct += 1
                elif len(tally.wrong) < 5:
                    tally.wrong.append(f"{status}: {text[:200]!r}")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections (default 8)")
    args = parser.parse_args()

    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from sagelab.serving.endpoints import Hosting

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    rows = X.round(2).tolist()
    expected = model.predict(X.round(2)).tolist()  # what the default handlers answer: one prediction per row
    with tempfile.TemporaryDirectory(prefix="sagelab-soak-") as tmp:
        root = Path(tmp)
        (root / "model").mkdir()
        joblib.dump(model, root / "model" / "model.joblib")
        hosting = Hosting(root / ".sagelab")
        info = hosting.deploy("soak", root / "model", "iris")
        state = json.loads((hosting.folder / "soak" / "state.json").read_text())
        tally = Tally()
        seconds = args.minutes * 60
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(info.port, deadline, rows, expected, tally, n), daemon=True) for n in range(args.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds / 10)
        warm = tree_rss_mb(state["pid"])
        for thread in threads:
            thread.join()
        took = time.monotonic() - began
        end = tree_rss_mb(state["pid"])
        hosting.delete("soak")
        hosting.close()
        log = hosting.folder / "soak" / "endpoint.log"
        log_bytes = sum(p.stat().st_size for p in (log, log.with_name(log.name + ".1")) if p.exists())
    growth = (end - warm) / warm * 100
    total = tally.valid + tally.invalid
    print(f"{args.minutes:g} min, {args.clients} clients, {os.cpu_count()} CPUs: {total:,} requests ({total / took:,.0f}/s), "
          f"{tally.invalid:,} malformed ({tally.rejected:,} answered 4xx/5xx)")  # fmt: skip
    print(f"memory of the endpoint's processes: {warm:.0f} MB after warm-up, {end:.0f} MB at the end: {growth:+.1f} %   "
          f"target < 5 %    {'PASS' if growth < 5 else 'MISS'}")  # fmt: skip
    print(f"log: {log_bytes / 1e6:.2f} MB                                                target <= 20 MB  "
          f"{'PASS' if log_bytes <= 20e6 else 'MISS'}")  # fmt: skip
    print(f"valid requests answered correctly: {tally.correct:,} of {tally.valid:,}                target all       "
          f"{'PASS' if tally.correct == tally.valid else 'MISS'}")  # fmt: skip
    for wrong in tally.wrong:
        print(f"  wrong: {wrong}")


if __name__ == "__main__":
    main()
