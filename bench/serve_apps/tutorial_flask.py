"""The tutorial baseline: the Flask app of the usual "bring your own container" guide.

Written the way the tutorials write ``predictor.py`` (Flask, one global model loaded at import,
``json.loads`` of the body, ``model.predict``, ``json.dumps``) and served the way they serve it:
``gunicorn`` with sync workers. The benchmark runs it with one worker pinned to the server's core.

    MODEL_PATH=bundle/model/model.joblib gunicorn -w 1 -k sync --chdir bench/serve_apps tutorial_flask:app
"""

from __future__ import annotations

import json
import os

import flask
import joblib
import numpy as np

model = joblib.load(os.environ.get("MODEL_PATH", "/opt/ml/model/model.joblib"))

app = flask.Flask(__name__)


@app.route("/ping", methods=["GET"])
def ping() -> flask.Response:
    status = 200 if model is not None else 404
    return flask.Response(response="\n", status=status, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def invocations() -> flask.Response:
    if flask.request.content_type != "application/json":
        return flask.Response(response="This predictor only supports JSON data", status=415, mimetype="text/plain")
    data = json.loads(flask.request.data.decode("utf-8"))
    features = np.array(data["instances"], dtype=float)
    predictions = model.predict(features)
    result = json.dumps({"predictions": predictions.tolist()})
    return flask.Response(response=result, status=200, mimetype="application/json")
