"""Adds W3's endpoints to a copy of the peer rig's nginx.conf (bench/peers.sh calls this).

    python3 bench/w3/add-endpoints.py RIG_COPY/nginx.conf bench/w3/body.json

POST (or GET) /w3 answers body.json, a 2,090-byte object with a list of 20 items whose
"name" is "x"; /w3_bad answers the same with "name": "y", so `--selfcheck-w3` can show
that every tool's W3 check really fails on a wrong body. The shared config is left as
it is: only the private copy changes.
"""

import sys
from pathlib import Path

conf_path, body_path = map(Path, sys.argv[1:3])
body = body_path.read_text().strip()
assert "'" not in body and "$" not in body, "body must be a plain nginx string"
bad = body.replace('"name":"x"', '"name":"y"', 1)
assert bad != body
block = "".join(
    f"""
        location = {path} {{
            default_type application/json;
            return 200 '{text}';
        }}
"""
    for path, text in (("/w3", body), ("/w3_bad", bad))
)
conf = conf_path.read_text()
anchor = "        # Request counter"
assert anchor in conf, f"no '{anchor.strip()}' in {conf_path}"
conf_path.write_text(conf.replace(anchor, block.lstrip("\n") + "\n" + anchor, 1))
