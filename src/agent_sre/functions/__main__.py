"""`python -m agent_sre.functions`: the same as `agent-sre serve-function`."""

import sys

from ..cli import app

if __name__ == "__main__":
    app(["serve-function", *sys.argv[1:]], prog_name="python -m agent_sre.functions")
