"""Writes what it was given (argv, SM_* variables, the channels' files) to the model folder, and checks the
channels' data is read-only."""

import json
import os
import sys
from pathlib import Path

model = Path(os.environ["SM_MODEL_DIR"])
channels = {}
for name in json.loads(os.environ["SM_CHANNELS"]):
    root = Path(os.environ[f"SM_CHANNEL_{name.upper()}"])
    channels[name] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    try:  # the data itself is mounted read-only
        with open(root / channels[name][0], "a") as handle:
            handle.write("x")
        channels[name + ":writable"] = True
    except OSError:
        channels[name + ":writable"] = False
facts = {
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    "channels": channels,
    "job": os.environ.get("TRAINING_JOB_NAME"),
    "hostname": os.uname().nodename,
    "mine": os.environ.get("MY_SETTING"),
}
(model / "model.json").write_text(json.dumps(facts))
Path(os.environ["SM_OUTPUT_DATA_DIR"], "notes.txt").write_text("extra output\n")
print("[metric] loss=0.5 step=1", flush=True)
print("[metric] loss=0.25 step=2", flush=True)
