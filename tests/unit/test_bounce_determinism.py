"""The same message gets the same report in every process: nothing in a report may depend
on the order of a set of strings, which Python shuffles per process (PYTHONHASHSEED)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).parent.parent / "data" / "bounces"

READ_ALL = """
import json, sys
from pathlib import Path
from email.message import EmailMessage
from courtois.delivery.bounces import classify

root = Path(sys.argv[1])
out = {}
for path in sorted(root.rglob("*.eml")):
    out[str(path.relative_to(root))] = classify(path.read_bytes(), path.name).as_dict()
# A vacation reply from two authors, the case a set would order at random.
two = (
    b"From: Bo <bo@example.org>, Cy <cy@example.net>, Di <di@example.com>\\r\\n"
    b"To: invitations@agora.example\\r\\nSubject: Out of office\\r\\n"
    b"Auto-Submitted: auto-replied\\r\\n\\r\\nI am away until Monday.\\r\\n"
)
out["two-authors"] = classify(two, "two").as_dict()
print(json.dumps(out, sort_keys=True))
"""


def _reports(seed: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(SAMPLES)],
        capture_output=True,
        check=True,
        env=env,
        text=True,
    )
    return dict(json.loads(done.stdout))


def test_every_sample_gets_the_same_report_whatever_the_hash_seed() -> None:
    first = _reports("1")
    assert first["two-authors"]["kind"] == "auto_reply"  # type: ignore[index]
    assert len(first) > 50
    for seed in ("2", "3"):
        assert _reports(seed) == first
