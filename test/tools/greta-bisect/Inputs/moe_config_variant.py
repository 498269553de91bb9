"""Write a variant of an HF MoE config.json: moe_config_variant.py SRC_DIR
OUT_DIR KEY=JSON... (each KEY set to the JSON value; layer_types follows
num_hidden_layers). For the routed-layer cross-check: greta-bisect's rule
against the importer's IR."""
import json
import os
import sys

src, out, *pairs = sys.argv[1:]
with open(os.path.join(src, "config.json")) as f:
    config = json.load(f)
for pair in pairs:
    key, value = pair.split("=", 1)
    config[key] = json.loads(value)
if "layer_types" in config:
    config["layer_types"] = ["full_attention"] * config["num_hidden_layers"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f)
