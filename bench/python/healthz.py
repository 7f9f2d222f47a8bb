"""Flask's development server answering `/healthz` with an empty 200, for the bench's
side-by-side `/healthz` figures (`app.run(threaded=True)` on the port given as argument)."""

import logging
import sys

from flask import Flask

app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@app.route("/healthz")
def healthz():
    return "", 200


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
