"""`python -m agent_sre.functions`: serve the functions app on $PORT (Knative sets it; default 8080).

FUNCTION selects one function (unset: all); see agent_sre.functions.app for the other settings.
"""

import os

import uvicorn


def main() -> None:
    uvicorn.run("agent_sre.functions.app:app", host=os.environ.get("HOST", "0.0.0.0"),
                port=int(os.environ.get("PORT", "8080")), log_level=os.environ.get("LOG_LEVEL", "info"))


if __name__ == "__main__":
    main()
