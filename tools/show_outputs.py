"""Print the text outputs of an executed notebook (for a quick review in a terminal)."""

import json
import sys

for path in sys.argv[1:]:
    nb = json.load(open(path))
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                print(f"[{i}]", "".join(out["text"])[:1500])
            elif out["output_type"] == "error":
                print(f"[{i}] ERROR", out["ename"], out["evalue"])
            elif "image/png" in out.get("data", {}):
                print(f"[{i}] <image>")
