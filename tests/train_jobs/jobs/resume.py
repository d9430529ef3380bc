"""A spot-style script: resumes from /opt/ml/checkpoints, so a second run with the same checkpoints continues."""

import json
import os
from pathlib import Path

from shipyard.training.metrics import log_metric

state_file = Path("/opt/ml/checkpoints/state.json")
state = json.loads(state_file.read_text()) if state_file.is_file() else {"epoch": 0}
print(f"resuming from epoch {state['epoch']}", flush=True)
for _ in range(2):
    state["epoch"] += 1
    state_file.write_text(json.dumps(state))
    log_metric("epoch", state["epoch"], step=state["epoch"])
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(state))
